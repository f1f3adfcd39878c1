"""The JSON API's response bodies as JSON Schema (2020-12, the dialect of OpenAPI 3.1), each declared once.

``SCHEMAS`` goes into the OpenAPI document's ``components/schemas``
(quotas.openapi) and is what its tests validate live responses against. The
enumerations come from the code that produces the values (models' choices,
``numbers``, ``history``, ``insights``, ``preferences``), so a new value there
is a new value here. Objects whose keys are fixed say
``additionalProperties: false``: a key a view adds or drops fails the tests.
A ``?provider=both`` answer is built from the single-provider schema
(``by_provider``), never copied.
"""

from __future__ import annotations

from typing import Any

from alerts.models import Delivery, Event, Level
from quotas import history, insights, numbers, preferences, providers
from quotas.models import Kind, Outcome

Schema = dict[str, Any]

# lib.timefmt.isostring: ISO-8601 UTC, whole seconds, "Z".
ISO_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
PREFIX = "#/components/schemas/"


def ref(name: str) -> Schema:
    return {"$ref": PREFIX + name}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null: ``"type": [..., "null"]``, and null among an enum's values."""
    result = dict(schema)
    if "enum" in result:
        result["enum"] = [*result["enum"], None]
    kind = result.get("type")
    if kind is not None:
        result["type"] = [*(kind if isinstance(kind, list) else [kind]), "null"]
    return result


def strict(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    """An object with exactly these keys, every one required but ``optional``."""
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
        "additionalProperties": False,
    }


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def enum(values: Any) -> Schema:
    return {"type": "string", "enum": list(values)}


def by_provider(name: str) -> Schema:
    """``{"synthetic": <name>, "zai": <name>}``: a ``?provider=both`` answer."""
    return strict({provider: ref(name) for provider in providers.NAMES})


def one_or_both(name: str) -> Schema:
    """One provider's body, or (``?provider=both``) every provider's by id."""
    return {"oneOf": [ref(name), ref(name + "ByProvider")]}


TIME = {"type": "string", "format": "date-time", "pattern": ISO_PATTERN}
OPTIONAL_TIME = nullable(TIME)
NUMBER = {"type": "number"}
OPTIONAL_NUMBER = nullable(NUMBER)
COUNT = {"type": "integer", "minimum": 0}
OPTIONAL_COUNT = nullable(COUNT)
STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
PROVIDER = enum(providers.NAMES)
OUTCOME = enum(Outcome.values)
KIND = enum(Kind.values)
STATUSES = [status for _, status in numbers.STATUS_THRESHOLDS] + ["unknown"]
OUTLOOKS = [numbers.OUTLOOK_OK, numbers.OUTLOOK_RUNS_OUT, numbers.OUTLOOK_EXHAUSTED]
RATE_BASES = [*numbers.SUFFICIENT_BASES, "insufficient"]

ERROR = strict({"error": STRING})

CURRENT_QUOTA = strict(
    {
        "key": STRING,
        "label": STRING,
        "kind": KIND,
        "unit": STRING,
        "used": OPTIONAL_NUMBER,
        "limit": OPTIONAL_NUMBER,
        "remaining": OPTIONAL_NUMBER,
        "percent": OPTIONAL_NUMBER,
        "status": enum(STATUSES),
        "resets_at": OPTIONAL_TIME,
        "seconds_until_reset": OPTIONAL_COUNT,
        "rate_per_hour": OPTIONAL_NUMBER,
        "projected_used": OPTIONAL_NUMBER,
        "projected_percent": OPTIONAL_NUMBER,
        "exhausts_at": OPTIONAL_TIME,
        "seconds_until_exhausted": OPTIONAL_COUNT,
        "outlook": enum(OUTLOOKS),
        # What the upstream reported beyond the numbers, plus the tick math of rolling windows.
        "details": {"type": "object"},
        "rate_basis": nullable(enum(RATE_BASES)),
        "projected_at": OPTIONAL_TIME,
        "hidden": BOOLEAN,
        "exhausted": BOOLEAN,
    }
)

CURRENT = strict(
    {
        "provider": PROVIDER,
        "captured_at": OPTIONAL_TIME,
        "plan": nullable(STRING),
        "drift": BOOLEAN,
        "last_poll": nullable(strict({"at": TIME, "outcome": OUTCOME, "message": STRING})),
        "quotas": array(ref("CurrentQuota")),
    }
)

HISTORY = strict(
    {
        "provider": PROVIDER,
        "range": enum(history.RANGES),
        "start": TIME,
        "end": TIME,
        "bucket_seconds": {"type": "number", "exclusiveMinimum": 0},
        "series": array(
            strict(
                {
                    "key": STRING,
                    "label": STRING,
                    # [time, percent, used]: used is null when the upstream gave only a share.
                    "points": array(
                        {
                            "type": "array",
                            "prefixItems": [TIME, OPTIONAL_NUMBER, OPTIONAL_NUMBER],
                            "minItems": 3,
                            "items": False,
                        }
                    ),
                }
            )
        ),
        # [start, end] of each stretch without a successful poll.
        "gaps": array({"type": "array", "prefixItems": [TIME, TIME], "minItems": 2, "items": False}),
    }
)

CYCLE = strict(
    {
        "id": {"type": "integer"},
        "quota": STRING,
        "unit": STRING,
        "started_at": TIME,
        "ended_at": OPTIONAL_TIME,
        "active": BOOLEAN,
        "duration_seconds": OPTIONAL_COUNT,
        "limit": OPTIONAL_NUMBER,
        "peak_used": OPTIONAL_NUMBER,
        "consumed": OPTIONAL_NUMBER,
        "rate_per_hour": OPTIONAL_NUMBER,
        "resets_at": OPTIONAL_TIME,
    }
)

SUMMARY_QUOTA = strict(
    {
        "key": STRING,
        "label": STRING,
        "kind": KIND,
        "unit": STRING,
        "completed_cycles": COUNT,
        "avg_consumed_per_cycle": OPTIONAL_NUMBER,
        "max_consumed_per_cycle": OPTIONAL_NUMBER,
        "avg_peak_percent": OPTIONAL_NUMBER,
        "total_consumed": OPTIONAL_NUMBER,
        "tracking_since": TIME,
    }
)

SESSION = strict(
    {
        "id": {"type": "integer"},
        "provider": PROVIDER,
        "started_at": TIME,
        "ended_at": OPTIONAL_TIME,
        "active": BOOLEAN,
        "duration_seconds": OPTIONAL_COUNT,
        "interval_seconds": COUNT,
        "polls_ok": COUNT,
        "polls_failed": COUNT,
        # By quota key.
        "quotas": {
            "type": "object",
            "additionalProperties": strict({"peak_used": OPTIONAL_NUMBER, "consumed": OPTIONAL_NUMBER}),
        },
    }
)

POLL = strict(
    {
        "id": {"type": "integer"},
        "provider": PROVIDER,
        "at": TIME,
        "outcome": OUTCOME,
        "drift": BOOLEAN,
        "latency_ms": OPTIONAL_COUNT,
        "message": STRING,
    }
)

INSIGHT = strict(
    {
        "key": enum([*insights.INSIGHT_KEYS, insights.ALL_HIDDEN_KEY]),
        "title": STRING,
        "value": STRING,
        "sublabel": STRING,
        "description": STRING,
        "severity": enum(insights.SEVERITIES),
    }
)

INSIGHTS = strict(
    {
        "provider": PROVIDER,
        "stats": array(strict({"label": STRING, "value": STRING})),
        "insights": array(ref("Insight")),
    }
)

PROVIDER_STATE = strict(
    {
        "id": PROVIDER,
        "name": STRING,
        "configured": BOOLEAN,
        "last_poll_at": OPTIONAL_TIME,
        "last_status": nullable(OUTCOME),
        "last_success_at": OPTIONAL_TIME,
        "interval_seconds": COUNT,
        "stale": BOOLEAN,
        "poller_running": BOOLEAN,
        "poll_requested_at": OPTIONAL_TIME,
        "last_storage_error": nullable(strict({"at": TIME, "message": STRING})),
    }
)

SETTINGS = strict(
    {
        "timezone": nullable(STRING),
        "hidden_insights": array(enum(insights.INSIGHT_KEYS)),
        "theme": nullable(enum(preferences.THEMES)),
    }
)

ALERT = strict(
    {
        "id": {"type": "integer"},
        "at": TIME,
        "event": enum(Event.values),
        "provider": STRING,
        "quota": nullable(STRING),
        "level": nullable(enum(Level.values)),
        "title": STRING,
        "message": STRING,
        "deliveries": array(
            strict({"channel": STRING, "status": enum(Delivery.Status.values), "error": nullable(STRING)})
        ),
    }
)

GUARD_QUOTA = strict(
    {
        "key": STRING,
        "label": STRING,
        "kind": KIND,
        "remaining_percent": OPTIONAL_NUMBER,
        "ok": BOOLEAN,
        "resets_at": OPTIONAL_TIME,
        "retry_at": OPTIONAL_TIME,
    }
)

# quotas.guard.check: the fields every verdict has.
_GUARD_BASE = {"provider": PROVIDER, "min_remaining_percent": {"type": "number"}, "checked_at": TIME}

SCHEMAS: dict[str, Schema] = {
    "Error": ERROR,
    "Status": strict({"status": {"const": "ok"}}),
    # "error": the database does not answer; "degraded": it answers, but a write would wait or fail.
    "StatusError": strict(
        {
            "status": enum(["error", "degraded"]),
            "database": enum(["ok", "unavailable"]),
            "writable": {"const": False},
            "error": STRING,
        }
    ),
    "Providers": strict({"providers": array(ref("ProviderState"))}),
    "ProviderState": PROVIDER_STATE,
    "CurrentQuota": CURRENT_QUOTA,
    "Current": CURRENT,
    "CurrentByProvider": by_provider("Current"),
    "History": HISTORY,
    "HistoryByProvider": by_provider("History"),
    "Cycle": CYCLE,
    "Cycles": strict({"provider": PROVIDER, "cycles": array(ref("Cycle"))}),
    "CyclesByProvider": by_provider("Cycles"),
    "SummaryQuota": SUMMARY_QUOTA,
    "Summary": strict({"provider": PROVIDER, "quotas": array(ref("SummaryQuota"))}),
    "SummaryByProvider": by_provider("Summary"),
    "Session": SESSION,
    "Sessions": strict({"sessions": array(ref("Session"))}),
    "SessionsByProvider": by_provider("Sessions"),
    "Poll": POLL,
    "Polls": strict({"polls": array(ref("Poll"))}),
    "PollsByProvider": by_provider("Polls"),
    "Insight": INSIGHT,
    "Insights": INSIGHTS,
    "InsightsByProvider": by_provider("Insights"),
    "Settings": SETTINGS,
    "Alert": ALERT,
    "Alerts": strict({"alerts": array(ref("Alert"))}),
    "GuardQuota": GUARD_QUOTA,
    "GuardOk": strict(
        {"ok": {"const": True}, **_GUARD_BASE, "captured_at": OPTIONAL_TIME, "quotas": array(ref("GuardQuota"))}
    ),
    "GuardLow": strict(
        {
            "ok": {"const": False},
            "reason": STRING,
            "retry_at": OPTIONAL_TIME,
            "stale": {"const": False},
            **_GUARD_BASE,
            "captured_at": OPTIONAL_TIME,
            "quotas": array(ref("GuardQuota")),
        }
    ),
    "GuardStale": strict(
        {
            "ok": {"const": False},
            "reason": STRING,
            "retry_at": {"type": "null"},
            "stale": {"const": True},
            **_GUARD_BASE,
        }
    ),
    "PollRequested": strict(
        {"requested_at": TIME, "poller_running": {"const": True}, "providers": {**array(PROVIDER), "minItems": 1}}
    ),
    "NotPolling": strict({"error": STRING, "poller_running": BOOLEAN}),
    "OpenApi": {
        "type": "object",
        "required": ["openapi", "info", "paths"],
        "properties": {"openapi": {"type": "string", "pattern": r"^3\.1\.\d+$"}},
    },
}
