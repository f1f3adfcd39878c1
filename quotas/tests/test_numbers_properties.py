"""Property tests (hypothesis): the numbers of a quota, for any reading the adapters may store.

The adapters bound what they store (quotas/providers/base.py: amounts finite in
[0, 1e15], shares in [0, 1000 %]); within those bounds any reading, any recent
history and any refill schedule must give numbers, never an exception: the
API's /api/current and the poller's alert evaluation both call quota_numbers.
The fuzzer found one that did not (an exhaustion projected past year 9999);
this test then found three more: a refill share so small its interval rounded
to zero, one so large its interval passed what a timedelta holds, and a limit
so small that the free share was infinite.
"""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from quotas.numbers import quota_numbers
from quotas.providers.base import MAX_AMOUNT, MAX_PERCENT
from quotas.tests.test_numbers import T0, reading

amounts = st.one_of(st.none(), st.floats(min_value=0, max_value=MAX_AMOUNT, allow_nan=False))
shares = st.one_of(st.none(), st.floats(min_value=0, max_value=MAX_PERCENT, allow_nan=False))
tiny_or_any_share = st.one_of(
    st.none(), st.floats(min_value=5e-324, max_value=1e-6), st.floats(min_value=0, max_value=MAX_PERCENT)
)
# Offsets from the reading: resets and ticks may be far ahead or already past.
offsets = st.one_of(st.none(), st.integers(min_value=-(10**7), max_value=10**9).map(lambda s: timedelta(seconds=s)))


WINDOWS = [("tokens_5h", "reset"), ("subscription", "reset"), ("rolling_5h", "rolling"), ("weekly_credits", "rolling")]


@st.composite
def cases(draw: st.DrawFn) -> tuple:
    key, kind = draw(st.sampled_from(WINDOWS))
    resets_in, tick_in = draw(offsets), draw(offsets)
    details = {}
    if kind == "rolling":
        details = {
            "tick_percent": draw(tiny_or_any_share),
            "regen_amount": draw(amounts),
            "limited": draw(st.booleans()),
        }
        if tick_in is not None:
            details["next_tick_at"] = (T0 + tick_in).isoformat()
    current = reading(
        key=key,
        kind=kind,
        used=draw(amounts),
        limit=draw(amounts),
        remaining=draw(amounts),
        percent=draw(shares),
        resets_at=T0 + resets_in if resets_in is not None else None,
        cycle_id=None if kind == "rolling" else 7,
        details=details,
    )
    minutes = draw(st.lists(st.integers(min_value=-60, max_value=0), min_size=0, max_size=6, unique=True))
    recent = [
        (T0 + timedelta(minutes=m), draw(amounts) or 0.0, current.unit, current.cycle_id) for m in sorted(minutes)
    ]
    now = T0 + timedelta(seconds=draw(st.integers(min_value=0, max_value=7200)))
    return current, recent, now


@settings(max_examples=400, deadline=None)
@given(cases())
def test_any_storable_reading_gives_numbers_in_strict_json(case: tuple) -> None:
    current, recent, now = case
    numbers = quota_numbers(current, recent, None, now=now)
    json.dumps(numbers, allow_nan=False)  # ValueError on NaN or infinity
    assert numbers["outlook"] in ("ok", "runs_out_before_reset", "exhausted")
