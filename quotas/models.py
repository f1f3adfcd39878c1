"""SynTrack's data: snapshots, readings, roll-ups, reset cycles, poll sessions, attempts and requests."""

from __future__ import annotations

import zlib
from datetime import datetime

from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

# The adapters cut what they hand over to these sizes.
from quotas.providers.base import MAX_KEY, MAX_LABEL, MAX_MESSAGE, MAX_PLAN, MAX_UNIT
from quotas.readable import readable


class Provider(models.TextChoices):
    SYNTHETIC = "synthetic", "Synthetic"
    ZAI = "zai", "Z.ai"


class Kind(models.TextChoices):
    RESET = "reset", "Resets to zero"
    ROLLING = "rolling", "Rolling window"


class Outcome(models.TextChoices):
    OK = "ok", "OK"
    DRIFT = "drift", "Schema drift"
    UNAUTHORIZED = "unauthorized", "Unauthorized"
    RATE_LIMITED = "rate_limited", "Rate limited"
    SERVER_ERROR = "server_error", "Server error"
    NETWORK_ERROR = "network_error", "Network error"
    INVALID_RESPONSE = "invalid_response", "Invalid response"
    # Ours, not the upstream's: the database refused the write (quotas.backlog).
    STORAGE_ERROR = "storage_error", "Storage error"


class Snapshot(models.Model):
    """One poll that returned a payload, with the raw body for ``reparse``."""

    provider = models.CharField(max_length=16, choices=Provider.choices)
    captured_at = models.DateTimeField(default=timezone.now)
    plan = models.CharField(max_length=MAX_PLAN, blank=True, default="")
    # zlib-compressed upstream body; emptied after SYNTRACK_RAW_RETENTION_DAYS.
    raw = models.BinaryField(null=True, editable=False)
    # Unknown keys/windows were present, or nothing usable was (then no readings).
    drift = models.BooleanField(default=False)
    drift_notes = models.JSONField(default=list, blank=True)
    usable = models.BooleanField(default=True)

    class Meta:
        indexes = [
            # latest (usable) snapshot of a provider; history ranges by time
            models.Index(fields=["provider", "-captured_at"], name="snapshot_provider_latest"),
            # raw-body retention: oldest snapshots still holding a body
            models.Index(fields=["captured_at"], name="snapshot_captured", condition=Q(raw__isnull=False)),
        ]

    def __str__(self) -> str:
        # In the active zone, as every name below: the admin titles its pages with them (quotas.middleware).
        return f"{self.get_provider_display()} at {timezone.localtime(self.captured_at):%Y-%m-%d %H:%M:%S}"

    @staticmethod
    def compress(body: bytes | None) -> bytes | None:
        return zlib.compress(body, 6) if body is not None else None

    @staticmethod
    def decompress(raw: bytes | memoryview | None) -> bytes | None:
        return zlib.decompress(bytes(raw)) if raw is not None else None

    def raw_body(self) -> bytes | None:
        return self.decompress(self.raw)


class QuotaReading(models.Model):
    """One window as a snapshot reported it, in provider-neutral terms."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="readings")
    # Denormalised from the snapshot so history queries need no join.
    provider = models.CharField(max_length=16, choices=Provider.choices)
    captured_at = models.DateTimeField()
    cycle = models.ForeignKey("ResetCycle", null=True, blank=True, on_delete=models.SET_NULL, related_name="readings")
    key = models.CharField(max_length=MAX_KEY)
    label = models.CharField(max_length=MAX_LABEL)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    unit = models.CharField(max_length=MAX_UNIT)
    used = models.FloatField(null=True)
    limit = models.FloatField(null=True)
    remaining = models.FloatField(null=True)
    percent = models.FloatField(null=True)
    resets_at = models.DateTimeField(null=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # history of one quota; burn rate over recent readings
            models.Index(fields=["provider", "key", "captured_at"], name="reading_quota_history"),
            # all quotas of a provider over a time range (chart)
            models.Index(fields=["provider", "captured_at"], name="reading_provider_range"),
        ]

    def __str__(self) -> str:
        amounts = f"{readable(self.used, self.unit)}/{readable(self.limit, self.unit)}"
        return f"{self.provider}/{self.key} {amounts} at {timezone.localtime(self.captured_at):%Y-%m-%d %H:%M:%S}"

    @property
    def level(self) -> float | None:
        """The counter cycle detection follows: usage, or the share when only that is known."""
        return self.used if self.used is not None else self.percent

    @property
    def scale(self) -> float | None:
        return self.limit if self.used is not None else (100.0 if self.percent is not None else None)


class Resolution(models.IntegerChoices):
    """Roll-up bucket sizes in seconds (quotas.rollups says why these two)."""

    FIVE_MINUTES = 300, "5 minutes"
    HOUR = 3600, "1 hour"


class QuotaRollup(models.Model):
    """One quota's readings within one time bucket, summed up (quotas.rollups).

    Buckets are aligned on the Unix epoch (``start`` is a multiple of
    ``resolution`` seconds). Only readings with a percent are rolled up (the
    chart's readings). ``min_*`` is the earliest of the lowest readings and
    ``max_*`` the latest of the highest; each ``*_used`` is that reading's own
    ``used``. ``consumed`` sums what each reading in the bucket added to the
    level (``used``, else the percent): its rise since the quota's previous
    reading, or its whole level when it opened a new reset cycle (as cycles.py
    counts it). ``reset_*`` is the last reset in the bucket: the last reading
    before it (possibly in an earlier bucket) and the first after it.
    """

    provider = models.CharField(max_length=16, choices=Provider.choices)
    key = models.CharField(max_length=MAX_KEY)
    resolution = models.PositiveIntegerField(choices=Resolution.choices)
    start = models.DateTimeField()
    label = models.CharField(max_length=MAX_LABEL)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    unit = models.CharField(max_length=MAX_UNIT)
    count = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField()
    first_percent = models.FloatField()
    first_used = models.FloatField(null=True)
    last_at = models.DateTimeField()
    last_percent = models.FloatField()
    last_used = models.FloatField(null=True)
    min_at = models.DateTimeField()
    min_percent = models.FloatField()
    min_used = models.FloatField(null=True)
    max_at = models.DateTimeField()
    max_percent = models.FloatField()
    max_used = models.FloatField(null=True)
    consumed = models.FloatField(default=0)
    last_cycle_id = models.BigIntegerField(null=True)
    reset_before_at = models.DateTimeField(null=True)
    reset_before_percent = models.FloatField(null=True)
    reset_before_used = models.FloatField(null=True)
    reset_after_at = models.DateTimeField(null=True)
    reset_after_percent = models.FloatField(null=True)
    reset_after_used = models.FloatField(null=True)
    # The longest silence ending in the bucket: from the quota's previous
    # reading (possibly in an earlier bucket) to one in this bucket. History
    # finds the gaps of a range from these without reading snapshots.
    gap_began_at = models.DateTimeField(null=True)
    gap_ended_at = models.DateTimeField(null=True)
    gap_seconds = models.FloatField(default=0)
    # Quotas with a per-tool breakdown (Z.ai's tool calls): each tool's counter at
    # the last reading, and what each tool added in the bucket, counted as
    # ``consumed`` is. So tool counts over a month need no readings. Null for other quotas.
    last_tools = models.JSONField(null=True, blank=True)
    tool_calls = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            # one bucket per quota, size and start; the poller's upsert relies on it
            models.UniqueConstraint(fields=["provider", "key", "resolution", "start"], name="rollup_one_per_bucket"),
        ]
        indexes = [
            # history: every quota of a provider at one resolution over a time range
            models.Index(fields=["provider", "resolution", "start"], name="rollup_provider_range"),
            # history: the resets in a range, without visiting the roll-ups that hold none
            models.Index(
                fields=["provider", "resolution", "start"],
                name="rollup_resets",
                condition=Q(reset_after_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.key} {self.resolution} s from {timezone.localtime(self.start):%Y-%m-%d %H:%M}"


class ResetCycle(models.Model):
    """The life of one ``reset`` window between two resets (product.md §5)."""

    provider = models.CharField(max_length=16, choices=Provider.choices)
    quota = models.CharField(max_length=MAX_KEY)
    unit = models.CharField(max_length=MAX_UNIT, blank=True, default="")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # The reset instant the cycle ran to (the latest one reported in it).
    resets_at = models.DateTimeField(null=True, blank=True)
    limit = models.FloatField(null=True, blank=True)
    peak_used = models.FloatField(default=0)
    consumed = models.FloatField(default=0)
    readings_count = models.PositiveIntegerField(default=0)
    # Tracking state kept in the database, so a restart changes nothing.
    last_used = models.FloatField(null=True, blank=True)
    last_reading_at = models.DateTimeField(null=True, blank=True)
    # The reset time the latest reading reported. It differs from `resets_at`
    # only while a later time, reported moments after `resets_at` passed,
    # waits for the next poll to tell a true reset from drift (quotas.cycles).
    reported_resets_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "quota"], condition=Q(ended_at__isnull=True), name="cycle_one_open_per_quota"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="cycle_ends_after_start",
            ),
        ]
        indexes = [
            # cycle history of one quota, newest first
            models.Index(fields=["provider", "quota", "-started_at"], name="cycle_quota_history"),
            # cycles of a provider since T (insights)
            models.Index(fields=["provider", "-started_at"], name="cycle_provider_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.quota} from {timezone.localtime(self.started_at):%Y-%m-%d %H:%M}"

    @property
    def active(self) -> bool:
        return self.ended_at is None


class PollSession(models.Model):
    """One continuous run of the poll loop for one provider."""

    provider = models.CharField(max_length=16, choices=Provider.choices)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    interval_seconds = models.PositiveIntegerField()
    polls_ok = models.PositiveIntegerField(default=0)
    polls_failed = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    # {key: {"peak_used": float, "consumed": float, "last_used": float}}
    quotas = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # session history, newest first; open sessions at start-up
            models.Index(fields=["-started_at"], name="session_recent"),
            models.Index(fields=["provider", "-started_at"], name="session_provider_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} session from {timezone.localtime(self.started_at):%Y-%m-%d %H:%M}"

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def record(self, reading: QuotaReading, consumed: float | None) -> None:
        """Fold one reading into the per-quota peak and consumption.

        ``consumed`` is what cycle tracking counted for the reading (it knows
        about resets); windows without cycles count the positive change. The
        session's first reading of a quota is only its baseline.
        """
        level = reading.level
        if level is None:
            return
        stats = self.quotas.setdefault(reading.key, {"peak_used": level, "consumed": 0.0})
        if "last_used" in stats:
            if consumed is None:
                consumed = max(level - stats["last_used"], 0.0)
            stats["consumed"] = stats["consumed"] + consumed
        stats["peak_used"] = max(stats["peak_used"], level)
        stats["last_used"] = level

    def close(self, at: datetime | None = None) -> None:
        self.ended_at = max(at or timezone.now(), self.started_at)
        self.save(update_fields=["ended_at"])

    @classmethod
    def close_orphans(cls) -> int:
        """Close sessions a crashed poller left open, at their last successful poll."""
        closed = 0
        for session in cls.objects.filter(ended_at__isnull=True):
            session.close(session.last_success_at or session.started_at)
            closed += 1
        return closed


class PollAttempt(models.Model):
    """Every fetch, successful or not, so gaps and outages are visible."""

    provider = models.CharField(max_length=16, choices=Provider.choices)
    at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    drift = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # Redacted: never holds an API key.
    message = models.CharField(max_length=MAX_MESSAGE, blank=True, default="")
    session = models.ForeignKey(PollSession, null=True, blank=True, on_delete=models.SET_NULL)
    snapshot = models.ForeignKey(Snapshot, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        indexes = [
            # poll history, newest first, all providers or one
            models.Index(fields=["-at"], name="attempt_recent"),
            models.Index(fields=["provider", "-at"], name="attempt_provider_recent"),
            # last successful poll of a provider (/api/providers freshness), however long an outage;
            # the polls of each outcome in a range (insights' poll success), counted from the index alone
            models.Index(fields=["provider", "outcome", "-at"], name="attempt_provider_outcome"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.outcome} at {timezone.localtime(self.at):%Y-%m-%d %H:%M:%S}"


class PollRequest(models.Model):
    """A user's "poll now" for one provider, which the running poller answers.

    One row per provider, reused: asking again while a request is pending
    changes nothing (requests coalesce), so the table never grows. Pending
    while ``handled_at`` is null; the poller sets it when a poll of that
    provider lands (quotas.pollnow).
    """

    provider = models.CharField(max_length=16, choices=Provider.choices, unique=True)
    requested_at = models.DateTimeField(default=timezone.now)
    handled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        state = "pending" if self.handled_at is None else f"answered at {self.handled_at:%Y-%m-%d %H:%M:%S}"
        return f"{self.provider} poll asked at {self.requested_at:%Y-%m-%d %H:%M:%S}, {state}"

    @classmethod
    def ask(cls, provider: str, now: datetime | None = None) -> datetime:
        """Record a request to poll ``provider``; return when the pending request was made.

        A request already pending absorbs this one, so its older time is returned.
        """
        now = now or timezone.now()
        with transaction.atomic():
            renewed = cls.objects.filter(provider=provider, handled_at__isnull=False).update(
                requested_at=now, handled_at=None
            )
            if not renewed:
                try:
                    with transaction.atomic():
                        cls.objects.create(provider=provider, requested_at=now)
                except IntegrityError:
                    pass  # pending already, or another worker created it just now: coalesced
            return cls.objects.filter(provider=provider).values_list("requested_at", flat=True).get()

    @classmethod
    def pending(cls) -> dict[str, datetime]:
        """provider -> when its pending request was made. One query over at most one row per provider."""
        return dict(cls.objects.filter(handled_at__isnull=True).values_list("provider", "requested_at"))

    @classmethod
    def answered(cls, provider: str, at: datetime) -> int:
        """Mark the pending request of ``provider`` answered by a poll that landed ``at``.

        A request made after ``at`` stays pending: that poll does not answer it.
        """
        return cls.objects.filter(provider=provider, handled_at__isnull=True, requested_at__lte=at).update(
            handled_at=at
        )


class Setting(models.Model):
    """A user preference (timezone, hidden insights, …) as a JSON value."""

    key = models.CharField(max_length=64, unique=True)
    value = models.JSONField(default=None, null=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key
