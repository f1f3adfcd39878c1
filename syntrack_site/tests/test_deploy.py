"""The deployment files in deploy/: supervisor runs SynTrack, the systemd units verify, nginx accepts its site.

The shipped files stay the source: a test renders a copy only where a path must point into
this checkout or a temporary directory (the install location /opt/syntrack, logs, sockets,
certificates) and, for supervisor, the user to run as. Everything else (the port, the database,
the upstream) reaches the programs through the environment, as .env would in production.
"""

from __future__ import annotations

import configparser
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password

from accounts.models import User
from quotas.models import PollAttempt
from quotas.tests.helpers import PROJECT, fake_upstream, poller_env, processes, run_manage, wait_until

DEPLOY = PROJECT / "deploy"
INSTALL = "/opt/syntrack"
BIN = Path(sys.executable).parent
UNITS = ("syntrack-web.service", "syntrack-poller.service")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str | urllib.request.Request) -> tuple[int, Message, bytes]:
    """A GET that follows no redirect."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def answers(url: str) -> bool:
    try:
        return get(url)[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Production's static storage needs collectstatic's manifest (what `make run` and the README's install do)."""
    db = tmp_path_factory.mktemp("collect") / "unused.db"
    result = run_manage("collectstatic", "--noinput", "--verbosity", "0", env=poller_env(SYNTRACK_DB_PATH=str(db)))
    assert result.returncode == 0, result.stderr


def real_passwords() -> None:
    """The test admin's "changeme" would put accounts.W001 in the programs' output; not the point here."""
    for user in User.objects.filter(password_is_default=True):
        user.set_password("a-real-passw0rd")
        user.save()


# ---------------------------------------------------------------- supervisor


def render_supervisor(tmp: Path) -> Path:
    (tmp / "log").mkdir()
    (tmp / "run").mkdir()
    programs = (DEPLOY / "supervisor" / "syntrack.conf").read_text()
    programs = programs.replace(f"{INSTALL}/.venv/bin/", f"{BIN}/").replace(INSTALL, str(PROJECT))
    programs = programs.replace("/var/log/syntrack", str(tmp / "log"))
    programs = re.sub(r"(?m)^user=syntrack$", f"user={getpass.getuser()}", programs)
    (tmp / "syntrack.conf").write_text(programs)
    main = (DEPLOY / "supervisor" / "supervisord.conf").read_text()
    main = main.replace(f"{INSTALL}/deploy/supervisor/syntrack.conf", str(tmp / "syntrack.conf"))
    main = main.replace("/var/log/syntrack", str(tmp / "log")).replace("/run/syntrack", str(tmp / "run"))
    settings_lines = [line for line in (main + programs).splitlines() if not line.startswith(";")]
    assert not [line for line in settings_lines if INSTALL in line or "/var/log/" in line or "=/run/" in line]
    (tmp / "supervisord.conf").write_text(main)
    return tmp / "supervisord.conf"


def spawned_pids(log: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in re.findall(r"spawned: '([\w-]+)' with pid (\d+)", log)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_supervisord_runs_the_dashboard_and_the_poller_and_stops_both(tmp_path: Path, collected: None) -> None:
    real_passwords()
    config = render_supervisor(tmp_path)
    port = free_port()
    log = tmp_path / "log" / "supervisord.log"
    with fake_upstream() as upstream, processes() as start:
        env = poller_env(upstream, SYNTRACK_PORT=str(port), SYNTRACK_POLL_INTERVAL="10")
        supervisord = start([str(BIN / "supervisord"), "-n", "-c", str(config)], env)

        wait_until(lambda: answers(f"http://127.0.0.1:{port}/login/"), 30, "the dashboard's /login/ answering 200")
        wait_until(lambda: PollAttempt.objects.filter(outcome="ok").count() >= 2, 30, "both providers polled")
        pids = spawned_pids(log.read_text())
        assert set(pids) == {"syntrack-web", "syntrack-poller"}, log.read_text()
        assert all(alive(pid) for pid in pids.values())

        supervisord.send(signal.SIGTERM)
        assert supervisord.wait(timeout=30) == 0, supervisord.output

    text = log.read_text()
    # Both stopped on TERM, each within its stopwaitsecs: no SIGKILL.
    assert "stopped: syntrack-poller (exit status 0)" in text, text
    assert re.search(r"stopped: syntrack-web \((exit status 0|terminated by SIGTERM)\)", text), text
    assert "SIGKILL" not in text
    assert not any(alive(pid) for pid in pids.values())
    poller_log = (tmp_path / "log" / "poller.log").read_text()
    assert "SIGTERM, finishing..." in poller_log
    assert "Traceback" not in poller_log + (tmp_path / "log" / "web.log").read_text()


# ---------------------------------------------------------------- gunicorn under a base path


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gunicorn_with_the_shipped_config_serves_under_a_base_path_in_json_logs(collected: None) -> None:
    """What nginx's `location /syntrack/ { proxy_pass http://syntrack/; }` forwards: the path without the prefix."""
    real_passwords()
    port = free_port()
    env = poller_env(SYNTRACK_PORT=str(port), SYNTRACK_BASE_PATH="/syntrack", SYNTRACK_LOG_FORMAT="json")
    with processes() as start:
        web = start([str(BIN / "gunicorn"), "--config", str(DEPLOY / "gunicorn.conf.py")], env)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(f"{base}/login/"), 30, "gunicorn answering")

        status, headers, _ = get(f"{base}/")
        assert status == 302 and headers["Location"] == "/syntrack/login/?next=/syntrack/"
        html = get(f"{base}/login/")[2].decode()
        script = re.search(r'src="/syntrack/static/(js/theme\.[0-9a-f]+\.js)"', html)
        assert script, html
        assert get(f"{base}/static/{script[1]}")[0] == 200
        status, _, body = get(f"{base}/api/current")
        assert status == 401 and "error" in json.loads(body)
        # The hashed modules import each other by relative, hashed names: they work under any prefix.
        dashboard = signed_in_dashboard(base)
        config = json.loads(re.search(r'<script id="dashboard-config"[^>]*>(.*?)</script>', dashboard)[1])
        assert config["root"] == "/syntrack/" and config["login_url"] == "/syntrack/login/"
        main = re.search(r'src="/syntrack/static/(js/dashboard/main\.[0-9a-f]+\.js)"', dashboard)
        assert main, dashboard
        module = get(f"{base}/static/{main[1]}")[2].decode()
        imports = re.findall(r'from "(\./[\w.]+\.js)"', module)
        assert imports and all(re.fullmatch(r"\./\w+\.[0-9a-f]{12}\.js", i) for i in imports)

        web.send(signal.SIGTERM)
        assert web.wait(timeout=15) == 0
    lines = web.stderr_lines
    assert lines
    entries = [json.loads(line) for line in lines]
    assert {"gunicorn.error", "gunicorn.access"} <= {e["logger"] for e in entries}
    assert any(e["logger"] == "gunicorn.access" and '"GET /login/ HTTP/1.1" 200' in e["message"] for e in entries)


def signed_in_dashboard(base: str) -> str:
    """The dashboard's HTML for a staff user signed in through the login form, cookies checked for the prefix."""
    user = User.objects.create_user("deploy", is_staff=True)
    # Production's hasher: the test settings' fast one is not among gunicorn's (production) hashers.
    user.password = make_password("a-real-passw0rd", hasher=PBKDF2PasswordHasher())
    user.save()
    status, headers, _ = get(f"{base}/login/")
    token = re.search(r"csrftoken=([^;]+);.*Path=/syntrack;", headers["Set-Cookie"])
    assert status == 200 and token, headers
    form = f"username=deploy&password=a-real-passw0rd&csrfmiddlewaretoken={token[1]}".encode()
    login = urllib.request.Request(f"{base}/login/", data=form, headers={"Cookie": f"csrftoken={token[1]}"})
    status, headers, _ = get(login)
    cookies = " | ".join(headers.get_all("Set-Cookie") or [])
    session = re.search(r"sessionid=([^;]+);[^|]*Path=/syntrack;", cookies)
    assert status == 302 and headers["Location"] == "/syntrack/" and session, (status, headers)
    status, _, body = get(urllib.request.Request(f"{base}/", headers={"Cookie": f"sessionid={session[1]}"}))
    assert status == 200
    return body.decode()


# ---------------------------------------------------------------- systemd


def read_unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd's keys are case-sensitive
    unit.read_string((DEPLOY / name).read_text())
    return unit


@pytest.mark.parametrize("name", UNITS)
def test_the_units_restart_with_limits_and_are_hardened(name: str) -> None:
    unit = read_unit(name)
    service = unit["Service"]

    assert service["User"] == "syntrack" and service["WorkingDirectory"] == INSTALL
    assert service["EnvironmentFile"].startswith(("-/", "/"))
    assert service["Restart"] == "on-failure"
    assert int(unit["Unit"]["StartLimitIntervalSec"]) > 0 and int(unit["Unit"]["StartLimitBurst"]) > 0
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
                "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "LockPersonality",
                "MemoryDenyWriteExecute"):  # fmt: skip
        assert service[key] == "yes", key
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/syntrack"
    assert service["RestrictAddressFamilies"] == "AF_UNIX AF_INET AF_INET6"
    assert service["SystemCallFilter"] == "@system-service"
    assert service["KillSignal"] == "SIGTERM"
    # The poller exits within 2 s of SIGTERM, gunicorn within its graceful_timeout of 5 s.
    assert int(service["TimeoutStopSec"]) >= (10 if "poller" in name else 15)
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_units_start_the_poller_and_gunicorn_with_the_shipped_config() -> None:
    assert read_unit("syntrack-poller.service")["Service"]["ExecStart"] == (
        f"{INSTALL}/.venv/bin/python {INSTALL}/manage.py poll"
    )
    assert read_unit("syntrack-web.service")["Service"]["ExecStart"] == (
        f"{INSTALL}/.venv/bin/gunicorn --config {INSTALL}/deploy/gunicorn.conf.py"
    )


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    # Rendered only so that ExecStart names files that exist: verify checks they are executable.
    for name in UNITS:
        text = (DEPLOY / name).read_text().replace(f"{INSTALL}/.venv/bin/", f"{BIN}/").replace(INSTALL, str(PROJECT))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "System has not been booted with systemd" in result.stderr or "Failed to initialize" in result.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {result.stderr.strip().splitlines()[0]}")
    # Warnings (an unknown key, a key in the wrong section) are failures too.
    assert (result.returncode, result.stderr.strip()) == (0, "")


# ---------------------------------------------------------------- nginx


def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    nginx, openssl = shutil.which("nginx") or "/usr/sbin/nginx", shutil.which("openssl")
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (apt-get install nginx)")
    if openssl is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=syntrack.example.com",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    site = (DEPLOY / "nginx" / "syntrack.conf").read_text()
    site = re.sub(r"/etc/letsencrypt/live/[\w.]+/fullchain\.pem", str(cert), site)
    site = re.sub(r"/etc/letsencrypt/live/[\w.]+/privkey\.pem", str(key), site)
    assert "/etc/letsencrypt" not in site
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
    assert "[warn]" not in result.stderr, result.stderr
