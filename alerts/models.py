"""What SynTrack told people, and what it must not tell them twice.

An ``Alert`` is one event worth telling (a threshold crossed, a quota running
out, polls failing, …). A ``Latch`` remembers that an alert went out and has
not re-armed yet: one row per provider, quota, event and level, so the state
survives restarts and an alert is never sent twice for the same crossing.
``Threshold`` and ``EventSwitch`` are the user's rules; their absence means
the defaults of ``alerts.rules``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Event(models.TextChoices):
    THRESHOLD = "threshold"
    RUNS_OUT = "runs_out"
    EXHAUSTED = "exhausted"
    RESET = "reset"
    AUTH_FAILED = "auth_failed"
    DRIFT = "drift"
    FAILING = "failing"
    RECOVERED = "recovered"


class Level(models.TextChoices):
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(models.Model):
    at = models.DateTimeField(default=timezone.now)
    event = models.CharField(max_length=20, choices=Event.choices)
    provider = models.CharField(max_length=16)
    # Blank for a provider's events (auth_failed, drift, failing, recovered).
    quota = models.CharField(max_length=64, blank=True, default="")
    # warning or critical for thresholds, blank otherwise.
    level = models.CharField(max_length=10, blank=True, default="", choices=Level.choices)
    title = models.CharField(max_length=200)
    message = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["-at"], name="alert_recent")]

    def __str__(self) -> str:
        return self.title


class Latch(models.Model):
    """An alert that went out and has not re-armed: while it exists, the same alert is not sent again.

    ``cycle_id`` is the quota's reset cycle when it fired (a new cycle re-arms
    every latch of the quota); ``percent`` its usage then (a quota without
    cycles, a rolling window, re-arms once usage falls 5 points below it).
    The ``reset`` event's latch holds the last cycle seen instead.
    """

    provider = models.CharField(max_length=16)
    quota = models.CharField(max_length=64, blank=True, default="")
    event = models.CharField(max_length=20, choices=Event.choices)
    level = models.CharField(max_length=10, blank=True, default="")
    cycle_id = models.BigIntegerField(null=True, blank=True)
    percent = models.FloatField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "quota", "event", "level"], name="latch_once"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.quota or '-'} {self.event} {self.level or ''}".strip()


class Threshold(models.Model):
    """Threshold levels in percent: for every quota (provider and quota blank), or for one quota."""

    provider = models.CharField(max_length=16, blank=True, default="")
    quota = models.CharField(max_length=64, blank=True, default="")
    warning = models.FloatField(null=True, blank=True)
    critical = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "quota"], name="threshold_once")]

    def __str__(self) -> str:
        return f"{self.provider or 'every provider'} {self.quota or 'every quota'}"


class EventSwitch(models.Model):
    """Whether an event is told; an event without a row follows ``alerts.rules.DEFAULT_EVENTS``."""

    event = models.CharField(max_length=20, choices=Event.choices, unique=True)
    enabled = models.BooleanField()

    def __str__(self) -> str:
        return f"{self.event}: {'on' if self.enabled else 'off'}"


class Channel(models.Model):
    """A notification channel added on the settings page: an Apprise URL (``SYNTRACK_NOTIFY_URLS`` adds more).

    The URL often carries a secret (a token, a password): it is shown back
    only masked (``alerts.channels.mask``), never in full.
    """

    url = models.TextField()
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        from alerts.channels import mask

        return mask(self.url)


class Delivery(models.Model):
    """One alert sent (or not) to one channel."""

    class Status(models.TextChoices):
        SENT = "sent"
        FAILED = "failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    # The channel's masked name: never its URL.
    channel = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices)
    # Redacted: no URL, no secret.
    error = models.CharField(max_length=500, blank=True, default="")
    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.alert} → {self.channel}: {self.status}"
