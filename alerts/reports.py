"""The body of ``GET /api/alerts``: the newest alerts with their deliveries (two queries)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch

from alerts.models import Alert, Delivery


def recent(limit: int) -> dict[str, Any]:
    """The newest ``limit`` alerts, newest first; each delivery names its channel masked, never its URL."""
    deliveries = Prefetch("deliveries", queryset=Delivery.objects.order_by("id"))
    alerts = Alert.objects.order_by("-at", "-id").prefetch_related(deliveries)[:limit]
    return {
        "alerts": [
            {
                "id": alert.id,
                "at": alert.at,
                "event": alert.event,
                "provider": alert.provider,
                "quota": alert.quota or None,
                "level": alert.level or None,
                "title": alert.title,
                "message": alert.message,
                "deliveries": [
                    {"channel": d.channel, "status": d.status, "error": d.error or None} for d in alert.deliveries.all()
                ],
            }
            for alert in alerts
        ]
    }
