"""What `poll --once` does before it polls: cron starts it every minute (issue 7, item 4).

Nothing here is timed (bench/startup.py measures); these tests pin the causes
of a slow start instead: the system checks that import every view, and the
migration graph built from every migration file.
"""

from __future__ import annotations

import re

import pytest

from quotas.models import PollAttempt
from quotas.tests.helpers import fake_upstream, poller_env, run_python

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Imported only by the URL, template and admin checks (the URL conf imports
# every view), none of which a poll needs.
VIEW_MODULES = {
    "syntrack_site.urls",
    "quotas.api",
    "quotas.views",
    "quotas.insights",
    "accounts.views",
    "django.contrib.admin.views.main",
}


def imported_modules(importtime_log: str) -> set[str]:
    """The modules named by ``python -X importtime``'s report."""
    return {match[1] for match in re.finditer(r"^import time:.*\|\s*(\S+)\s*$", importtime_log, re.MULTILINE)}


def test_poll_once_imports_no_view_and_still_shows_the_start_warnings() -> None:
    with fake_upstream() as upstream:
        env = poller_env(upstream, SYNTRACK_POLL_INTERVALL="30")
        done = run_python("-X", "importtime", "manage.py", "poll", "--once", env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert PollAttempt.objects.count() == 2
    modules = imported_modules(done.stderr)
    assert "quotas.polling" in modules  # the report is read right
    assert modules.isdisjoint(VIEW_MODULES), sorted(modules & VIEW_MODULES)
    assert "gunicorn" not in modules
    # no alert raised, no channel: neither the delivery thread nor Apprise is loaded
    assert "alerts.evaluation" in modules
    assert modules.isdisjoint({"alerts.delivery", "apprise"}), sorted(modules & {"alerts.delivery", "apprise"})
    # product.md §9: the default-password warning at poll start (the test
    # settings' admin has "changeme"); and a misspelt variable is named.
    assert "(accounts.W001) The password of 'admin' is a published default" in done.stderr
    assert "(syntrack.W001) SYNTRACK_POLL_INTERVALL (in the environment)" in done.stderr


def test_poll_once_on_a_database_never_migrated_says_to_migrate(tmp_path) -> None:
    with fake_upstream() as upstream:
        env = poller_env(upstream, SYNTRACK_DB_PATH=str(tmp_path / "new.db"), DATABASE_URL="")
        done = run_python("manage.py", "poll", "--once", env=env)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "migration(s): run `manage.py migrate` first" in done.stderr
    assert "Traceback" not in done.stderr
