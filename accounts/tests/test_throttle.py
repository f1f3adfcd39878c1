"""Login throttling per client address (product.md §9)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from accounts import throttle
from accounts.auth import basic_cache
from accounts.models import LoginThrottle, User

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-passw0rd"
START = datetime(2026, 2, 6, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_basic_cache() -> None:
    basic_cache.clear()


@pytest.fixture
def user() -> User:
    return User.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def clock() -> time_machine.Coordinates:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def form_login(client: Client, password: str, username: str = "alice", address: str = "192.0.2.1", **extra: str):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address, **extra)


def basic_get(client: Client, password: str, username: str = "alice", address: str = "192.0.2.1"):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return client.get("/api/settings", HTTP_AUTHORIZATION=f"Basic {token}", REMOTE_ADDR=address)


def fail(client: Client, times: int, address: str = "192.0.2.1") -> None:
    for i in range(times):
        response = form_login(client, "wrong-password", username=f"user{i}", address=address)
        assert response.status_code in (200, 429)  # the form again, with an error


def test_four_failures_do_not_lock(client: Client, user: User, clock: time_machine.Coordinates) -> None:
    fail(client, 4)
    assert form_login(client, PASSWORD).status_code == 302


def test_five_failures_with_any_usernames_lock_the_address_even_for_the_right_password(
    client: Client, user: User, clock: time_machine.Coordinates
) -> None:
    fail(client, 5)
    response = form_login(client, PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lock_lasts_fifteen_minutes(client: Client, user: User, clock: time_machine.Coordinates) -> None:
    fail(client, 5)
    clock.shift(timedelta(minutes=14, seconds=30))
    response = form_login(client, PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == "30"
    clock.shift(timedelta(seconds=31))
    assert form_login(client, PASSWORD).status_code == 302


def test_attempts_during_the_lock_do_not_extend_it(client: Client, user: User, clock: time_machine.Coordinates) -> None:
    fail(client, 5)
    for _ in range(3):
        clock.shift(timedelta(minutes=4))
        assert form_login(client, "wrong-password").status_code == 429
    clock.shift(timedelta(minutes=3, seconds=1))
    assert form_login(client, PASSWORD).status_code == 302


def test_failures_older_than_the_window_do_not_count(
    client: Client, user: User, clock: time_machine.Coordinates
) -> None:
    fail(client, 4)
    clock.shift(timedelta(minutes=15, seconds=1))
    fail(client, 4)
    assert form_login(client, PASSWORD).status_code == 302


def test_a_success_resets_the_counter(client: Client, user: User, clock: time_machine.Coordinates) -> None:
    fail(client, 4)
    assert form_login(client, PASSWORD).status_code == 302
    client.logout()
    fail(client, 4)
    assert form_login(client, PASSWORD).status_code == 302
    assert not LoginThrottle.objects.exists()


def test_other_addresses_are_not_locked(client: Client, user: User, clock: time_machine.Coordinates) -> None:
    fail(client, 5, address="192.0.2.1")
    # No per-username lock: the owner logs in from elsewhere.
    assert form_login(client, PASSWORD, address="198.51.100.2").status_code == 302


def test_form_logins_and_basic_auth_share_the_counter(
    client: Client, user: User, clock: time_machine.Coordinates
) -> None:
    fail(client, 3)
    assert basic_get(client, "wrong-password").status_code == 401
    assert basic_get(client, "wrong-password", username="bob").status_code == 429  # the fifth
    assert form_login(client, PASSWORD).status_code == 429


def test_basic_auth_failures_lock_form_logins_too(client: Client, user: User, clock: time_machine.Coordinates) -> None:
    for _ in range(5):
        basic_get(client, "wrong-password")
    assert form_login(client, PASSWORD).status_code == 429


def test_a_locked_address_gets_a_json_429_on_basic_auth(
    client: Client, user: User, clock: time_machine.Coordinates
) -> None:
    fail(client, 5)
    response = basic_get(client, PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert "error" in response.json()
    assert "WWW-Authenticate" not in response


def test_the_lock_applies_to_remembered_basic_credentials(
    client: Client, user: User, clock: time_machine.Coordinates
) -> None:
    assert basic_get(client, PASSWORD).status_code == 200  # now remembered
    fail(client, 5)
    assert basic_get(client, PASSWORD).status_code == 429


def test_the_fifth_form_failure_answers_429(client: Client, user: User, clock: time_machine.Coordinates) -> None:
    for _ in range(4):
        assert form_login(client, "wrong-password").status_code == 200
    response = form_login(client, "wrong-password")
    assert response.status_code == 429
    assert response["Retry-After"] == "900"


def test_the_fifth_basic_failure_answers_429(client: Client, user: User, clock: time_machine.Coordinates) -> None:
    for _ in range(4):
        assert basic_get(client, "wrong-password").status_code == 401
    response = basic_get(client, "wrong-password")
    assert response.status_code == 429
    assert response["Retry-After"] == "900"


def test_a_basic_success_resets_the_counter(client: Client, user: User, clock: time_machine.Coordinates) -> None:
    fail(client, 4)
    assert basic_get(client, PASSWORD).status_code == 200
    fail(client, 4)
    assert form_login(client, PASSWORD).status_code == 302


def test_the_admin_login_shares_the_counter(client: Client, clock: time_machine.Coordinates) -> None:
    User.objects.create_superuser("root", password=PASSWORD)
    for _ in range(4):
        response = client.post("/admin/login/", {"username": "root", "password": "nope"}, REMOTE_ADDR="192.0.2.1")
        assert response.status_code == 200
    response = client.post("/admin/login/", {"username": "root", "password": "nope"}, REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 429
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD}, REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert form_login(client, PASSWORD, username="root").status_code == 429


def test_incomplete_forms_are_not_counted(client: Client, user: User, clock: time_machine.Coordinates) -> None:
    for _ in range(6):
        assert client.post("/login/", {"username": "alice"}, REMOTE_ADDR="192.0.2.1").status_code == 200
    assert form_login(client, PASSWORD).status_code == 302


def test_it_counts_the_forwarded_client_behind_a_trusted_proxy(
    client: Client, user: User, clock: time_machine.Coordinates, settings
) -> None:
    settings.SYNTRACK_TRUSTED_PROXIES = ["10.0.0.1"]
    for _ in range(5):
        form_login(client, "wrong-password", address="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert LoginThrottle.objects.get().address == "198.51.100.7"
    locked = form_login(client, PASSWORD, address="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert locked.status_code == 429
    # Another client behind the same proxy is not locked out.
    other = form_login(client, PASSWORD, address="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert other.status_code == 302


def test_a_forged_x_forwarded_for_does_not_escape_the_lock(
    client: Client, user: User, clock: time_machine.Coordinates
) -> None:
    fail(client, 5)
    response = form_login(client, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert response.status_code == 429


def test_record_failure_reports_the_lock(clock: time_machine.Coordinates) -> None:
    assert [throttle.record_failure("192.0.2.5") for _ in range(4)] == [None] * 4
    assert throttle.record_failure("192.0.2.5") == 900
    clock.shift(timedelta(minutes=5))
    assert throttle.locked_for("192.0.2.5") == 600
    assert throttle.locked_for("192.0.2.6") is None


def test_a_new_count_starts_after_the_lock(clock: time_machine.Coordinates) -> None:
    for _ in range(5):
        throttle.record_failure("192.0.2.5")
    clock.shift(timedelta(minutes=15, seconds=1))
    assert throttle.locked_for("192.0.2.5") is None
    assert throttle.record_failure("192.0.2.5") is None
    row = LoginThrottle.objects.get(address="192.0.2.5")
    assert row.failures == 1
    assert row.locked_until is None


def test_it_forgets_rows_that_count_for_nothing(clock: time_machine.Coordinates) -> None:
    throttle.record_failure("192.0.2.5")
    clock.shift(timedelta(hours=1))
    throttle.record_failure("192.0.2.6")
    assert list(LoginThrottle.objects.values_list("address", flat=True)) == ["192.0.2.6"]
