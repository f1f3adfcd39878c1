"""The one place SynTrack talks HTTP to the outside world.

Every upstream request goes through ``get()``: a connect timeout, a total
deadline, a cap on the body it reads, no retries (the poll loop decides when to
try again), and error messages with the API key masked. Tests mock this module
with ``responses``.

The total deadline is a real one: the exchange (name lookup, connect, request,
status line and headers, body) runs in a worker thread, and ``get()`` waits for
it until the deadline, no longer. A server that trickles its headers or its
body a byte at a time never resets a read timeout past it. At the deadline the
worker's socket is shut down, so the worker stops too instead of lingering.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions

from lib.redact import redact

USER_AGENT = "syntrack/2.0 (+self-hosted quota tracker)"
CONNECT_TIMEOUT = 5.0
# Upper bound for the whole exchange, from the call to the last byte of the
# body: get() returns or raises by then whatever the server does. Read at each
# call, so a test (or a tool) may shorten it for a whole process.
TOTAL_TIMEOUT = 20.0
# The longest silence between two reads; a server that says nothing at all
# fails after this, before the total deadline.
READ_TIMEOUT = 8.0
MAX_BODY_BYTES = 1024 * 1024
CHUNK_BYTES = 16384


class HttpError(Exception):
    """A request that produced no usable HTTP response."""

    kind = "network_error"


class NetworkError(HttpError):
    kind = "network_error"


class BodyTooLarge(HttpError):
    kind = "invalid_response"


class BadBody(HttpError):
    """A body that could not be decoded (broken gzip, …)."""

    kind = "invalid_response"


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    latency_ms: int = 0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def get(
    url: str,
    headers: dict[str, str],
    secrets: Iterable[str] = (),
    *,
    total_timeout: float | None = None,
    max_bytes: int = MAX_BODY_BYTES,
) -> Response:
    """GET ``url`` and return its status, headers and (capped) body.

    Returns or raises within ``total_timeout`` (default ``TOTAL_TIMEOUT``)
    seconds of the call, whatever the server does.
    """
    secrets = tuple(s for s in secrets if s)
    total_timeout = TOTAL_TIMEOUT if total_timeout is None else total_timeout
    exchange = _Exchange(url, headers, secrets, total_timeout, max_bytes)
    worker = threading.Thread(target=exchange.run, name="http-get", daemon=True)
    worker.start()
    worker.join(max(exchange.deadline - time.monotonic(), 0.0))
    late = exchange.expire()
    if late is not None:
        raise NetworkError(redact(late, secrets))
    return exchange.outcome()


_BROKEN_CONNECTION = (
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError,
)

# What an exchange was doing when its deadline passed (for the error message).
CONNECTING, AWAITING_HEADERS, READING_BODY = "connecting", "headers", "body"


class _Exchange:
    """One GET, run by a worker thread; ``get()`` takes its outcome or, at the deadline, gives up on it."""

    def __init__(
        self, url: str, headers: dict[str, str], secrets: tuple[str, ...], total_timeout: float, max_bytes: int
    ) -> None:
        self.url = url
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
        self.secrets = secrets
        self.total_timeout = total_timeout
        self.max_bytes = max_bytes
        self.started = time.monotonic()
        self.deadline = self.started + total_timeout
        self.phase = CONNECTING
        self.body_bytes = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._finished = False
        self._expired = False
        self._response: Response | None = None
        self._error: Exception | None = None

    # In the worker thread.

    def run(self) -> None:
        _current.exchange = self
        try:
            response, error = self._get(), None
        except Exception as e:  # an HttpError, or a bug: the caller raises it either way
            response, error = None, e
        finally:
            _current.exchange = None
        with self._lock:
            self._finished = True
            self._response, self._error = response, error

    def connected(self, sock: socket.socket) -> None:
        """A socket of this exchange is connected: past its deadline it is shut at once."""
        with self._lock:
            self._sockets.append(sock)
            if self.phase == CONNECTING:
                self.phase = AWAITING_HEADERS
            if self._expired:
                _shut(sock)

    @property
    def expired(self) -> bool:
        return self._expired

    def _get(self) -> Response:
        total_timeout, secrets = self.total_timeout, self.secrets
        try:
            # A session per request: the poller fetches from short-lived threads, a
            # Session is not promised to be thread-safe, and nothing (cookies
            # included) should carry over from one poll to the next.
            with requests.Session() as session:
                adapter = _WatchedAdapter(max_retries=0)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                with session.get(
                    self.url,
                    headers=self.headers,
                    timeout=(min(CONNECT_TIMEOUT, total_timeout), min(READ_TIMEOUT, total_timeout)),
                    stream=True,
                    allow_redirects=False,
                ) as r:
                    self.phase = READING_BODY
                    body = _read_body(r, self, self.max_bytes)
                    resp_headers = {k.lower(): v for k, v in r.headers.items()}
                    status = r.status_code
        except HttpError:
            raise
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            if time.monotonic() >= self.deadline:  # a read timeout as long as the deadline, just before get() saw it
                raise NetworkError(self.late_message()) from None
            raise NetworkError(f"timed out after {time.monotonic() - self.started:.1f} s: {self.progress()}") from None
        except (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError) as e:
            raise BadBody(redact(f"response body could not be decoded: {_reason(e)}", secrets)) from None
        except _BROKEN_CONNECTION as e:
            raise NetworkError(redact(f"connection failed: {_reason(e)}", secrets)) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
            raise NetworkError(redact(f"request failed: {_reason(e)}", secrets)) from None
        except ValueError as e:
            # e.g. a header value requests refuses to send; its text may quote the key.
            raise NetworkError(redact(f"request failed: {_reason(e)}", secrets)) from None
        latency_ms = int((time.monotonic() - self.started) * 1000)
        return Response(status=status, body=body, headers=resp_headers, latency_ms=latency_ms)

    # In the caller's thread.

    def expire(self) -> str | None:
        """At the deadline: unless the exchange has finished, shut its sockets and say how far it got.

        Said before the sockets are shut: once they are, the worker reads an
        end of stream and may move on (an end of headers, say) in no time.
        """
        with self._lock:
            if self._finished:
                return None
            self._expired = True
            late = self.late_message()
            for sock in self._sockets:
                _shut(sock)
            return late

    def outcome(self) -> Response:
        if self._error is not None:
            raise self._error
        assert self._response is not None
        return self._response

    def late_message(self) -> str:
        return f"no complete response within {self.total_timeout:g} s: {self.progress()}"

    def progress(self) -> str:
        """How far the exchange had got, in words."""
        if self.phase == CONNECTING:
            return f"still connecting to {urlsplit(self.url).hostname or 'the server'}"
        if self.phase == AWAITING_HEADERS:
            return "connected, but the status line and headers had not all arrived"
        return f"the headers came, but not all the body ({self.body_bytes} bytes of it read)"


# The exchange the current worker thread runs, for the connections it opens.
_current = threading.local()


class _QuietOnceAbandoned(logging.Filter):
    """Drop urllib3's complaints about what a shut socket cut short (e.g. "Failed to parse headers")."""

    def filter(self, record: logging.LogRecord) -> bool:
        exchange = getattr(_current, "exchange", None)
        return exchange is None or not exchange.expired


# A logger's filters see only its own records: the modules that log, not their parent.
for _name in ("urllib3.connection", "urllib3.connectionpool"):
    logging.getLogger(_name).addFilter(_QuietOnceAbandoned())


def _shut(sock: socket.socket) -> None:
    """Make a read blocked on ``sock`` in another thread return now (closing is left to that thread)."""
    with contextlib.suppress(OSError):  # already closed by its thread
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedConnectionMixin:
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        exchange = getattr(_current, "exchange", None)
        if exchange is not None:
            exchange.connected(sock)
        return sock


class _WatchedHTTPConnection(_WatchedConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections report their socket to the exchange (so the deadline can shut it)."""

    POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self.POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: object) -> urllib3.PoolManager:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, urllib3.ProxyManager):  # not a SOCKS one, whose pools are its own
            manager.pool_classes_by_scheme = self.POOLS
        return manager


def _read_body(r: requests.Response, exchange: _Exchange, max_bytes: int) -> bytes:
    """Read at most ``max_bytes`` of the (decoded) body.

    ``read1`` returns whatever one socket read brings. Past the deadline the
    socket is shut and reads return nothing: an end that is not the body's.
    """
    declared = r.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes and "Content-Encoding" not in r.headers:
        raise BodyTooLarge(f"response body larger than {max_bytes // 1024} KiB")
    chunks: list[bytes] = []
    while True:
        chunk = r.raw.read1(CHUNK_BYTES, decode_content=True)
        if exchange.expired:
            raise NetworkError("abandoned at the deadline")  # get() has already answered
        if not chunk:
            return b"".join(chunks)
        exchange.body_bytes += len(chunk)
        if exchange.body_bytes > max_bytes:
            raise BodyTooLarge(f"response body larger than {max_bytes // 1024} KiB")
        chunks.append(chunk)


def _reason(error: Exception) -> str:
    """The innermost cause of a requests error, short enough for a log line."""
    reason = error
    while reason.__context__ is not None and reason.__context__ is not reason:
        reason = reason.__context__
    text = str(reason) or type(reason).__name__
    return text[:200]
