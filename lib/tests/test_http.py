"""lib.http: timeouts, a capped body, no retries, no redirects, and masked error messages.

Most tests answer through `responses`; the ones about sockets (slow or silent
servers, compression, truncation) talk to a real server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from lib import http

URL = "https://upstream.test/quotas"
SECRET = "syn_secret_key_0123456789"


# --- through responses ---------------------------------------------------------------------------


def test_it_returns_status_body_headers_and_latency(upstream) -> None:
    upstream.get(URL, body=b'{"ok": true}', headers={"X-Request-Id": "abc"})

    response = http.get(URL, {})

    assert response.status == 200
    assert response.body == b'{"ok": true}'
    assert response.header("x-request-id") == "abc"
    assert response.header("X-Request-ID") == "abc"
    assert response.header("Retry-After") is None
    assert isinstance(response.latency_ms, int) and response.latency_ms >= 0


def test_it_sends_a_user_agent_and_accepts_json(upstream) -> None:
    upstream.get(URL, body=b"{}")

    http.get(URL, {"Authorization": "Bearer x"})

    request = upstream.calls[0].request
    assert request.headers["User-Agent"] == http.USER_AGENT
    assert request.headers["User-Agent"].startswith("syntrack/")
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Authorization"] == "Bearer x"
    assert request.method == "GET"
    assert request.body is None


def test_the_caller_may_override_a_default_header(upstream) -> None:
    upstream.get(URL, body=b"{}")

    http.get(URL, {"Accept": "application/json; charset=utf-8"})

    assert upstream.calls[0].request.headers["Accept"] == "application/json; charset=utf-8"


def test_every_request_has_a_connect_and_a_read_timeout(upstream) -> None:
    upstream.get(URL, body=b"{}")

    http.get(URL, {})

    kwargs = upstream.calls[0].request.req_kwargs
    assert kwargs["timeout"] == (http.CONNECT_TIMEOUT, http.READ_TIMEOUT)
    assert kwargs["stream"] is True


def test_a_short_total_timeout_shortens_both_timeouts(upstream) -> None:
    upstream.get(URL, body=b"{}")

    http.get(URL, {}, total_timeout=2.0)

    assert upstream.calls[0].request.req_kwargs["timeout"] == (2.0, 2.0)


def test_the_worst_case_of_one_request_stays_within_30_seconds() -> None:
    # The deadline is checked between reads, each of which may wait READ_TIMEOUT.
    assert 0 < http.CONNECT_TIMEOUT <= 10
    assert 0 < http.READ_TIMEOUT <= http.TOTAL_TIMEOUT
    assert http.TOTAL_TIMEOUT + http.READ_TIMEOUT <= 30


def test_redirects_are_returned_not_followed(upstream) -> None:
    upstream.get(URL, status=302, headers={"Location": "https://elsewhere.test/"})

    response = http.get(URL, {"Authorization": "Bearer x"})

    assert response.status == 302
    assert len(upstream.calls) == 1


def test_a_failed_request_is_not_retried(upstream) -> None:
    upstream.get(URL, body=requests.ConnectionError("refused"))

    with pytest.raises(http.NetworkError):
        http.get(URL, {})
    assert len(upstream.calls) == 1


def test_a_body_of_exactly_the_cap_is_read(upstream) -> None:
    upstream.get(URL, body=b"x" * http.MAX_BODY_BYTES)

    assert len(http.get(URL, {}).body) == http.MAX_BODY_BYTES


def test_a_body_one_byte_over_the_cap_is_refused(upstream) -> None:
    upstream.get(URL, body=b"x" * (http.MAX_BODY_BYTES + 1))

    with pytest.raises(http.BodyTooLarge) as raised:
        http.get(URL, {})

    assert raised.value.kind == "invalid_response"
    assert "larger than 1024 KiB" in str(raised.value)


def test_a_declared_length_over_the_cap_is_refused_before_reading(upstream) -> None:
    upstream.get(URL, body=b"{}", headers={"Content-Length": str(http.MAX_BODY_BYTES + 1)})

    with pytest.raises(http.BodyTooLarge):
        http.get(URL, {})


def test_the_cap_can_be_lowered_per_call(upstream) -> None:
    upstream.get(URL, body=b"x" * 101)

    with pytest.raises(http.BodyTooLarge):
        http.get(URL, {}, max_bytes=100)


@pytest.mark.parametrize(
    ("error", "kind", "words"),
    [
        (requests.ConnectionError("Connection refused"), http.NetworkError, "connection failed"),
        (requests.ConnectTimeout("connect timeout"), http.NetworkError, "timed out"),
        (requests.ReadTimeout("read timeout"), http.NetworkError, "timed out"),
        (requests.Timeout("timeout"), http.NetworkError, "timed out"),
        (requests.exceptions.ChunkedEncodingError("broken"), http.NetworkError, "connection failed"),
        (requests.exceptions.SSLError("bad certificate"), http.NetworkError, "connection failed"),
        (requests.exceptions.ContentDecodingError("bad gzip"), http.BadBody, "could not be decoded"),
        (requests.exceptions.TooManyRedirects("loop"), http.NetworkError, "request failed"),
        (requests.RequestException("odd"), http.NetworkError, "request failed"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_transport_failures_become_http_errors(error: Exception, kind: type, words: str, upstream) -> None:
    upstream.get(URL, body=error)

    with pytest.raises(http.HttpError) as raised:
        http.get(URL, {})

    assert type(raised.value) is kind
    assert words in str(raised.value)
    assert raised.value.__cause__ is None  # no chained traceback carrying the original text


def test_error_kinds_match_poll_outcomes() -> None:
    assert http.NetworkError.kind == "network_error"
    assert http.BodyTooLarge.kind == "invalid_response"
    assert http.BadBody.kind == "invalid_response"


def test_a_secret_quoted_by_a_connection_error_is_masked(upstream) -> None:
    upstream.get(URL, body=requests.ConnectionError(f"proxy said no to Bearer {SECRET}"))

    with pytest.raises(http.NetworkError) as raised:
        http.get(URL, {"Authorization": f"Bearer {SECRET}"}, secrets=[SECRET])

    assert SECRET not in str(raised.value)
    assert "syn_se…789" in str(raised.value)


def test_the_innermost_cause_is_reported(upstream) -> None:
    try:
        try:
            raise OSError(f"[Errno 111] Connection refused ({SECRET})")
        except OSError as inner:
            raise requests.ConnectionError("Max retries exceeded") from inner
    except requests.ConnectionError as outer:
        error = outer
    upstream.get(URL, body=error)

    with pytest.raises(http.NetworkError) as raised:
        http.get(URL, {}, secrets=[SECRET])

    assert "Connection refused" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_a_secret_that_cannot_be_sent_is_masked_in_the_error(upstream) -> None:
    broken = "abcd1234\nefgh5678ijkl"

    with pytest.raises(http.NetworkError) as raised:
        http.get(URL, {"Authorization": broken}, secrets=[broken])

    assert "efgh5678" not in str(raised.value)
    assert len(upstream.calls) == 0


@pytest.mark.parametrize("url", ["not a url", "ftp://upstream.test/quotas", "https://"])
def test_a_malformed_url_is_a_network_error(url: str, upstream) -> None:
    with pytest.raises(http.NetworkError):
        http.get(url, {})


def test_concurrent_requests_from_threads_each_get_their_answer(upstream) -> None:
    upstream.get("https://a.test/q", body=b"a")
    upstream.get("https://b.test/q", body=b"b")
    bodies: dict[str, bytes] = {}

    def fetch(host: str) -> None:
        bodies[host] = http.get(f"https://{host}.test/q", {}).body

    threads = [threading.Thread(target=fetch, args=(host,)) for host in "ab" * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert bodies == {"a": b"a", "b": b"b"}
    assert len(upstream.calls) == 8


def test_cookies_never_carry_over_from_one_request_to_the_next(upstream) -> None:
    upstream.get(URL, body=b"{}", headers={"Set-Cookie": "session=abc; Path=/"})

    http.get(URL, {})
    http.get(URL, {})

    assert "Cookie" not in upstream.calls[1].request.headers


# --- against a real socket -----------------------------------------------------------------------

Handler = Callable[[socket.socket], None]
# Set when a test ends, so a handler that keeps a client waiting stops at once.
_done = threading.Event()


def idle(seconds: float) -> None:
    _done.wait(seconds)


@pytest.fixture
def server() -> Iterator[Callable[[Handler], str]]:
    """Serve one connection on 127.0.0.1 with ``handler``; returns the URL."""
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []
    _done.clear()

    def start(handler: Handler) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(10)
        listeners.append(listener)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                _read_request(conn)
                with contextlib.suppress(OSError):  # the client gave up, as it should
                    handler(conn)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{listener.getsockname()[1]}/v2/quotas"

    yield start
    _done.set()
    for listener in listeners:
        listener.close()
    for thread in threads:
        thread.join(timeout=10)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Connection: close"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_real_response_is_read(server) -> None:
    url = server(lambda conn: conn.sendall(_head(Content_Length="11") + b'{"a": true}'))

    response = http.get(url, {})

    assert (response.status, response.body) == (200, b'{"a": true}')


def test_a_server_that_drips_its_body_meets_the_total_deadline(server) -> None:
    def drip(conn: socket.socket) -> None:
        conn.sendall(_head(Content_Length="400"))
        for _ in range(400):
            conn.sendall(b" ")
            idle(0.02)

    url = server(drip)
    started = time.monotonic()

    with pytest.raises(http.NetworkError) as raised:
        http.get(url, {}, total_timeout=0.5)

    # Every byte comes well within the read timeout; only the deadline stops it.
    assert time.monotonic() - started < 3.0
    assert "no complete response within" in str(raised.value)


def test_a_server_that_never_answers_times_out(server, monkeypatch) -> None:
    monkeypatch.setattr(http, "READ_TIMEOUT", 0.3)
    url = server(lambda conn: idle(3))
    started = time.monotonic()

    with pytest.raises(http.NetworkError) as raised:
        http.get(url, {})

    assert time.monotonic() - started < 2.5
    assert "timed out" in str(raised.value)


def test_a_body_that_stalls_midway_times_out(server, monkeypatch) -> None:
    monkeypatch.setattr(http, "READ_TIMEOUT", 0.3)

    def stall(conn: socket.socket) -> None:
        conn.sendall(_head(Content_Length="100") + b"{")
        idle(3)

    url = server(stall)

    with pytest.raises(http.NetworkError):
        http.get(url, {})


def test_a_refused_connection_is_a_network_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    # Nothing listens on the port any more.

    with pytest.raises(http.NetworkError) as raised:
        http.get(f"http://127.0.0.1:{port}/v2/quotas", {"Authorization": SECRET}, secrets=[SECRET])

    assert "connection failed" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_a_truncated_body_is_a_network_error(server) -> None:
    url = server(lambda conn: conn.sendall(_head(Content_Length="100") + b'{"subscription"'))

    with pytest.raises(http.NetworkError):
        http.get(url, {})


def test_a_gzip_body_is_decoded(server) -> None:
    packed = gzip.compress(b'{"subscription": {}}')
    url = server(lambda conn: conn.sendall(_head(Content_Encoding="gzip", Content_Length=str(len(packed))) + packed))

    assert http.get(url, {}).body == b'{"subscription": {}}'


def test_the_cap_applies_to_the_decoded_body(server) -> None:
    bomb = gzip.compress(b" " * (http.MAX_BODY_BYTES * 4))
    assert len(bomb) < 10_000
    url = server(lambda conn: conn.sendall(_head(Content_Encoding="gzip", Content_Length=str(len(bomb))) + bomb))

    with pytest.raises(http.BodyTooLarge):
        http.get(url, {})


def test_a_body_that_cannot_be_decoded_is_a_bad_body(server) -> None:
    url = server(lambda conn: conn.sendall(_head(Content_Encoding="gzip", Content_Length="12") + b"not gzip at!"))

    with pytest.raises(http.BadBody) as raised:
        http.get(url, {})

    assert raised.value.kind == "invalid_response"


def test_a_chunked_body_over_the_cap_is_refused(server) -> None:
    def chunked(conn: socket.socket) -> None:
        conn.sendall(_head(Transfer_Encoding="chunked"))
        for _ in range(20):
            conn.sendall(b"64\r\n" + b"x" * 100 + b"\r\n")
        conn.sendall(b"0\r\n\r\n")

    url = server(chunked)

    with pytest.raises(http.BodyTooLarge):
        http.get(url, {}, max_bytes=1000)


def test_a_declared_length_over_the_cap_fails_without_waiting_for_the_body(server, monkeypatch) -> None:
    monkeypatch.setattr(http, "READ_TIMEOUT", 5.0)

    def announce(conn: socket.socket) -> None:
        conn.sendall(_head(Content_Length=str(10**9)))
        idle(3)

    url = server(announce)
    started = time.monotonic()

    with pytest.raises(http.BodyTooLarge):
        http.get(url, {})
    assert time.monotonic() - started < 2.0
