"""The one place SynTrack talks HTTP to the outside world.

Every upstream request goes through ``get()``: a connect timeout, a total
deadline, a cap on the body it reads, no retries (the poll loop decides when to
try again), and error messages with the API key masked. Tests mock this module
with ``responses``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import requests
import urllib3.exceptions

from lib.redact import redact

USER_AGENT = "syntrack/2.0 (+self-hosted quota tracker)"
CONNECT_TIMEOUT = 5.0
# Upper bound for the whole exchange. A read can stall for READ_TIMEOUT before
# the deadline is checked again, so the worst case stays under 30 s.
TOTAL_TIMEOUT = 20.0
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
    total_timeout: float = TOTAL_TIMEOUT,
    max_bytes: int = MAX_BODY_BYTES,
) -> Response:
    """GET ``url`` and return its status, headers and (capped) body."""
    secrets = tuple(s for s in secrets if s)
    started = time.monotonic()
    deadline = started + total_timeout
    all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
    try:
        # A session per request: the poller fetches from short-lived threads, a
        # Session is not promised to be thread-safe, and nothing (cookies
        # included) should carry over from one poll to the next.
        with (
            requests.Session() as session,
            session.get(
                url,
                headers=all_headers,
                timeout=(min(CONNECT_TIMEOUT, total_timeout), min(READ_TIMEOUT, total_timeout)),
                stream=True,
                allow_redirects=False,
            ) as r,
        ):
            body = _read_body(r, deadline, total_timeout, max_bytes)
            resp_headers = {k.lower(): v for k, v in r.headers.items()}
            status = r.status_code
    except HttpError:
        raise
    except (requests.Timeout, urllib3.exceptions.TimeoutError):
        raise NetworkError(f"timed out after {time.monotonic() - started:.1f} s") from None
    except (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError) as e:
        raise BadBody(redact(f"response body could not be decoded: {_reason(e)}", secrets)) from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError) as e:
        raise NetworkError(redact(f"connection failed: {_reason(e)}", secrets)) from None
    except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
        raise NetworkError(redact(f"request failed: {_reason(e)}", secrets)) from None
    except ValueError as e:
        # e.g. a header value requests refuses to send; its text may quote the key.
        raise NetworkError(redact(f"request failed: {_reason(e)}", secrets)) from None
    latency_ms = int((time.monotonic() - started) * 1000)
    return Response(status=status, body=body, headers=resp_headers, latency_ms=latency_ms)


def _read_body(r: requests.Response, deadline: float, total_timeout: float, max_bytes: int) -> bytes:
    """Read at most ``max_bytes`` of the (decoded) body before ``deadline``.

    ``read1`` returns whatever one socket read brings, so a server that drips
    its body byte by byte meets the deadline: each read waits at most the
    read timeout, and the deadline is checked between reads.
    """
    declared = r.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes and "Content-Encoding" not in r.headers:
        raise BodyTooLarge(f"response body larger than {max_bytes // 1024} KiB")
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise NetworkError(f"no complete response within {total_timeout:.0f} s")
        chunk = r.raw.read1(CHUNK_BYTES, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"response body larger than {max_bytes // 1024} KiB")
        chunks.append(chunk)


def _reason(error: Exception) -> str:
    """The innermost cause of a requests error, short enough for a log line."""
    reason = error
    while reason.__context__ is not None and reason.__context__ is not reason:
        reason = reason.__context__
    text = str(reason) or type(reason).__name__
    return text[:200]
