"""``manage.py serve`` (what ``make run`` ends with): loopback by default, and the refusals before anything starts."""

from __future__ import annotations

import json
import re
import signal
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from django.core.management.base import CommandError
from django.db import DatabaseError

from accounts.bootstrap import ensure_admin_user
from accounts.models import User
from quotas.management.commands.serve import check_port_free, check_safe_to_expose, is_loopback
from quotas.tests.helpers import manage, poller_env, processes, run_manage, wait_until


@contextmanager
def occupied_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another server is listening on."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_on(port: int) -> set[str]:
    """Local addresses listening on ``port``, from /proc/net/tcp{,6} (in hex, as the kernel writes them)."""
    found = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def connects(host: str, port: int) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as client:
        client.settimeout(1)
        return client.connect_ex((host, port)) == 0


# Which addresses count as loopback.


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "example.org", "128.0.0.1"])
def test_other_addresses_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


# The refusal to serve beyond loopback with a default password.


@pytest.mark.django_db
def test_a_default_password_refuses_a_non_loopback_address() -> None:
    ensure_admin_user()  # "changeme" in the test settings

    with pytest.raises(CommandError) as info:
        check_safe_to_expose("0.0.0.0")

    assert info.value.returncode == 2
    message = str(info.value)
    assert "\n" not in message
    assert "'admin'" in message
    assert "SYNTRACK_ADMIN_PASS" in message and "changepassword" in message and "SYNTRACK_HOST=127.0.0.1" in message


@pytest.mark.django_db
def test_a_default_password_is_fine_on_loopback() -> None:
    ensure_admin_user()

    check_safe_to_expose("127.0.0.1")
    check_safe_to_expose("localhost")


@pytest.mark.django_db
def test_a_real_password_may_be_served_anywhere() -> None:
    ensure_admin_user()
    admin = User.objects.get(username="admin")
    admin.set_password("a-real-passw0rd")
    admin.save()

    check_safe_to_expose("0.0.0.0")


def test_an_unreadable_database_refuses_a_non_loopback_address(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable() -> list[str]:
        raise DatabaseError("no such table: accounts_user")

    monkeypatch.setattr("quotas.management.commands.serve.default_password_users", unreadable)

    with pytest.raises(CommandError, match=r"run `\./syntrack migrate` first"):
        check_safe_to_expose("0.0.0.0")
    check_safe_to_expose("127.0.0.1")  # no database needed on loopback


# The port check.


def test_a_port_in_use_is_one_line_naming_syntrack_port() -> None:
    with occupied_port() as port, pytest.raises(CommandError) as info:
        check_port_free("127.0.0.1", port)

    assert info.value.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in str(info.value)
    assert "SYNTRACK_PORT" in str(info.value)


def test_a_free_port_passes_and_stays_free() -> None:
    port = free_port()

    check_port_free("127.0.0.1", port)

    assert not connects("127.0.0.1", port)


def test_an_address_of_another_machine_names_syntrack_host() -> None:
    # TEST-NET-1 (RFC 5737): never an address of this machine.
    with pytest.raises(CommandError, match="SYNTRACK_HOST") as info:
        check_port_free("192.0.2.1", free_port())
    assert info.value.returncode == 2


# As a process.


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_serve_exits_2_with_one_line_when_the_port_is_taken() -> None:
    with occupied_port() as port:
        result = run_manage("serve", env=poller_env(SYNTRACK_PORT=str(port)), timeout=30)

    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "SYNTRACK_PORT" in result.stderr
    assert "dashboard on" not in result.stdout  # nothing started


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_serve_refuses_0_0_0_0_with_a_default_password_before_anything_starts() -> None:
    ensure_admin_user()  # "changeme"
    port = free_port()

    result = run_manage("serve", env=poller_env(SYNTRACK_HOST="0.0.0.0", SYNTRACK_PORT=str(port)), timeout=30)

    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert "refusing to serve on 0.0.0.0" in line
    assert "SYNTRACK_ADMIN_PASS" in line and "SYNTRACK_HOST=127.0.0.1" in line
    assert "Traceback" not in result.stderr
    assert "dashboard on" not in result.stdout
    assert not connects("127.0.0.1", port)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_serve_listens_on_127_0_0_1_by_default_and_stops_on_sigterm() -> None:
    ensure_admin_user()  # "changeme": fine on loopback, with a warning
    port = free_port()
    env = poller_env(SYNTRACK_PORT=str(port))  # no provider keys, SYNTRACK_HOST empty
    assert env["SYNTRACK_HOST"] == "" and env["SYNTHETIC_API_KEY"] == "" and env["ZAI_API_KEY"] == ""

    with processes() as start:
        server = start(manage("serve", "--workers", "1"), env)
        server.wait_for_line(f"dashboard on http://127.0.0.1:{port}/", stream="stdout")
        wait_until(lambda: connects("127.0.0.1", port), 20, "gunicorn listening")

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5) as response:
            assert response.status == 200
        if Path("/proc/net/tcp").exists():
            assert listening_on(port) == {"0100007F"}, listening_on(port)  # 127.0.0.1, and only there
        assert "accounts.W001" in server.stderr
        assert "No provider key yet" in server.stderr

        server.send(signal.SIGTERM)
        code = server.wait(timeout=15)

    assert code == 0, server.output
    assert "SynTrack stopped." in server.stdout
    assert not connects("127.0.0.1", port)
    assert "Traceback" not in server.stderr


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_serve_writes_gunicorns_lines_as_json_too_with_the_json_log_format() -> None:
    ensure_admin_user()
    port = free_port()
    env = poller_env(SYNTRACK_PORT=str(port), SYNTRACK_LOG_FORMAT="json")

    with processes() as start:
        server = start(manage("serve", "--workers", "1"), env)
        wait_until(lambda: connects("127.0.0.1", port), 20, "gunicorn listening")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5) as response:
            assert response.status == 200
        server.send(signal.SIGTERM)
        assert server.wait(timeout=15) == 0, server.output

    entries = [json.loads(line) for line in server.stderr.splitlines() if line.startswith("{")]
    loggers = {entry["logger"] for entry in entries}
    assert {"gunicorn.error", "gunicorn.access"} <= loggers, server.stderr
    assert any("GET /api/status" in entry["message"] for entry in entries if entry["logger"] == "gunicorn.access")
    # gunicorn's text format ("[2026-12-02 20:34:30 +0000] [29927] [INFO] Starting gunicorn") is gone.
    assert not [line for line in server.stderr.splitlines() if re.match(r"\[\d{4}-\d\d-\d\d ", line)], server.stderr
