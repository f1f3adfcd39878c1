"""Configuration: typed readers, one-line errors at start, the secret key, SQLite tuning."""

from __future__ import annotations

import os
import re
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection

from quotas.tests.helpers import PROJECT, base_env, run_manage, run_python
from syntrack_site import config
from syntrack_site.config import Config, ConfigError, load_secret_key, sqlite_database

PASSWORD = "s3cret-Pa55word"


@pytest.fixture
def cfg() -> Iterator[Config]:
    """A Config over a process environment this test may change freely."""
    with mock.patch.dict(os.environ):
        for name in list(os.environ):
            if name.startswith("SYNTRACK_") or name in ("DATABASE_URL", "SECRET_KEY"):
                del os.environ[name]
        yield Config(None)


def error_of(read: object, *args: object) -> str:
    with pytest.raises(ConfigError) as info:
        read(*args)  # type: ignore[operator]
    message = str(info.value)
    assert "\n" not in message
    return message


# integers


def test_an_unset_or_empty_integer_takes_its_default(cfg: Config) -> None:
    assert cfg.integer("SYNTRACK_POLL_INTERVAL", 60, 10, 3600) == 60
    os.environ["SYNTRACK_POLL_INTERVAL"] = ""
    assert cfg.integer("SYNTRACK_POLL_INTERVAL", 60, 10, 3600) == 60


def test_an_integer_is_read_with_surrounding_spaces(cfg: Config) -> None:
    os.environ["SYNTRACK_POLL_INTERVAL"] = " 30 "
    assert cfg.integer("SYNTRACK_POLL_INTERVAL", 60, 10, 3600) == 30


@pytest.mark.parametrize("value", ["abc", "1.5", "10s", "1e3", "0x10"])
def test_a_malformed_integer_is_an_error_naming_the_variable(cfg: Config, value: str) -> None:
    os.environ["SYNTRACK_POLL_INTERVAL"] = value

    message = error_of(cfg.integer, "SYNTRACK_POLL_INTERVAL", 60, 10, 3600)

    assert message == f"SYNTRACK_POLL_INTERVAL must be a whole number, got {value!r}"


@pytest.mark.parametrize("value", ["5", "9", "3601", "-1"])
def test_an_integer_out_of_range_is_an_error_naming_the_range(cfg: Config, value: str) -> None:
    os.environ["SYNTRACK_POLL_INTERVAL"] = value

    message = error_of(cfg.integer, "SYNTRACK_POLL_INTERVAL", 60, 10, 3600)

    assert message == f"SYNTRACK_POLL_INTERVAL must be between 10 and 3600, got {int(value)}"


@pytest.mark.parametrize("value", ["10", "3600"])
def test_the_bounds_of_a_range_are_valid(cfg: Config, value: str) -> None:
    os.environ["SYNTRACK_POLL_INTERVAL"] = value
    assert cfg.integer("SYNTRACK_POLL_INTERVAL", 60, 10, 3600) == int(value)


# booleans, choices, lists, URLs


BOOLEANS = [("true", True), ("1", True), ("YES", True), ("on", True), ("false", False), ("0", False), ("No", False)]


@pytest.mark.parametrize(("value", "expected"), [*BOOLEANS, ("", False)])
def test_booleans_read_the_usual_words(cfg: Config, value: str, expected: bool) -> None:
    os.environ["SYNTRACK_DEBUG"] = value
    assert cfg.boolean("SYNTRACK_DEBUG", False) is expected


def test_an_unset_boolean_takes_its_default(cfg: Config) -> None:
    assert cfg.boolean("SYNTRACK_DEBUG", False) is False


def test_a_bad_boolean_is_an_error(cfg: Config) -> None:
    os.environ["SYNTRACK_DEBUG"] = "maybe"

    assert error_of(cfg.boolean, "SYNTRACK_DEBUG", False) == "SYNTRACK_DEBUG must be true or false, got 'maybe'"


@pytest.mark.parametrize(
    ("value", "level"), [("debug", "DEBUG"), ("INFO", "INFO"), ("warn", "WARNING"), ("error", "ERROR")]
)
def test_log_levels_map_to_logging_names(cfg: Config, value: str, level: str) -> None:
    os.environ["SYNTRACK_LOG_LEVEL"] = value
    assert cfg.choice("SYNTRACK_LOG_LEVEL", "info", config.LOG_LEVELS) == level


def test_a_bad_log_level_is_an_error_listing_the_choices(cfg: Config) -> None:
    os.environ["SYNTRACK_LOG_LEVEL"] = "loud"

    message = error_of(cfg.choice, "SYNTRACK_LOG_LEVEL", "info", config.LOG_LEVELS)

    assert message == "SYNTRACK_LOG_LEVEL must be one of debug, error, info, warn, got 'loud'"


def test_lists_are_comma_separated(cfg: Config) -> None:
    os.environ["SYNTRACK_ALLOWED_HOSTS"] = " a.example, b.example,,"
    assert cfg.items("SYNTRACK_ALLOWED_HOSTS", ["*"]) == ["a.example", "b.example"]


def test_a_url_loses_its_trailing_slash(cfg: Config) -> None:
    os.environ["ZAI_BASE_URL"] = "https://open.bigmodel.cn/api/"
    assert cfg.url("ZAI_BASE_URL", "https://api.z.ai/api") == "https://open.bigmodel.cn/api"


@pytest.mark.parametrize("value", ["ftp://x", "api.z.ai", "http://", "https://:8080/x", "http://host:99999", "x"])
def test_a_bad_url_is_an_error(cfg: Config, value: str) -> None:
    os.environ["ZAI_BASE_URL"] = value

    message = error_of(cfg.url, "ZAI_BASE_URL", "https://api.z.ai/api")

    assert message.startswith("ZAI_BASE_URL must be an http(s) URL")


# databases


def test_without_database_url_it_uses_the_sqlite_file(cfg: Config, tmp_path: Path) -> None:
    db = cfg.database(tmp_path / "x.db")

    assert db == sqlite_database(tmp_path / "x.db")
    assert db["ENGINE"] == "django.db.backends.sqlite3"


def test_a_postgres_url_is_read(cfg: Config) -> None:
    os.environ["DATABASE_URL"] = f"postgres://syntrack:{PASSWORD}@db.example:5433/syntrack"

    db = cfg.database(Path("/unused"))

    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "syntrack",
        "syntrack",
        PASSWORD,
        "db.example",
        5433,
    )
    assert db["CONN_HEALTH_CHECKS"] is True
    assert db["CONN_MAX_AGE"] == 600


def test_an_sqlite_url_gets_the_same_tuning_as_the_sqlite_file(cfg: Config, tmp_path: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp_path}/other.db"

    assert cfg.database(Path("/unused")) == sqlite_database(tmp_path / "other.db")


@pytest.mark.parametrize(
    "url",
    [
        "nonsense://",
        f"mysql://root:{PASSWORD}@db/syntrack",
        f"root:{PASSWORD}@db/syntrack",
        f"postgres://root:{PASSWORD}@db:port/syntrack",
        f"postgres://root:{PASSWORD}@db:5432/",
        f"{PASSWORD}",
        "sqlite://",
        "sqlite://:memory:",
    ],
)
def test_a_bad_database_url_is_an_error_that_never_shows_the_password(cfg: Config, url: str) -> None:
    os.environ["DATABASE_URL"] = url

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = error_of(cfg.database, Path("/unused"))

    assert message.startswith("DATABASE_URL")
    assert PASSWORD not in message
    assert not [w for w in caught if PASSWORD in str(w.message)]


# the SQLite path and the secret key


def test_the_sqlite_path_must_not_be_a_directory(cfg: Config, tmp_path: Path) -> None:
    os.environ["SYNTRACK_DB_PATH"] = str(tmp_path)

    assert error_of(cfg.sqlite_path) == f"SYNTRACK_DB_PATH points at a directory: {tmp_path}"


def test_the_directories_of_the_sqlite_path_are_created(cfg: Config, tmp_path: Path) -> None:
    os.environ["SYNTRACK_DB_PATH"] = str(tmp_path / "a" / "b" / "syntrack.db")

    path = cfg.sqlite_path()

    assert path == (tmp_path / "a" / "b" / "syntrack.db").resolve()
    assert path.parent.is_dir()


def test_the_secret_key_is_generated_once_with_mode_0600_and_reused(cfg: Config, tmp_path: Path) -> None:
    key = load_secret_key(cfg, tmp_path)

    key_file = tmp_path / "secret_key"
    assert len(key) >= 32
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_secret_key(cfg, tmp_path) == key
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_a_key_written_by_a_process_starting_at_the_same_time_wins(
    cfg: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "k" * 64
    (tmp_path / "secret_key").write_text(other + "\n")
    reads = iter([None])
    real_read = config._read_key
    # The first look finds no key (the other process had not written it yet).
    monkeypatch.setattr(config, "_read_key", lambda path: next(reads, real_read(path)))

    assert load_secret_key(cfg, tmp_path) == other
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_a_given_secret_key_must_be_long_enough(cfg: Config, tmp_path: Path) -> None:
    os.environ["SECRET_KEY"] = "short"

    assert error_of(load_secret_key, cfg, tmp_path) == "SECRET_KEY must be at least 32 characters long"


def test_a_given_secret_key_is_used_and_nothing_is_written(cfg: Config, tmp_path: Path) -> None:
    os.environ["SECRET_KEY"] = "x" * 40

    assert load_secret_key(cfg, tmp_path) == "x" * 40
    assert not (tmp_path / "secret_key").exists()


# .env


def test_env_file_values_are_read_but_the_process_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SYNTRACK_POLL_INTERVAL=30\nSYNTRACK_PORT=1234\nZAI_API_KEY=from-dotenv\n")
    with mock.patch.dict(os.environ, {"SYNTRACK_POLL_INTERVAL": "45", "ZAI_API_KEY": ""}):
        os.environ.pop("SYNTRACK_PORT", None)

        cfg = Config(env_file)

        assert cfg.integer("SYNTRACK_POLL_INTERVAL", 60, 10, 3600) == 45
        assert cfg.integer("SYNTRACK_PORT", 9211, 1, 65535) == 1234
        # Set but empty still wins: `ZAI_API_KEY= manage.py poll` means "no key".
        assert cfg.string("ZAI_API_KEY") == ""


def test_a_missing_env_file_is_fine(tmp_path: Path) -> None:
    with mock.patch.dict(os.environ):
        Config(tmp_path / "absent.env")


# SQLite tuning


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite only")
def test_sqlite_connections_use_wal_a_busy_timeout_and_immediate_transactions() -> None:
    with connection.cursor() as cur:
        cur.execute("PRAGMA journal_mode")
        journal = cur.fetchone()[0]
        cur.execute("PRAGMA busy_timeout")
        busy_timeout = cur.fetchone()[0]
        cur.execute("PRAGMA foreign_keys")
        foreign_keys = cur.fetchone()[0]

    assert journal == "wal"
    assert busy_timeout >= 5000
    assert foreign_keys == 1
    assert connection.transaction_mode == "IMMEDIATE"
    options = settings.DATABASES["default"]["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] > 0


# start-up errors, as a user sees them


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    return base_env(SYNTRACK_DB_PATH=str(tmp_path / "data" / "syntrack.db"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SYNTRACK_POLL_INTERVAL", "abc", "SYNTRACK_POLL_INTERVAL must be a whole number"),
        ("SYNTRACK_POLL_INTERVAL", "5", "SYNTRACK_POLL_INTERVAL must be between 10 and 3600"),
        ("SYNTRACK_PORT", "0", "SYNTRACK_PORT must be between 1 and 65535"),
        ("SYNTRACK_DEBUG", "maybe", "SYNTRACK_DEBUG must be true or false"),
        ("SYNTRACK_LOG_LEVEL", "loud", "SYNTRACK_LOG_LEVEL must be one of"),
        ("ZAI_BASE_URL", "ftp://x", "ZAI_BASE_URL must be an http(s) URL"),
        ("SYNTRACK_DB_PATH", "<directory>", "SYNTRACK_DB_PATH points at a directory"),
        ("SECRET_KEY", "too-short", "SECRET_KEY must be at least 32 characters long"),
        ("DATABASE_URL", "nonsense://", "DATABASE_URL must start with postgres://"),
        ("DATABASE_URL", f"postgres://u:{PASSWORD}@h:port/db", "DATABASE_URL is not a database URL"),
    ],
)
def test_a_bad_setting_exits_2_with_one_line_and_no_traceback(
    clean_env: dict[str, str], tmp_path: Path, name: str, value: str, expected: str
) -> None:
    clean_env[name] = str(tmp_path) if value == "<directory>" else value

    result = run_manage("check", env=clean_env)

    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"syntrack: configuration error: {expected}")
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr


@pytest.mark.slow
def test_good_settings_pass_the_check(clean_env: dict[str, str]) -> None:
    result = run_manage("check", env=clean_env)

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_the_wsgi_entry_point_stops_with_one_line_on_a_bad_setting(clean_env: dict[str, str]) -> None:
    clean_env["SYNTRACK_DEBUG"] = "maybe"

    result = run_python("-c", "import syntrack_site.wsgi", env=clean_env)

    assert result.returncode == 4
    assert result.stderr.splitlines() == [
        "syntrack: configuration error: SYNTRACK_DEBUG must be true or false, got 'maybe'"
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--interval", "abc"], "invalid int value: 'abc'"),
        (["--interval", "5"], "--interval must be between 10 and 3600 seconds, got 5"),
        (["--interval", "4000"], "--interval must be between 10 and 3600 seconds, got 4000"),
        (["--provider", "openai"], "invalid choice: 'openai'"),
        (["--once"], "no provider is configured: set SYNTHETIC_API_KEY or ZAI_API_KEY"),
    ],
)
def test_bad_poll_usage_exits_2_with_one_line(clean_env: dict[str, str], args: list[str], expected: str) -> None:
    result = run_manage("poll", *args, env=clean_env)

    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_poll_against_an_unmigrated_database_exits_2_with_one_line(clean_env: dict[str, str]) -> None:
    clean_env.update(SYNTHETIC_API_KEY="syn_unused_key_0123456789", SYNTHETIC_BASE_URL="http://127.0.0.1:9")

    result = run_manage("poll", "--once", env=clean_env)

    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "run `manage.py migrate` first" in result.stderr


@pytest.mark.slow
def test_the_generated_secret_key_is_kept_beside_the_database_and_reused(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    clean_env["SECRET_KEY"] = ""
    show_key = ["shell", "--verbosity", "0", "-c", "from django.conf import settings; print(settings.SECRET_KEY)"]

    first = run_manage(*show_key, env=clean_env)
    second = run_manage(*show_key, env=clean_env)

    key_file = tmp_path / "data" / "secret_key"
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == key_file.read_text().strip()
    assert len(first.stdout.strip()) >= 32
    assert second.stdout == first.stdout
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_every_variable_the_settings_read_is_listed() -> None:
    """``config.VARIABLES`` is what test_settings blanks and the process tests set: it must be complete."""
    site = PROJECT / "syntrack_site"
    sources = (site / "settings.py").read_text() + (site / "config.py").read_text()
    read = set(re.findall(r'(?:cfg|self)\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', sources))

    assert read == set(config.VARIABLES)
