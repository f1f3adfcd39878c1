from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from lib.timefmt import isostring


def test_it_writes_utc_with_whole_seconds_and_z() -> None:
    assert isostring(datetime(2026, 2, 6, 16, 16, 18, 386000, tzinfo=UTC)) == "2026-02-06T16:16:18Z"


def test_it_converts_other_offsets_to_utc() -> None:
    moment = datetime(2026, 2, 6, 21, 46, 18, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert isostring(moment) == "2026-02-06T16:16:18Z"


def test_none_stays_none() -> None:
    assert isostring(None) is None


def test_a_whole_epoch_second_reads_as_the_datetime_does() -> None:
    from lib.timefmt import epoch_isostring

    moment = datetime(2026, 2, 6, 16, 16, 18, tzinfo=UTC)
    assert epoch_isostring(int(moment.timestamp())) == isostring(moment) == "2026-02-06T16:16:18Z"
