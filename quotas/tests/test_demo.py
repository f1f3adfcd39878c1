"""``manage.py demo``: refusing real polls, replacing its own data, both providers side by side, usage errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from conftest import fixture_json, store_payload
from quotas import demo
from quotas.models import PollSession, QuotaRollup, Setting, Snapshot
from quotas.tests.helpers import base_env, database_env, run_manage

END = datetime(2026, 3, 11, 17, 30, tzinfo=UTC)


# refusing real data


@pytest.mark.django_db
def test_it_refuses_a_database_with_real_polls_unless_forced() -> None:
    store_payload("synthetic", fixture_json("synthetic/v2_free_tool_calls.json"), END)

    with pytest.raises(CommandError) as refused:
        call_command("demo", "--days", "1", stdout=StringIO())
    assert refused.value.returncode == 1
    assert "real polls" in str(refused.value) and "--force" in str(refused.value)
    assert Snapshot.objects.count() == 1 and not Setting.objects.filter(key=demo.MARKER).exists()

    out = StringIO()
    call_command("demo", "--days", "1", "--interval", "600", "--force", stdout=out)
    assert "snapshots" in out.getvalue()
    assert Snapshot.objects.count() > 200  # both providers, every 10 minutes, less the outage
    assert Setting.objects.filter(key=demo.MARKER).exists()


@pytest.mark.django_db
def test_it_refills_its_own_data_but_not_polls_made_after_it() -> None:
    demo.fill(1, 600, end=END, parallel=False)
    first = Snapshot.objects.count()
    demo.fill(1, 600, end=END, parallel=False)
    assert Snapshot.objects.count() == first  # replaced, not added

    store_payload("zai", fixture_json("zai/v2_weekly_and_level.json"), END + timedelta(minutes=1))
    assert demo.real_polls_present()
    with pytest.raises(demo.DemoRefused):
        demo.fill(1, 600, end=END, parallel=False)


@pytest.mark.django_db(transaction=True)
def test_the_command_simulates_both_providers_side_by_side() -> None:
    # Outside a transaction, the command runs one process per provider.
    out = StringIO()
    call_command("demo", "--days", "1", "--interval", "300", stdout=out)

    assert set(Snapshot.objects.values_list("provider", flat=True).distinct()) == {"synthetic", "zai"}
    ids = list(Snapshot.objects.values_list("id", flat=True))
    assert len(ids) == len(set(ids))
    assert not PollSession.objects.filter(ended_at__isnull=True).exists()
    assert QuotaRollup.objects.exists()
    assert "reset cycles" in out.getvalue()


# usage errors


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--interval", "9"], ["--interval", "10", "3600"]),
        (["--interval", "3601"], ["--interval", "10", "3600"]),
        (["--days", "0"], ["--days", "1", "3650"]),
        (["--days", "3651"], ["--days", "1", "3650"]),
    ],
)
@pytest.mark.django_db
def test_it_refuses_values_out_of_range(args: list[str], words: list[str]) -> None:
    with pytest.raises(CommandError) as error:
        call_command("demo", *args, stdout=StringIO())
    assert error.value.returncode == 2
    assert all(word in str(error.value) for word in words)
    assert not Snapshot.objects.exists()


@pytest.mark.django_db
def test_a_bad_flag_is_one_line_and_exit_code_2() -> None:
    env = base_env(**database_env())
    for args in (["--interval", "5"], ["--days", "abc"]):
        result = run_manage("demo", *args, env=env)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
