"""Thin Celery tasks over services. Explicit names, ids not objects."""

from __future__ import annotations

from workers.celery import app


@app.task(name="workers.ping")
def ping() -> str:
    """A canary: answers when a worker is consuming."""
    return "pong"
