"""lib.http's total deadline over connect, headers and body, against real sockets on 127.0.0.1.

Each server here keeps every byte well within the read timeout, so only the
deadline can end the call: a server that trickles its status line and headers
1 byte per 0.2 s, one that trickles its body, one that accepts and says
nothing, one whose accept queue is full (the connect hangs). The last test runs
``manage.py poll --once`` against a trickling server and times the process.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from lib import http

DEADLINE = 1.5
# get() must answer within the deadline plus this.
SLACK = 0.5
SECRET = "syn_deadline_key_0123456789abcdef"

Handler = Callable[[socket.socket], None]


class Server:
    """A threaded server on 127.0.0.1: each connection gets ``handler`` after its request is read."""

    def __init__(self, handler: Handler, backlog: int = 8) -> None:
        self.handler = handler
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=backlog)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v2/quotas"
        self.threads: list[threading.Thread] = []
        # When the server saw the client go away (a send failed or it read EOF), per connection.
        self.client_gone_at: list[float] = []
        self.requests: list[bytes] = []

    def start(self) -> None:
        thread = threading.Thread(target=self._accept, name="deadline-server", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            try:
                self.requests.append(read_request(conn))
                self.handler(conn)
            except OSError:
                self.client_gone_at.append(time.monotonic())

    def idle(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def trickle(self, conn: socket.socket, data: bytes, every: float = 0.2) -> None:
        """Send ``data`` one byte per ``every`` seconds (OSError once the client has gone)."""
        for byte in data:
            if self.stop.is_set():
                return
            conn.sendall(bytes([byte]))
            self.stop.wait(every)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(handler: Handler, **options: object) -> Server:
        server = Server(handler, **options)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionResetError("the client went away before its request was complete")
        data += chunk
    return data


def head(length: int, **headers: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Connection: close", "Content-Type: application/json", f"Content-Length: {length}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def timed_failure(url: str, total_timeout: float = DEADLINE) -> tuple[http.HttpError, float]:
    started = time.monotonic()
    with pytest.raises(http.HttpError) as raised:
        http.get(url, {"Authorization": f"Bearer {SECRET}"}, secrets=[SECRET], total_timeout=total_timeout)
    return raised.value, time.monotonic() - started


def workers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "http-get" and t.is_alive()]


def wait_for_workers(timeout: float) -> bool:
    until = time.monotonic() + timeout
    while workers_alive() and time.monotonic() < until:
        time.sleep(0.02)
    return not workers_alive()


@pytest.fixture(autouse=True)
def no_worker_left_over() -> Iterator[None]:
    assert wait_for_workers(5), "an http-get worker of an earlier test is still running"
    yield


def test_a_server_that_accepts_and_never_answers_fails_at_the_deadline(serve) -> None:
    server = serve(lambda conn: server.idle(30))

    error, took = timed_failure(server.url)

    assert isinstance(error, http.NetworkError) and error.kind == "network_error"
    assert DEADLINE - 0.1 <= took <= DEADLINE + SLACK
    assert "1.5 s" in str(error)
    assert "connected, but the status line and headers had not all arrived" in str(error)


def test_headers_trickled_one_byte_per_fifth_of_a_second_fail_at_the_deadline(serve) -> None:
    # 60 bytes of status line and headers take 12 s; no read ever waits more than 0.2 s.
    server = serve(lambda conn: server.trickle(conn, head(2, X_Padding="a" * 30) + b"{}"))

    error, took = timed_failure(server.url)

    assert isinstance(error, http.NetworkError)
    assert DEADLINE - 0.1 <= took <= DEADLINE + SLACK
    assert str(error) == (
        "no complete response within 1.5 s: connected, but the status line and headers had not all arrived"
    )
    assert SECRET not in str(error)
    # The worker's socket was shut at the deadline: the worker ends now, and the server's sends soon fail.
    assert wait_for_workers(SLACK)
    gave_up = time.monotonic()
    while not server.client_gone_at and time.monotonic() < gave_up + 2:
        time.sleep(0.02)
    assert server.client_gone_at and server.client_gone_at[0] - gave_up < 1.0


def test_headers_cut_short_at_the_deadline_say_so_and_log_nothing_about_it(serve, caplog) -> None:
    # The status line comes at once, the headers trickle: the deadline's shutdown makes the
    # worker read an end of stream mid-headers, which urllib3 would log as unparsable headers.
    status, rest = head(2, X_Padding="a" * 30).split(b"\r\n", 1)

    def trickle(conn: socket.socket) -> None:
        conn.sendall(status + b"\r\n")
        server.trickle(conn, rest + b"{}")

    server = serve(trickle)
    caplog.set_level(logging.DEBUG)

    error, took = timed_failure(server.url)

    assert took <= DEADLINE + SLACK
    assert str(error).endswith("connected, but the status line and headers had not all arrived")
    assert wait_for_workers(SLACK)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_trickled_body_fails_at_the_deadline_saying_how_much_came(serve) -> None:
    body = b'{"subscription": {"limit": 100, "requests": 1}}' + b" " * 50

    def drip(conn: socket.socket) -> None:
        conn.sendall(head(len(body)))
        server.trickle(conn, body)

    server = serve(drip)

    error, took = timed_failure(server.url)

    assert isinstance(error, http.NetworkError)
    assert DEADLINE - 0.1 <= took <= DEADLINE + SLACK
    message = str(error)
    assert message.startswith("no complete response within 1.5 s: the headers came, but not all the body (")
    # About 7 bytes came (one per 0.2 s); never the whole body.
    read = int(message.split("(")[1].split(" ")[0])
    assert 3 <= read < len(body)
    assert wait_for_workers(SLACK)


def test_a_body_without_a_length_is_not_taken_as_complete_when_the_deadline_shuts_it(serve) -> None:
    # Read until the server closes: the deadline's shutdown also ends the reads, which must not
    # pass for the end of the body.
    def drip(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        server.trickle(conn, b'{"a": 1}' + b" " * 100)

    server = serve(drip)

    error, took = timed_failure(server.url)

    assert isinstance(error, http.NetworkError)
    assert took <= DEADLINE + SLACK
    assert "not all the body" in str(error)


def test_a_connect_that_hangs_fails_at_the_deadline(serve) -> None:
    # A listener whose accept queue is full drops further connection attempts: connect() hangs.
    server = serve(lambda conn: None, backlog=0)
    server.stop.set()  # accept nothing more
    server.threads[0].join(timeout=2)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", server.port))
        fillers.append(filler)
    try:
        error, took = timed_failure(server.url)
    finally:
        for filler in fillers:
            filler.close()

    assert isinstance(error, http.NetworkError)
    assert took <= DEADLINE + SLACK
    assert str(error).endswith("still connecting to 127.0.0.1")


def test_a_normal_answer_within_the_deadline_is_returned(serve) -> None:
    body = b'{"subscription": {"limit": 100, "requests": 1}}'
    server = serve(lambda conn: conn.sendall(head(len(body), X_Request_Id="r1") + body))

    response = http.get(server.url, {"Authorization": f"Bearer {SECRET}"}, total_timeout=DEADLINE)

    assert (response.status, response.body, response.header("x-request-id")) == (200, body, "r1")
    assert b"Authorization: Bearer " + SECRET.encode() in server.requests[0]
    assert wait_for_workers(SLACK)


def test_an_answer_that_takes_most_of_the_deadline_is_still_returned(serve) -> None:
    body = b'{"ok": true}'

    def slowly(conn: socket.socket) -> None:
        server.trickle(conn, head(len(body)), every=0.01)
        server.idle(0.5)
        conn.sendall(body)

    server = serve(slowly)

    response = http.get(server.url, {}, total_timeout=DEADLINE)

    assert response.body == body
    assert response.latency_ms >= 500


def test_the_default_deadline_is_read_at_each_call(serve, monkeypatch) -> None:
    monkeypatch.setattr(http, "TOTAL_TIMEOUT", 0.6)
    server = serve(lambda conn: server.trickle(conn, head(2) + b"{}"))

    started = time.monotonic()
    with pytest.raises(http.NetworkError, match=r"within 0\.6 s"):
        http.get(server.url, {})
    assert time.monotonic() - started <= 0.6 + SLACK


# --- `manage.py poll --once` against a server trickling its headers ------------------------------

# The poller in a subprocess, with lib.http's deadline shortened for the whole process (the
# setting is read at each call), then manage.py as cron would run it.
SHORT_DEADLINE_POLL = """
import runpy, sys
from lib import http
http.TOTAL_TIMEOUT = float(sys.argv[1])
sys.argv = ["manage.py", *sys.argv[2:]]
runpy.run_path("manage.py", run_name="__main__")
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_poll_once_against_trickled_headers_ends_at_the_deadline_and_records_a_network_error(serve) -> None:
    from quotas.models import Outcome, PollAttempt
    from quotas.tests.helpers import PROJECT, poller_env

    deadline = 2.0
    asked: list[float] = []

    def trickle_headers(conn: socket.socket) -> None:
        asked.append(time.monotonic())
        status, rest = head(2, X_Padding="a" * 100).split(b"\r\n", 1)
        conn.sendall(status + b"\r\n")
        server.trickle(conn, rest + b"{}")

    server = serve(trickle_headers)
    env = poller_env(
        SYNTHETIC_API_KEY=SECRET,
        SYNTHETIC_BASE_URL=f"http://127.0.0.1:{server.port}",
        ZAI_API_KEY="",
        ZAI_BASE_URL="",
    )
    process = subprocess.Popen(
        [sys.executable, "-c", SHORT_DEADLINE_POLL, str(deadline), "poll", "--once"],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=deadline + 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    ended = time.monotonic()

    assert process.returncode == 1, (out, err)
    assert len(asked) == 1, "the poller never reached the server"
    # From the request (just after get() began) to the process's exit: the deadline and at most a second.
    assert ended - asked[0] <= deadline + 1.0, f"exited {ended - asked[0]:.2f} s after its request"
    message = "no complete response within 2 s: connected, but the status line and headers had not all arrived"
    assert f"Synthetic: network_error ({message})" in out
    assert "poll failed for Synthetic" in err
    assert "Traceback" not in err and "Failed to parse headers" not in err
    assert SECRET not in out + err
    attempt = PollAttempt.objects.get()
    assert (attempt.provider, attempt.outcome, attempt.message) == ("synthetic", Outcome.NETWORK_ERROR, message)
