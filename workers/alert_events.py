"""Hands alert events to the workers at commit time.

The session domain announces them with signals (sessions_api.lifecycle.alerts.evaluate);
the receivers here send the small alert tasks (workers/tasks.py) by name, loading the Celery
app only when the first event comes. A failure to send is logged by the domain and caught up by
the evaluate_alerts and deliver_alerts jobs, so a request never fails for it.
"""

from __future__ import annotations

from typing import Any

from workers.dispatch import celery_app

_SEND_OPTIONS: dict[str, Any] = {"retry": False}


def enqueue_session_event(sender: Any = None, *, outbox_id: int, **_: Any) -> None:
    celery_app().send_task("alerts.session_event", args=[outbox_id], **_SEND_OPTIONS)


def enqueue_deliveries(sender: Any = None, *, notification_ids: list[int], **_: Any) -> None:
    app = celery_app()
    for notification_id in notification_ids:
        app.send_task("alerts.deliver", args=[notification_id], **_SEND_OPTIONS)


def connect() -> None:
    from sessions_api.lifecycle.alerts.evaluate import notifications_ready, outbox_committed

    outbox_committed.connect(enqueue_session_event, dispatch_uid="alerts.session_event")
    notifications_ready.connect(enqueue_deliveries, dispatch_uid="alerts.deliver")
