"""``/settings/``: alert channels, events, threshold levels and API tokens; plain forms, each posting back here.

Admins only (accounts.roles): a viewer gets a 403 page, for the page and every POST.

Every POST names its ``action``; a good one redirects back with a message
(post/redirect/get), a bad one renders the page again with the form's errors.
A channel's URL never comes back to the page: only its masked name. A new
API token is the one answer that is not a redirect: it is shown on the page
rendered by that POST, once, and exists nowhere else afterwards.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import tokens
from accounts.forms import TokenForm
from accounts.models import ApiToken
from accounts.roles import admin_only
from alerts import channels
from alerts.delivery import send
from alerts.forms import ChannelForm, EventsForm, ThresholdsForm
from alerts.models import Channel
from quotas.models import QuotaReading, Snapshot
from quotas.providers import NAMES

TEST_TITLE = "SynTrack test"
TEST_BODY = "This channel receives SynTrack's quota alerts."


@login_required
@admin_only
@never_cache
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    quotas = known_quotas()
    forms = {
        "channel_form": ChannelForm(),
        "events_form": EventsForm(),
        "thresholds_form": ThresholdsForm(quotas),
        "token_form": TokenForm(),
    }
    shown = {}
    if request.method == "POST":
        action = request.POST.get("action", "")
        handler = ACTIONS.get(action)
        if handler is None:
            messages.error(request, "Unknown action.")
            return HttpResponseRedirect(request.path)
        done = handler(request, forms, quotas)
        if isinstance(done, dict):
            shown, status = done, 200  # something to show once: no redirect
        elif done:
            return HttpResponseRedirect(request.path)
        else:
            status = 400
    else:
        status = 200
    levels = forms["thresholds_form"]
    emails = django_settings.SYNTRACK_ALERT_EMAILS
    context = {
        **forms,
        "level_rows": [
            {"label": label, "warning": levels[names[0]], "critical": levels[names[1]]}
            for _, _, label, names in levels.rows
        ],
        "channels": channels.configured_with_disabled(),
        "email": {"on": bool(emails and django_settings.EMAIL_URL_SET), "to": ", ".join(emails)},
        "heartbeat": channels.mask(django_settings.SYNTRACK_HEARTBEAT_URL)
        if django_settings.SYNTRACK_HEARTBEAT_URL
        else "",
        "tokens": ApiToken.objects.all(),
        **shown,
    }
    return render(request, "alerts/settings.html", context, status=status)


def add_channel(request: HttpRequest, forms: dict, quotas: list) -> bool:
    form = forms["channel_form"] = ChannelForm(request.POST)
    if not form.is_valid():
        return False
    channel = Channel.objects.create(url=form.cleaned_data["url"])
    messages.success(request, f"Added {channels.mask(channel.url)}.")
    return True


def _stored(request: HttpRequest) -> Channel | None:
    pk = request.POST.get("channel", "")
    channel = Channel.objects.filter(pk=int(pk)).first() if pk.isdigit() else None
    if channel is None:
        messages.error(request, "That channel is no longer on the list.")
    return channel


def toggle_channel(request: HttpRequest, forms: dict, quotas: list) -> bool:
    channel = _stored(request)
    if channel is not None:
        channel.enabled = not channel.enabled
        channel.save(update_fields=["enabled"])
        state = "enabled" if channel.enabled else "disabled"
        messages.success(request, f"{channels.mask(channel.url)} {state}.")
    return True


def remove_channel(request: HttpRequest, forms: dict, quotas: list) -> bool:
    channel = _stored(request)
    if channel is not None:
        channel.delete()
        messages.success(request, f"Removed {channels.mask(channel.url)}.")
    return True


def test_channel(request: HttpRequest, forms: dict, quotas: list) -> bool:
    key = request.POST.get("channel", "")
    found = next((c for c in channels.configured_with_disabled() if c.key == key), None)
    if found is None:
        messages.error(request, "That channel is no longer on the list.")
        return True
    outcome = send(found, TEST_TITLE, TEST_BODY)
    if outcome.sent:
        messages.success(request, f"Test sent to {found.name}.")
    else:
        messages.error(request, f"Test to {found.name} failed: {outcome.error}")
    return True


def save_events(request: HttpRequest, forms: dict, quotas: list) -> bool:
    form = forms["events_form"] = EventsForm(request.POST)
    if not form.is_valid():
        return False
    form.save()
    messages.success(request, "Events saved.")
    return True


def save_thresholds(request: HttpRequest, forms: dict, quotas: list) -> bool:
    form = forms["thresholds_form"] = ThresholdsForm(quotas, request.POST)
    if not form.is_valid():
        return False
    form.save()
    messages.success(request, "Levels saved.")
    return True


def create_token(request: HttpRequest, forms: dict, quotas: list) -> bool | dict:
    form = forms["token_form"] = TokenForm(request.POST)
    if not form.is_valid():
        return False
    try:
        row, token = tokens.create(form.cleaned_data["name"], by=request.user)
    except tokens.TokenError as e:
        form.add_error("name", str(e)[:1].upper() + str(e)[1:])
        return False
    return {"new_token": token, "new_token_name": row.name}


def revoke_token(request: HttpRequest, forms: dict, quotas: list) -> bool:
    pk = request.POST.get("token", "")
    row = ApiToken.objects.filter(pk=int(pk)).first() if pk.isdigit() else None
    if row is None:
        messages.error(request, "That token is no longer on the list.")
    else:
        row.delete()
        messages.success(request, f"Revoked the token {row.name}.")
    return True


ACTIONS = {
    "add_channel": add_channel,
    "toggle_channel": toggle_channel,
    "remove_channel": remove_channel,
    "test_channel": test_channel,
    "save_events": save_events,
    "save_thresholds": save_thresholds,
    "create_token": create_token,
    "revoke_token": revoke_token,
}


def known_quotas() -> list[tuple[str, str, str]]:
    """(provider, key, label) of each quota in each provider's latest usable snapshot (two queries a provider)."""
    found = []
    for provider, name in NAMES.items():
        snapshot = Snapshot.objects.filter(provider=provider, usable=True).order_by("-captured_at").values("id").first()
        if snapshot is None:
            continue
        readings = QuotaReading.objects.filter(snapshot_id=snapshot["id"]).order_by("id")
        for key, label in readings.values_list("key", "label"):
            found.append((provider, key, f"{name} · {label}"))
    return found
