"""Hands alert events to the workers at commit time.

The session domain announces them with signals (sessions_api.lifecycle.alerts.evaluate);
the receivers here send the small alert tasks (workers/tasks.py) by name, loading the Celery
app only when the first event comes.

The request path never waits on the broker: a send happens on one background thread of this
process, and at most MAX_PENDING sends wait for it (with the broker down each send takes its
connect timeout). A send that fails, is dropped, or dies with the process is caught up by the
evaluate_alerts and deliver_alerts jobs (the outbox row or the pending notification is still
there), so nothing is lost, only later.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workers.dispatch import celery_app

logger = logging.getLogger(__name__)

MAX_PENDING = 1000
_lock = threading.Lock()
_pending = 0
_executor: ThreadPoolExecutor | None = None
_executor_pid = 0  # a forked child (a Celery or gunicorn worker) starts a thread of its own


def _submit(task: str, args: list[Any]) -> None:
    global _pending, _executor, _executor_pid
    with _lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-events")
            _executor_pid, _pending = os.getpid(), 0
        if _pending >= MAX_PENDING:
            logger.warning("alerts: %s for %s left to the sweep (the broker is slow)", task, args)
            return
        _pending += 1
        executor = _executor
    executor.submit(_send, task, args)


def _send(task: str, args: list[Any]) -> None:
    global _pending
    try:
        celery_app().send_task(task, args=args, retry=False)
    except Exception as exc:  # the sweep catches up; the save that caused it stays done
        logger.warning("alerts: could not send %s for %s: %r", task, args, exc)
    finally:
        with _lock:
            _pending -= 1


def enqueue_session_event(sender: Any = None, *, outbox_id: int, **_: Any) -> None:
    _submit("alerts.session_event", [outbox_id])


def enqueue_deliveries(sender: Any = None, *, notification_ids: list[int], **_: Any) -> None:
    for notification_id in notification_ids:
        _submit("alerts.deliver", [notification_id])


def connect() -> None:
    from sessions_api.lifecycle.alerts.evaluate import notifications_ready, outbox_committed

    outbox_committed.connect(enqueue_session_event, dispatch_uid="alerts.session_event")
    notifications_ready.connect(enqueue_deliveries, dispatch_uid="alerts.deliver")


def flush() -> None:
    """Wait until every send handed over so far was tried (tests, and a clean shutdown)."""
    executor = _executor
    if executor is not None and _executor_pid == os.getpid():
        executor.submit(lambda: None).result(timeout=60)
