"""The Celery app, configured from Django settings (CELERY_* names).

Redis when REDIS_URL is set; otherwise the embedded filesystem broker under DATA_DIR, so the
README's run command needs no services.

Reliability: tasks are acknowledged after they finish (``acks_late``) and
handed back when their worker dies (``task_reject_on_worker_lost``); on Redis an unacknowledged
message comes back after ``visibility_timeout`` (CELERY_VISIBILITY_TIMEOUT, default 2 hours:
longer than any task's time limit and any retry countdown, so a slow task is never delivered
twice while it runs). The worker reconnects to a restarted broker by itself, forever.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.conf import settings  # after DJANGO_SETTINGS_MODULE is set

from config.runtime import freeze_startup_objects
from workers.schedule import beat_schedule

app = Celery("observatory")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_time_limit=30 * 60,
    task_soft_time_limit=25 * 60,
    broker_connection_retry_on_startup=True,
    broker_connection_retry=True,
    broker_connection_max_retries=None,
    # A task that is running when the broker connection drops finishes its work (jobs are
    # idempotent and locked, a redelivery is harmless) instead of being cancelled.
    worker_cancel_long_running_tasks_on_connection_loss=False,
    result_expires=7 * 24 * 3600,
    timezone="UTC",
    beat_schedule=beat_schedule(),
    beat_schedule_filename=str(settings.DATA_DIR / "celerybeat-schedule"),
)
if str(settings.CELERY_BROKER_URL).startswith(("redis://", "rediss://")):
    app.conf.broker_transport_options = {
        **(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}),
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 2 * 3600)),
        "socket_connect_timeout": 5,
        "socket_timeout": 30,
        "retry_on_timeout": True,
        "health_check_interval": 10,
    }
    # How often a worker looks for messages a dead worker left unacknowledged (kombu's default
    # sweep is about every 100 s); they come back once older than the visibility timeout.
    if os.environ.get("CELERY_UNACKED_RESTORE_INTERVAL"):
        app.conf.broker_transport_options.update(
            unacked_restore_interval=int(os.environ["CELERY_UNACKED_RESTORE_INTERVAL"]),
            unacked_restore_throttle=1,
        )
    app.conf.result_backend_transport_options = {"retry_policy": {"timeout": 5.0}}
app.autodiscover_tasks(["workers"])

# Its signal receivers: JSON logs with a correlation id in workers and beat too.
import workers.log_context  # noqa: E402, F401


@worker_process_init.connect
def freeze_after_imports(**_: object) -> None:
    # Each pool process, once it has imported the tasks and what they use: garbage collection
    # then leaves those objects alone (config/runtime.py says why).
    freeze_startup_objects()
