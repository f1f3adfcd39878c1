"""Failed polls counted for good, although old poll attempts are pruned (the metrics' failure counter).

``syntrack_poll_failures_total`` is a Prometheus counter, and a counter must
never go down, yet retention deletes attempts older than 31 days
(quotas.retention), so a plain count of the failed rows would drop at every
prune. No other source is monotonic: sessions count failures without their
outcome, and quotas.attempts only remembers per-process tallies of the rows.

So the pruner deletes attempts through ``delete_attempts()``, which, in the
same transaction as each batch it deletes, adds the batch's failures to a
tally in the ``Setting`` row ``PRUNED_KEY`` (``{provider: {outcome: n}}``).
A failure is then either a stored row or in the tally, never both and never
neither. ``totals()`` reads both in one SQL statement (a UNION), so a prune
committing in between two reads can neither count a batch twice nor miss it.

A database emptied by hand (or a re-run of ``demo``, which replaces the
polled data) starts the counter again; Prometheus treats that as a counter
reset, as it does a restarted exporter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.db.models import Count, IntegerField, TextField, Value
from django.db.models.functions import Cast

from quotas.models import Outcome, PollAttempt, Provider, Setting

PRUNED_KEY = "metrics.pruned_failures"
# Every outcome but a success, in the order of the Outcome choices.
FAILED = tuple(outcome for outcome in Outcome.values if outcome != Outcome.OK)


def delete_attempts(ids: Iterable[int]) -> None:
    """Delete the poll attempts ``ids``, adding their failures to the tally; call it inside a transaction."""
    ids = list(ids)
    gone = (
        PollAttempt.objects.filter(pk__in=ids, outcome__in=FAILED)
        .order_by()
        .values("provider", "outcome")
        .annotate(n=Count("id"))
        .values_list("provider", "outcome", "n")
    )
    gone = list(gone)
    if gone:
        # Locked (PostgreSQL) so that two pruners (the poller's and `manage.py prune`) add up, not overwrite.
        row, _ = Setting.objects.select_for_update().get_or_create(key=PRUNED_KEY, defaults={"value": {}})
        tally = row.value if isinstance(row.value, dict) else {}
        for provider, outcome, n in gone:
            counts = tally.setdefault(provider, {})
            counts[outcome] = int(counts.get(outcome, 0)) + n
        row.value = tally
        row.save(update_fields=["value", "updated_at"])
    PollAttempt.objects.filter(pk__in=ids).delete()


def totals() -> dict[tuple[str, str], int]:
    """Every failed poll ever recorded, by (provider, outcome): the stored ones plus the pruned ones.

    One statement: the stored failures grouped along the (provider, outcome, at)
    index, and the tally row, whose JSON comes as text in the outcome column.
    """
    stored = (
        PollAttempt.objects.filter(provider__in=Provider.values, outcome__in=FAILED)
        .order_by()
        .values("provider", "outcome")
        .annotate(n=Count("id"))
        .values_list("provider", "outcome", "n")
    )
    pruned = (
        Setting.objects.filter(key=PRUNED_KEY)
        .annotate(tally=Cast("value", TextField()), n=Value(0, output_field=IntegerField()))
        .values_list("key", "tally", "n")
    )
    counts: dict[tuple[str, str], int] = {}
    for first, second, n in stored.union(pruned, all=True):
        if first == PRUNED_KEY:
            for provider, outcomes in _tally(second).items():
                for outcome, pruned_n in outcomes.items():
                    counts[provider, outcome] = counts.get((provider, outcome), 0) + pruned_n
        else:
            counts[first, second] = counts.get((first, second), 0) + n
    return counts


def _tally(text: str | None) -> dict[str, dict[str, int]]:
    """The tally row's value; anything malformed (an edit in the admin) counts as nothing."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {
        str(provider): {str(o): n for o, n in outcomes.items() if isinstance(n, int) and n >= 0}
        for provider, outcomes in value.items()
        if isinstance(outcomes, dict)
    }


__all__ = ["FAILED", "PRUNED_KEY", "delete_attempts", "totals"]
