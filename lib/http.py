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

from lib.redact import redact

USER_AGENT = "syntrack/2.0 (+self-hosted quota tracker)"
CONNECT_TIMEOUT = 5.0
# Upper bound for the whole exchange. A read can stall for READ_TIMEOUT before
# the deadline is checked again, so the worst case stays under 30 s.
TOTAL_TIMEOUT = 20.0
READ_TIMEOUT = 8.0
MAX_BODY_BYTES = 1024 * 1024

_session = requests.Session()


class HttpError(Exception):
    """A request that produced no usable HTTP response."""

    kind = "network_error"


class NetworkError(HttpError):
    kind = "network_error"


class BodyTooLarge(HttpError):
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
    secrets = tuple(secrets)
    started = time.monotonic()
    deadline = started + total_timeout
    all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
    try:
        with _session.get(
            url,
            headers=all_headers,
            timeout=(CONNECT_TIMEOUT, min(READ_TIMEOUT, total_timeout)),
            stream=True,
            allow_redirects=False,
        ) as r:
            chunks: list[bytes] = []
            size = 0
            for chunk in r.iter_content(chunk_size=16384):
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLarge(f"response body larger than {max_bytes // 1024} KiB")
                if time.monotonic() > deadline:
                    raise NetworkError(f"no complete response within {total_timeout:.0f} s")
                chunks.append(chunk)
            body = b"".join(chunks)
            resp_headers = {k.lower(): v for k, v in r.headers.items()}
            status = r.status_code
    except HttpError:
        raise
    except requests.Timeout:
        raise NetworkError(f"timed out after {time.monotonic() - started:.1f} s") from None
    except requests.ConnectionError as e:
        raise NetworkError(redact(f"connection failed: {_reason(e)}", secrets)) from None
    except requests.RequestException as e:
        raise NetworkError(redact(f"request failed: {_reason(e)}", secrets)) from None
    latency_ms = int((time.monotonic() - started) * 1000)
    return Response(status=status, body=body, headers=resp_headers, latency_ms=latency_ms)


def _reason(error: Exception) -> str:
    """The innermost cause of a requests error, short enough for a log line."""
    reason = error
    while reason.__context__ is not None and reason.__context__ is not reason:
        reason = reason.__context__
    text = str(reason) or type(reason).__name__
    return text[:200]
