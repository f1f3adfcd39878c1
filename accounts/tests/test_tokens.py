"""Read-only API tokens: made once, stored hashed, GET only, revocable (issue 9 §2)."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiToken, LoginThrottle, User

pytestmark = pytest.mark.django_db


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def token() -> str:
    return tokens.create("grafana")[1]


def test_a_token_is_stk_and_256_random_bits_and_only_its_digest_is_stored() -> None:
    row, token = tokens.create("ci")
    assert tokens.TOKEN.fullmatch(token)
    assert row.digest == hashlib.sha256(token.encode()).hexdigest()
    assert row.prefix == token[:8] and token not in str(ApiToken.objects.values().get())
    assert tokens.create("other")[1] != token


@pytest.mark.parametrize(
    "path", ["/api/current?provider=zai", "/api/history?provider=zai", "/api/settings", "/api/alerts", "/api/polls"]
)
def test_a_token_reads_the_api(client: Client, token: str, path: str) -> None:
    response = client.get(path, **bearer(token))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/api/settings"), ("post", "/api/poll"), ("put", "/api/password")],
)
def test_a_token_never_writes(client: Client, token: str, method: str, path: str) -> None:
    response = getattr(client, method)(path, data="{}", content_type="application/json", **bearer(token))
    assert response.status_code == 403
    assert response.json() == {"error": "API tokens are read-only: sign in to change anything"}


@pytest.mark.parametrize("value", ["stk_" + "x" * 43, "stk_short", "", "not-a-token", "stk_" + "é" * 43])
def test_an_unknown_or_malformed_token_is_a_401_and_counts_as_a_failed_login(client: Client, value: str) -> None:
    response = client.get("/api/current?provider=zai", **bearer(value))
    assert response.status_code == 401
    assert response.json() == {"error": "unknown or revoked API token"}
    assert LoginThrottle.objects.get().failures == 1


def test_guessing_tokens_locks_the_address_out(client: Client, token: str) -> None:
    for _ in range(5):
        client.get("/api/current?provider=zai", **bearer("stk_" + "y" * 43))
    response = client.get("/api/current?provider=zai", **bearer(token))
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_a_revoked_token_stops_working_at_once(client: Client, token: str) -> None:
    assert client.get("/api/current?provider=zai", **bearer(token)).status_code == 200
    assert tokens.revoke("grafana") is True
    assert client.get("/api/current?provider=zai", **bearer(token)).status_code == 401
    assert tokens.revoke("grafana") is False


def test_last_use_is_noted_at_most_once_a_minute(client: Client, token: str) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.get("/api/current?provider=zai", **bearer(token))
    assert ApiToken.objects.get().last_used_at == start
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        client.get("/api/current?provider=zai", **bearer(token))
    assert ApiToken.objects.get().last_used_at == start
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        client.get("/api/current?provider=zai", **bearer(token))
    assert ApiToken.objects.get().last_used_at == start + timedelta(seconds=61)


def test_a_token_does_not_open_the_dashboard_or_the_admin(client: Client, token: str) -> None:
    assert client.get("/", **bearer(token)).status_code == 302
    assert client.get("/admin/", **bearer(token)).status_code == 302


def test_createtoken_prints_the_token_and_nothing_else() -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("createtoken", "prometheus", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert out.getvalue() == token + "\n" and err.getvalue() == ""
    assert tokens.find(token).name == "prometheus"


@pytest.mark.parametrize(("name", "message"), [("grafana", "exists already"), ("", "1-64"), ("a/b", "1-64")])
def test_createtoken_refuses_a_taken_or_bad_name_with_exit_2(token: str, name: str, message: str) -> None:
    with pytest.raises(CommandError, match=message) as raised:
        call_command("createtoken", name, stdout=io.StringIO())
    assert raised.value.returncode == 2


def test_revoketoken_revokes_and_exits_1_for_an_unknown_name(client: Client, token: str) -> None:
    out = io.StringIO()
    call_command("revoketoken", "grafana", stdout=out)
    assert out.getvalue() == "revoked 'grafana'\n"
    assert client.get("/api/current?provider=zai", **bearer(token)).status_code == 401
    with pytest.raises(CommandError, match="no API token called 'grafana'") as raised:
        call_command("revoketoken", "grafana", stdout=io.StringIO())
    assert raised.value.returncode == 1


def test_the_admin_lists_tokens_without_their_digest() -> None:
    admin = User.objects.create_superuser("root", password="a-long-admin-passw0rd")
    _, token = tokens.create("grafana")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/accounts/apitoken/").content.decode()
    assert "grafana" in page and token[:8] in page
    assert ApiToken.objects.get().digest not in page and token not in page
