"""Z.ai (GLM Coding Plan): ``GET {base}/monitor/usage/quota/limit``, raw key.

Errors arrive inside HTTP 200 (``code``/``success``). Limits are a list,
classified by ``(type, unit, number)`` and never by position
(upstream-apis.md §3.3). ``usage`` is the capacity and ``currentValue`` the
consumption; any numeric field may be missing.
"""

from __future__ import annotations

from typing import Any

from quotas.providers.base import (
    DRIFT,
    INVALID_RESPONSE,
    MAX_PLAN,
    RATE_LIMITED,
    SERVER_ERROR,
    UNAUTHORIZED,
    OutOfRange,
    Parsed,
    PollFailure,
    Quota,
    amount,
    check_quota,
    clean_text,
    epoch_ms,
    first,
    number,
    share,
    slug,
)

ID = "zai"
NAME = "Z.ai"

# (type, unit, number) -> (key, label, unit of the numbers)
WINDOWS = {
    ("TOKENS_LIMIT", 3, 5): ("tokens_5h", "Tokens (5h)", "tokens"),
    ("TOKENS_LIMIT", 6, 1): ("tokens_weekly", "Tokens (weekly)", "tokens"),
    ("TIME_LIMIT", 5, 1): ("time_monthly", "Tool calls (monthly)", "calls"),
    ("CREDIT_LIMIT", 3, 5): ("credits_5h", "Credits (5h)", "credits"),
    ("CREDIT_LIMIT", 6, 1): ("credits_weekly", "Credits (weekly)", "credits"),
}
# Observed meaning of `unit`: a time-unit code for `number`.
TIME_UNITS = {1: "minute", 2: "minute", 3: "hour", 4: "day", 5: "month", 6: "week"}
ENVELOPE_KEYS = {"code", "msg", "message", "success", "data"}
DATA_KEYS = {"limits", "level", "planName"}
# The code Z.ai answers for a key without a GLM Coding Plan; its message
# ("当前用户不存在coding plan") names the plan too, so either one tells.
NO_PLAN_CODE = 1113
NO_PLAN_WORDS = "coding plan"
AUTH_CODES = {401, 403, 1000, 1001, 1002, 1003, 1004, 1113}
RATE_CODES = {429, 1302, 1303, 1305}


def url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/monitor/usage/quota/limit"


def headers(api_key: str) -> dict[str, str]:
    # No "Bearer": the monitor API takes the raw key.
    return {"Authorization": api_key, "Accept-Language": "en-US,en"}


def parse(data: Any) -> Parsed:
    """Turn a decoded payload into quotas, or raise the error it carries.

    Unknown limit types still become generic quotas (and are listed in
    ``Parsed.unknown``); drift is raised only when no window is usable.
    """
    if not isinstance(data, dict):
        raise PollFailure(INVALID_RESPONSE, f"payload is not a JSON object but {type(data).__name__}")
    _raise_for_envelope(data)
    unknown = [f"envelope.{k}" for k in data if k not in ENVELOPE_KEYS]
    payload = data.get("data")
    if not isinstance(payload, dict):
        raise PollFailure(DRIFT, "payload has no data object")
    unknown += [f"data.{k}" for k in payload if k not in DATA_KEYS]
    limits = payload.get("limits")
    if not isinstance(limits, list):
        raise PollFailure(DRIFT, "payload has no limits list")

    quotas: list[Quota] = []
    seen: set[str] = set()
    for item in limits:
        if not isinstance(item, dict):
            unknown.append("limits[] (not an object)")
            continue
        try:
            quota, known = _window(item)
        except OutOfRange as impossible:
            # Out of its sane range: this window is drift, the others still count.
            unknown.append(impossible.note(f"limit {_classify(item)[0]}"))
            continue
        key = quota.key if quota is not None else _classify(item)[0]
        if not known:
            unknown.append(f"limit {key} (type={item.get('type')})")
        if quota is None:
            if known:
                unknown.append(f"limit {key} (unreadable)")
            continue
        if quota.key in seen:
            unknown.append(f"duplicate window {quota.key}")
            continue
        seen.add(quota.key)
        quotas.append(quota)

    if not quotas:
        raise PollFailure(
            DRIFT,
            "no usable quota in payload"
            + (f" ({len(limits)} limits unreadable)" if limits else "")
            + "".join(f"; {note}" for note in unknown if "out of range" in note),
        )
    # `level` ("pro") where present; some payloads name the plan only in `planName`.
    plan = _text(payload.get("level")) or _text(payload.get("planName"))
    return Parsed(quotas=quotas, plan=plan, unknown=[clean_text(u, 200) for u in unknown])


def _raise_for_envelope(data: dict) -> None:
    code = data.get("code")
    success = data.get("success")
    message = str(first(data, "msg", "message") or "")[:200]
    # v1.7 treated a missing `success` as an error; code 200 alone is a success.
    if success is True or (success is None and code in (200, 0, "200", "0")):
        return
    if success is None and code is None:
        return  # no envelope at all: let the data checks decide
    code_number = _int(code) or 0
    detail = f"code={clean_text(code, 40)}" + (f", msg={message}" if message else "")
    if code_number == NO_PLAN_CODE or NO_PLAN_WORDS in message.lower():
        # A valid key on the wrong product: no retry or backoff will help, the user must subscribe.
        raise PollFailure(UNAUTHORIZED, f"this key has no GLM Coding Plan ({detail})")
    if code_number in AUTH_CODES:
        raise PollFailure(UNAUTHORIZED, f"key rejected ({detail})")
    if code_number in RATE_CODES:
        raise PollFailure(RATE_LIMITED, f"rate limited ({detail})")
    raise PollFailure(SERVER_ERROR, f"API returned an error ({detail})")


def _kind(item: dict) -> str:
    kind = item.get("type")
    return slug(kind, 40).upper() if isinstance(kind, str) and slug(kind, 40) else "UNKNOWN"


def _key(item: dict) -> str:
    """``<type lower>_<unit>_<number>``, the key of a window SynTrack does not know."""
    unit_code, count = _int(item.get("unit")), _int(item.get("number"))
    return "_".join([_kind(item).lower(), _code(unit_code), _code(count)])


def _code(value: int | None) -> str:
    return "x" if value is None else str(value)[:8]


def _classify(item: dict) -> tuple[str, str, str, bool]:
    """``(key, label, unit, known)`` of a limit entry, from its type, unit and number alone."""
    kind = _kind(item)
    unit_code = _int(item.get("unit"))
    count = _int(item.get("number"))
    known = WINDOWS.get((kind, unit_code, count))
    if known is not None:
        return (*known, True)
    unit = "tokens" if "TOKEN" in kind else "credits" if "CREDIT" in kind else "calls" if "TIME" in kind else "requests"
    return _key(item), _generic_label(kind, unit_code, count), unit, False


def _window(item: dict) -> tuple[Quota | None, bool]:
    """One limit entry as a quota, and whether its kind is a known one."""
    key, label, unit, known = _classify(item)
    kind = _kind(item)
    unit_code = _int(item.get("unit"))
    count = _int(item.get("number"))
    used = amount(first(item, "currentValue", "current_value"), "currentValue")
    limit = amount(item.get("usage"), "usage")
    remaining = amount(item.get("remaining"), "remaining")
    percent = share(first(item, "percentage", "percent"), "percentage")
    if used is None and limit is None and remaining is None and percent is None:
        return None, known
    if used is None and limit is None and remaining is None:
        # Some plans report only a share: the numbers are percentages then.
        unit = "percent"

    details: dict[str, Any] = {"window": {"type": kind, "unit": unit_code, "number": count}}
    usage_details = first(item, "usageDetails", "usage_details")
    if isinstance(usage_details, list):
        details["tools"] = [
            {
                "name": clean_text(first(d, "modelCode", "model_code", "name"), 100),
                "used": amount(first(d, "usage", "used"), "usageDetails.usage"),
            }
            for d in usage_details
            if isinstance(d, dict) and first(d, "modelCode", "model_code", "name") is not None
        ]
    quota = Quota(
        key=key,
        label=label,
        kind="reset",
        unit=unit,
        used=used,
        limit=limit,
        remaining=remaining,
        percent=percent,
        resets_at=epoch_ms(first(item, "nextResetTime", "next_reset_time")),
        details=details,
    )
    return check_quota(quota), known


def _text(value: Any) -> str | None:
    return (clean_text(value, MAX_PLAN) or None) if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    n = number(value)
    return int(n) if n is not None and n == int(n) and abs(n) < 1e15 else None


def _generic_label(kind: str, unit_code: int | None, count: int | None) -> str:
    name = kind.replace("_LIMIT", "").replace("_", " ").capitalize()
    span = TIME_UNITS.get(unit_code) if unit_code is not None else None
    if span and count:
        return f"{name} ({count} {span}{'s' if count != 1 else ''})"
    return f"{name} (unit {unit_code}, number {count})"
