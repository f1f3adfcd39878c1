"""Provider adapters: fetch one provider's quotas and classify what went wrong."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import ModuleType

from django.conf import settings

from lib import http
from lib.redact import redact
from quotas.providers import synthetic, zai
from quotas.providers.base import (
    INVALID_RESPONSE,
    NETWORK_ERROR,
    RATE_LIMITED,
    SERVER_ERROR,
    UNAUTHORIZED,
    Parsed,
    PollFailure,
    parse_json_object,
)

ADAPTERS: dict[str, ModuleType] = {"synthetic": synthetic, "zai": zai}
NAMES = {pid: module.NAME for pid, module in ADAPTERS.items()}
KEY_SETTINGS = {"synthetic": "SYNTHETIC_API_KEY", "zai": "ZAI_API_KEY"}
URL_SETTINGS = {"synthetic": "SYNTHETIC_BASE_URL", "zai": "ZAI_BASE_URL"}
# A Retry-After beyond this is treated as this: a provider that asks for a day
# off should not silence SynTrack for a day.
MAX_RETRY_AFTER = 3600.0


@dataclass
class Fetched:
    """The result of one fetch: parsed quotas, or a failure; the body either way."""

    provider: str
    parsed: Parsed | None
    failure: PollFailure | None
    body: bytes | None
    latency_ms: int | None


def api_key(provider: str) -> str:
    # Stray whitespace from an .env line would be sent in the header otherwise.
    return (getattr(settings, KEY_SETTINGS[provider], "") or "").strip()


def configured() -> list[str]:
    """Provider ids that have a key, in the product's fixed order."""
    return [pid for pid in ADAPTERS if api_key(pid)]


def fetch(provider: str) -> Fetched:
    """Fetch and parse one provider's quotas. Never raises for upstream trouble."""
    adapter = ADAPTERS[provider]
    key = api_key(provider)
    base_url = getattr(settings, URL_SETTINGS[provider])
    try:
        response = http.get(adapter.url(base_url), adapter.headers(key), secrets=[key])
    except http.HttpError as e:
        return Fetched(provider, None, PollFailure(e.kind, redact(str(e), [key])), None, None)

    response = masked_body(response, key)
    try:
        parsed = interpret(adapter, response)
    except PollFailure as failure:
        failure.message = redact(failure.message, [key])
        body = response.body if failure.outcome == "drift" else None
        return Fetched(provider, None, failure, body, response.latency_ms)
    return Fetched(provider, parsed, None, response.body, response.latency_ms)


# A key shorter than this is no real key, and masking it could mangle ordinary payload text.
MIN_MASKED_KEY = 8


def masked_body(response: http.Response, key: str) -> http.Response:
    """``response`` with the key masked in its body (an error page echoing the Authorization header).

    Before anything reads the body (issue 10): failure messages quote it cut
    short (an 80-character excerpt, a 200-character ``msg``, 500 in all), and
    redacting a message afterwards misses a key cut in two, whose first part
    then reached the poll history and the log. Drift keeps the body, masked too.
    """
    if len(key) < MIN_MASKED_KEY:
        return response
    # surrogateescape: any bytes, valid UTF-8 or not, come back exactly as they were.
    text = response.body.decode("utf-8", "surrogateescape")
    masked = redact(text, [key])
    if masked == text:
        return response
    return replace(response, body=masked.encode("utf-8", "surrogateescape"))


def interpret(adapter: ModuleType, response: http.Response) -> Parsed:
    """Classify an HTTP response, then parse its body with the adapter."""
    status = response.status
    if status in (401, 403):
        raise PollFailure(UNAUTHORIZED, f"HTTP {status}: the API key was rejected")
    if status == 429:
        retry_after = retry_after_seconds(response.header("Retry-After"))
        hint = f", retry after {retry_after:.0f} s" if retry_after is not None else ""
        raise PollFailure(RATE_LIMITED, f"HTTP 429: rate limited{hint}", retry_after=retry_after)
    if status >= 500:
        raise PollFailure(SERVER_ERROR, f"HTTP {status}: server error")
    if status != 200:
        raise PollFailure(INVALID_RESPONSE, f"unexpected HTTP status {status}")
    return adapter.parse(parse_json_object(response.body))


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


__all__ = ["ADAPTERS", "NAMES", "NETWORK_ERROR", "Fetched", "configured", "fetch"]
