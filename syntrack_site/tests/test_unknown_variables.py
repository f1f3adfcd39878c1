"""A SynTrack-looking variable SynTrack does not read gets a warning naming the closest known one (issue 6)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from quotas.tests.helpers import base_env, run_manage, run_python
from syntrack_site.checks import unknown_syntrack_variables
from syntrack_site.config import env_file_names, unknown_variables


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_typo_in_the_environment_is_named_with_the_closest_known_variable() -> None:
    environ = {"SYNTRACK_POLL_INTERVALL": "30", "PATH": "/bin", "SYNTRACK_PORT": "9211"}

    assert unknown_variables(environ, None) == [
        ("SYNTRACK_POLL_INTERVALL", "the environment", "SYNTRACK_POLL_INTERVAL")
    ]


def test_a_typo_in_the_env_file_is_reported_as_from_the_file(tmp_path: Path) -> None:
    env_file = write(tmp_path / ".env", "# comment\nSYNTRACK_ADMIN_PASSWORD=x\nexport ZAI_APIKEY=k\nSYNTRACK_PORT=1\n")
    # Reading the file copied its names into the environment: still "in .env".
    environ = {"SYNTRACK_ADMIN_PASSWORD": "x", "ZAI_APIKEY": "k", "SYNTRACK_PORT": "1"}

    assert unknown_variables(environ, env_file) == [
        ("SYNTRACK_ADMIN_PASSWORD", ".env", "SYNTRACK_ADMIN_PASS"),
        ("ZAI_APIKEY", ".env", "ZAI_API_KEY"),
    ]


def test_in_the_env_file_a_near_miss_without_our_prefix_counts_too(tmp_path: Path) -> None:
    env_file = write(tmp_path / ".env", "SYNTRAK_HOST=0.0.0.0\nDATABSE_URL=postgres://x/y\nEDITOR=vim\n")

    assert unknown_variables({}, env_file) == [
        ("SYNTRAK_HOST", ".env", "SYNTRACK_HOST"),
        ("DATABSE_URL", ".env", "DATABASE_URL"),
    ]


def test_other_programs_variables_in_the_environment_are_left_alone() -> None:
    environ = {"ZAI_SOMETHING_ELSE": "1", "SYNTHETIC_HOME": "/x", "DATABSE": "y", "HOME": "/root"}

    assert unknown_variables(environ, None) == []


def test_an_unknown_name_without_a_close_match_is_still_named() -> None:
    assert unknown_variables({"SYNTRACK_WHATEVER_THIS_IS": "1"}, None) == [
        ("SYNTRACK_WHATEVER_THIS_IS", "the environment", None)
    ]


def test_known_and_development_tool_variables_are_not_unknown(tmp_path: Path) -> None:
    env_file = write(tmp_path / ".env", "SYNTRACK_POLL_INTERVAL=60\nSECRET_KEY=\n")
    environ = {"SYNTRACK_REQUIRE_POSTGRES": "1", "SYNTRACK_UPDATE_DOC_SCREENSHOTS": "1", "SYNTRACK_HOST": ""}

    assert unknown_variables(environ, env_file) == []


def test_the_env_file_names_follow_its_syntax(tmp_path: Path) -> None:
    env_file = write(tmp_path / ".env", "A=1\n  export B = 2\n# C=3\nnot a line\nD=\n")

    assert env_file_names(env_file) == ["A", "B", "D"]
    assert env_file_names(tmp_path / "absent") == []
    assert env_file_names(None) == []


@pytest.mark.django_db
def test_manage_py_check_shows_the_warning(settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SYNTRACK_ENV_FILE = write(tmp_path / ".env", "SYNTRACK_RAW_RETENTION=7\n")
    monkeypatch.setenv("SYNTRACK_POLL_INTERVALL", "30")
    err = io.StringIO()

    call_command("check", stdout=io.StringIO(), stderr=err)

    assert (
        "syntrack.W001) SYNTRACK_POLL_INTERVALL (in the environment) is not a SynTrack variable and is ignored: "
        "did you mean SYNTRACK_POLL_INTERVAL?"
    ) in err.getvalue()
    assert "SYNTRACK_RAW_RETENTION (in .env) is not a SynTrack variable and is ignored: did you mean " in err.getvalue()


def test_the_check_is_quiet_without_unknown_variables(settings) -> None:
    settings.SYNTRACK_ENV_FILE = None

    assert unknown_syntrack_variables() == []


@pytest.mark.slow
def test_commands_warn_once_and_gunicorn_workers_not_at_all(tmp_path: Path) -> None:
    env = base_env(SYNTRACK_DB_PATH=str(tmp_path / "syntrack.db"), SYNTRACK_POLL_INTERVALL="30")

    check = run_manage("check", env=env)
    worker = run_python("-c", "import syntrack_site.wsgi", env=env)

    assert check.returncode == 0, check.stderr
    assert check.stderr.count("did you mean SYNTRACK_POLL_INTERVAL?") == 1
    assert worker.returncode == 0, worker.stderr
    assert "SYNTRACK_POLL_INTERVAL" not in worker.stderr  # (whitenoise may warn of no collected files)
