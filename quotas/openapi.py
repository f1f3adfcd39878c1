"""``GET /api/openapi.json``: an OpenAPI 3.1 document of the JSON API, built from the code that validates it.

- Query parameters: the fields of the form each view validates its query
  with (quotas.forms, quotas.toolforms, alerts.api), walked at build time:
  field type → schema type, choices → ``enum``, bounds → ``minimum`` /
  ``maximum`` / ``maxLength``, a regex validator → ``pattern``, the field's
  own error message → its description. An optional parameter may be sent
  empty: the forms take the default then (``allowEmptyValue``).
- Request bodies: ``PUT /api/settings`` from quotas.preferences' cleaners
  (its zone names, insight keys and themes), ``PUT /api/password`` from the
  password validators in settings, ``POST /api/poll`` from ProviderForm.
- Responses: quotas.api_schemas, one schema per body, and ``{"error": …}``
  with each status the view can answer.

The document is built once per process (``document()``); the view serves it
with the same authentication as every other GET under /api/.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, NamedTuple

from django import forms as django_forms
from django.conf import settings
from django.contrib.auth.password_validation import MinimumLengthValidator, get_password_validators
from django.core.validators import RegexValidator

from accounts import passwords
from accounts.auth import api_auth
from alerts.api import AlertsForm
from quotas import api_schemas, export, forms, insights, preferences, toolforms
from quotas.api import answer, methods
from quotas.api_schemas import ref

VERSION = "3.1.0"
JSON = "application/json"

# Authentication (accounts.auth.api_auth): any one of these.
READ = [{"sessionCookie": []}, {"basicAuth": []}, {"bearerToken": []}]
# Writes: a session needs the CSRF token too; a read-only token gets 403.
WRITE = [{"sessionCookie": [], "csrfToken": []}, {"basicAuth": []}]


class Operation(NamedTuple):
    path: str
    method: str
    summary: str
    # Status → (description, body schema or None for no body, media type).
    responses: dict[int, tuple[str, Any, str]]
    form: type[django_forms.Form] | None = None
    security: list | None = None  # None: READ
    body: dict | None = None


def error(description: str) -> tuple[str, Any, str]:
    return description, ref("Error"), JSON


def body(description: str, name: str) -> tuple[str, Any, str]:
    return description, ref(name), JSON


def one_or_both(description: str, name: str) -> tuple[str, Any, str]:
    return description, api_schemas.one_or_both(name), JSON


UNAUTHORIZED = error("No session, Basic credentials or token; or wrong ones.")
LOCKED_OUT = error(
    "Too many failed logins from this address (accounts.throttle): locked out; Retry-After says for how long."
)
BAD_QUERY = error("A query parameter is invalid: the message names it.")
FORBIDDEN_WRITE = error("A read-only API token, or a session without the X-CSRFToken header.")
# syntrack_site.api_errors: any request may meet a locked or unreachable database.
DATABASE_BUSY = error("The database is locked or cannot be reached: try again after Retry-After.")


def read_errors(*, bad_query: bool = True) -> dict[int, tuple[str, Any, str]]:
    errors = {401: UNAUTHORIZED, 429: LOCKED_OUT, 503: DATABASE_BUSY}
    if bad_query:
        errors[400] = BAD_QUERY
    return errors


def operations() -> list[Operation]:
    export_types = {media for media, _ in export.FORMATS.values()}
    return [
        Operation(
            "/api/status",
            "get",
            "Health check: the database answers and takes a write promptly. No authentication.",
            {
                200: body("The database answers and would take a write now.", "Status"),
                503: body(
                    "The database does not answer (error), or a write would wait or fail: locked, read-only (degraded)",
                    "StatusError",
                ),
            },
            security=[],
        ),
        Operation(
            "/api/providers",
            "get",
            "Every known provider: configured or not, its latest polls, freshness, the poller.",
            {200: body("The providers.", "Providers"), **read_errors(bad_query=False)},
        ),
        Operation(
            "/api/current",
            "get",
            "The numbers of each quota now: usage, status, rate, projection, outlook.",
            {200: one_or_both("The provider's quotas.", "Current"), **read_errors()},
            forms.ProviderForm,
        ),
        Operation(
            "/api/history",
            "get",
            "Each quota as % of its limit over a range, downsampled to at most 500 points, with the gaps.",
            {200: one_or_both("The chart's series.", "History"), **read_errors()},
            forms.HistoryForm,
        ),
        Operation(
            "/api/cycles",
            "get",
            "Reset cycles, newest first.",
            {
                200: one_or_both("The cycles.", "Cycles"),
                **read_errors(),
                400: error("A query parameter is invalid, or quota names a key the provider never reported."),
            },
            forms.CyclesForm,
        ),
        Operation(
            "/api/summary",
            "get",
            "Every quota the provider has reported, with its cycle statistics.",
            {200: one_or_both("The quotas.", "Summary"), **read_errors()},
            forms.ProviderForm,
        ),
        Operation(
            "/api/sessions",
            "get",
            "Poll sessions, newest first; without provider, every provider's.",
            {200: one_or_both("The sessions.", "Sessions"), **read_errors()},
            forms.ListForm,
        ),
        Operation(
            "/api/insights",
            "get",
            "What the stored data says: headline stats and insight cards (without the caller's hidden ones).",
            {200: one_or_both("Stats and cards.", "Insights"), **read_errors()},
            forms.InsightsForm,
        ),
        Operation(
            "/api/polls",
            "get",
            "Recent poll attempts, newest first; without provider, every provider's.",
            {200: one_or_both("The attempts.", "Polls"), **read_errors()},
            forms.ListForm,
        ),
        Operation(
            "/api/poll",
            "post",
            "Ask the running poller to poll now (provider from the query, a form or a JSON body).",
            {
                202: body("Asked: the next poll of these providers comes at once.", "PollRequested"),
                400: error(
                    "A bad provider or body, a provider given twice with different values, "
                    "or a provider without an API key."
                ),
                401: UNAUTHORIZED,
                403: FORBIDDEN_WRITE,
                409: body("No running poller would poll it; nothing was recorded.", "NotPolling"),
                429: LOCKED_OUT,
                503: DATABASE_BUSY,
            },
            forms.ProviderForm,
            security=WRITE,
            body=poll_body(),
        ),
        Operation(
            "/api/settings",
            "get",
            "The caller's display settings (a token reads the global defaults).",
            {200: body("The settings.", "Settings"), **read_errors(bad_query=False)},
        ),
        Operation(
            "/api/settings",
            "put",
            "Change some of the caller's display settings: all or nothing; answers the whole object.",
            {
                200: body("Stored; the whole settings object.", "Settings"),
                400: error("Not a JSON object, an unknown key or a bad value: nothing was changed."),
                401: UNAUTHORIZED,
                403: FORBIDDEN_WRITE,
                429: LOCKED_OUT,
                503: DATABASE_BUSY,
            },
            security=WRITE,
            body=settings_body(),
        ),
        Operation(
            "/api/password",
            "put",
            "Change the caller's password; the caller's session survives, every other one ends.",
            {
                204: ("Changed.", None, JSON),
                400: error("A body that is not the object described, or a new password the validators refuse."),
                401: UNAUTHORIZED,
                403: error(
                    "The current password is wrong (counted as a failed login), or a read-only token, "
                    "or a session without the X-CSRFToken header."
                ),
                429: LOCKED_OUT,
                503: DATABASE_BUSY,
            },
            security=WRITE,
            body=password_body(),
        ),
        Operation(
            "/api/alerts",
            "get",
            "What SynTrack told people, newest first, with each delivery (channels masked).",
            {200: body("The alerts.", "Alerts"), **read_errors()},
            AlertsForm,
        ),
        Operation(
            "/api/export",
            "get",
            "The stored history as a streamed CSV or JSON Lines attachment.",
            {
                200: ("The rows, oldest first; Content-Disposition names the file.", {"type": "string"}, export_types),
                **read_errors(),
                400: error("A query parameter is invalid, or since is not before until."),
                503: error("The database cannot answer the query."),
            },
            toolforms.ExportForm,
        ),
        Operation(
            "/api/guard",
            "get",
            "May an agent spend the provider's quota now? 200 yes, 429 too little left, 503 stale numbers.",
            {
                200: body("Every checked quota has enough left.", "GuardOk"),
                **read_errors(),
                400: error("A query parameter is invalid, or quota names a key the provider does not report."),
                429: (
                    "Too little left (the body has ok false and stale false), or locked out after failed logins "
                    "(the body is an error). Retry-After, when known, says when to ask again.",
                    {"oneOf": [ref("GuardLow"), ref("Error")]},
                    JSON,
                ),
                503: (
                    "No poll yet, the last one failed, or it is too old: nothing to vouch for (ok false, stale "
                    "true). Or the database is locked or cannot be reached (an error body, with Retry-After).",
                    {"oneOf": [ref("GuardStale"), ref("Error")]},
                    JSON,
                ),
            },
            toolforms.GuardForm,
        ),
        Operation(
            "/api/openapi.json",
            "get",
            "This document.",
            {200: body("The OpenAPI 3.1 document.", "OpenApi"), **read_errors(bad_query=False)},
        ),
        Operation(
            "/metrics",
            "get",
            "Prometheus metrics (text exposition format); served once a read-only token exists.",
            {
                200: ("The metrics.", {"type": "string"}, "text/plain"),
                401: UNAUTHORIZED,
                404: ("Metrics are not enabled: no API token exists yet.", {"type": "string"}, "text/html"),
                429: LOCKED_OUT,
                503: DATABASE_BUSY,
            },
        ),
    ]


# --- forms → parameters -------------------------------------------------------------------------


def field_schema(field: django_forms.Field) -> dict[str, Any]:
    """A form field's value as JSON Schema: its type, choices, bounds and regex."""
    if isinstance(field, django_forms.ChoiceField):
        schema: dict[str, Any] = {"type": "string", "enum": [str(value) for value, _ in field.choices]}
    elif isinstance(field, django_forms.FloatField):  # before IntegerField: Django derives it from that
        schema = {"type": "number"}
    elif isinstance(field, django_forms.IntegerField):
        schema = {"type": "integer"}
    elif isinstance(field, django_forms.BooleanField):
        schema = {"type": "boolean"}
    else:
        schema = {"type": "string"}
    if isinstance(field, django_forms.IntegerField | django_forms.FloatField):
        if field.min_value is not None:
            schema["minimum"] = field.min_value
        if field.max_value is not None:
            schema["maximum"] = field.max_value
    if isinstance(field, django_forms.CharField):
        if field.max_length is not None:
            schema["maxLength"] = field.max_length
        if field.min_length is not None:
            schema["minLength"] = field.min_length
        for validator in field.validators:
            if isinstance(validator, RegexValidator) and not validator.inverse_match:
                schema["pattern"] = ecma_pattern(validator.regex.pattern)
    return schema


def ecma_pattern(pattern: str) -> str:
    """A Python regex as JSON Schema writes it: ``\\A`` / ``\\Z`` are ``^`` / ``$`` there."""
    return re.sub(r"\\Z$", "$", re.sub(r"^\\A", "^", pattern))


def field_description(field: django_forms.Field) -> str | None:
    """What the field's own messages say a good value is: its help text, else its invalid-value message."""
    if field.help_text:
        return str(field.help_text)
    for code in ("invalid_choice", "invalid", "max_length", "required"):
        message = field.error_messages.get(code)
        if message and "%(" not in str(message) and "Enter a" not in str(message):
            return f"{str(message)[:1].upper()}{str(message)[1:]}."
    return None


# What a field's clean_<name>() adds beyond the field itself: walking the fields cannot see it.
CLEANED = {
    (toolforms.ExportForm, "since"): {"anyOf": [{"format": "date"}, {"format": "date-time"}]},
    (toolforms.ExportForm, "until"): {"anyOf": [{"format": "date"}, {"format": "date-time"}]},
}


def parameters(form: type[django_forms.Form]) -> list[dict[str, Any]]:
    """The query parameters of ``form``, one per field, in the form's order."""
    result = []
    for name, field in form.base_fields.items():
        schema = field_schema(field)
        extra = next((more for (kind, key), more in CLEANED.items() if key == name and issubclass(form, kind)), None)
        if extra is not None:
            schema.update(extra)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": bool(field.required), "schema": schema}
        if not field.required:
            parameter["allowEmptyValue"] = True  # empty is the same as absent: the default
        description = field_description(field)
        if description:
            parameter["description"] = description
        result.append(parameter)
    return result


# --- request bodies ---------------------------------------------------------------------------------


def poll_body() -> dict[str, Any]:
    """``POST /api/poll``: optional; ``provider`` as a form field or in a JSON object (empty or null: every one)."""
    choices = field_schema(forms.ProviderForm.base_fields["provider"])["enum"]
    json_body = {
        "type": "object",
        "properties": {"provider": {"enum": [*choices, "", None]}},
        "additionalProperties": False,
    }
    form_body = {"type": "object", "properties": {"provider": {"type": "string", "enum": [*choices, ""]}}}
    return {
        "required": False,
        "content": {
            JSON: {"schema": json_body},
            "application/x-www-form-urlencoded": {"schema": form_body},
            "multipart/form-data": {"schema": form_body},
        },
    }


def settings_body() -> dict[str, Any]:
    """``PUT /api/settings``: some of the keys quotas.preferences cleans; empty strings and null mean "none"."""
    properties = {
        "timezone": {
            "description": "An IANA zone name; null or empty for the browser's own zone.",
            "enum": [*sorted(preferences._zone_names()), "", None],
        },
        "hidden_insights": {
            "description": "Insight keys not to show; null is none.",
            "type": ["array", "null"],
            "items": {"type": "string", "enum": list(insights.INSIGHT_KEYS)},
        },
        "theme": {
            "description": "Light, dark, or null (or empty) to follow the system; per user, so not with a token.",
            "enum": [*preferences.THEMES, "", None],
        },
    }
    assert set(properties) == set(preferences.CLEANERS), "a setting without a schema"
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    return {"required": True, "content": {JSON: {"schema": schema}}}


def password_body() -> dict[str, Any]:
    """``PUT /api/password``: the validators of AUTH_PASSWORD_VALIDATORS, as far as a schema can say them."""
    new: dict[str, Any] = {"type": "string", "minLength": 1}
    for validator in get_password_validators(settings.AUTH_PASSWORD_VALIDATORS):
        if isinstance(validator, MinimumLengthValidator):
            new["minLength"] = max(new["minLength"], validator.min_length)
        elif isinstance(validator, passwords.PlaceholderPasswordValidator):
            # Compared after strip() and lower(): each letter in either case, blanks around.
            words = "|".join(sorted(_any_case(word) for word in passwords.PLACEHOLDERS if word))
            new["not"] = {"pattern": rf"^\s*(?:{words})\s*$"}
    new["description"] = " ".join(v.get_help_text() for v in get_password_validators(settings.AUTH_PASSWORD_VALIDATORS))
    schema = {
        "type": "object",
        "required": ["current_password", "new_password"],
        "properties": {"current_password": {"type": "string", "minLength": 1}, "new_password": new},
    }
    return {"required": True, "content": {JSON: {"schema": schema}}}


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


# --- the document ----------------------------------------------------------------------------------------


def response(description: str, schema: Any, media: str | set[str]) -> dict[str, Any]:
    result: dict[str, Any] = {"description": description}
    if schema is not None:
        result["content"] = {kind: {"schema": schema} for kind in sorted({media} if isinstance(media, str) else media)}
    return result


def operation(op: Operation) -> dict[str, Any]:
    result: dict[str, Any] = {
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('.', '_')}",
        "summary": op.summary,
        "security": READ if op.security is None else op.security,
        "responses": {str(status): response(*op.responses[status]) for status in sorted(op.responses)},
    }
    if op.form is not None:
        result["parameters"] = parameters(op.form)
    if op.body is not None:
        result["requestBody"] = op.body
    headers = {
        "429": {"Retry-After": "Seconds until asking again makes sense."},
        "200": {"Content-Disposition": "attachment; filename=…"} if op.path == "/api/export" else {},
    }
    for status, named in headers.items():
        if status in result["responses"] and named:
            result["responses"][status]["headers"] = {
                name: {"description": text, "schema": {"type": "string"}} for name, text in named.items()
            }
    return result


def build() -> dict[str, Any]:
    """The whole document."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations():
        paths.setdefault(op.path, {})[op.method] = operation(op)
    return {
        "openapi": VERSION,
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "SynTrack",
            "version": "1",
            "description": (
                "Quota tracking for Synthetic and Z.ai. Times are ISO-8601 UTC. "
                '?provider=both answers {"synthetic": {…}, "zai": {…}} with the single-provider bodies. '
                'A bad parameter, or one given twice, is 400 {"error": …}; '
                "another method than those listed is 405 with Allow."
            ),
        },
        "servers": [{"url": settings.SYNTRACK_BASE_PATH or "/"}],
        "paths": paths,
        "components": {
            "schemas": api_schemas.SCHEMAS,
            "securitySchemes": {
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME},
                "csrfToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRFToken",
                    "description": "The csrftoken cookie's value: session-authenticated writes only.",
                },
                "basicAuth": {"type": "http", "scheme": "basic"},
                "bearerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A read-only token (stk_…, manage.py createtoken): GET only; writes answer 403.",
                },
            },
        },
    }


@cache
def document() -> dict[str, Any]:
    """The document, built once per process."""
    return build()


@methods("GET")
@api_auth
def openapi_view(request: object) -> Any:
    return answer(document())
