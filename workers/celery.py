"""The Celery app, configured from Django settings (CELERY_* names).

Redis when REDIS_URL is set; otherwise the embedded filesystem broker under DATA_DIR, so the
README's run command needs no services.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

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
    result_expires=7 * 24 * 3600,
    timezone="UTC",
)
app.autodiscover_tasks(["workers"])
