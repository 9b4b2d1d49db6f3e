"""Dependency checks for /readyz, each bounded by a short timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection

from sessions_api.storage import get_document_store


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_store() -> None:
    get_document_store().ping()


def _check_broker() -> None:
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        client.ping()
    else:
        # The embedded broker is a folder: it is ready when the folder is writable.
        probe = settings.BROKER_DIR / "queue" / ".ready-probe"
        probe.write_bytes(b"ok")
        probe.unlink()


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "store": _check_store,
    "broker": _check_broker,
}


def check_dependencies() -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:
            results[name] = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            results[name] = {"status": "ok"}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    overall = "ok" if all(r["status"] == "ok" for r in results.values()) else "degraded"
    return {"status": overall, "checks": results}
