"""Dependency checks for /readyz, each bounded by a short timeout.

Each check answers ``{"status": "ok"|"down", "ms", ...detail}``: which backend it is and where
(hosts only: /readyz is unauthenticated, so no user name, password or query string is ever
shown), and for a failure the exception's class and its message with any secret redacted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from config.logging import redact
from sessions_api.storage import get_document_store


def hosts_of(url: str) -> str:
    """``scheme://host:port[,host:port]`` of a URL, without credentials, path or options."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def _check_database(detail: dict[str, Any]) -> None:
    detail["vendor"] = connection.vendor
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_store(detail: dict[str, Any]) -> None:
    detail["backend"] = settings.SESSION_STORE
    if settings.SESSION_STORE == "mongo":
        detail["hosts"] = hosts_of(settings.MONGODB_URL)
        detail["database"] = settings.MONGODB_DB
    get_document_store().ping()


def _check_broker(detail: dict[str, Any]) -> None:
    if settings.REDIS_URL:
        import redis

        detail.update(kind="redis", hosts=hosts_of(settings.REDIS_URL))
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        try:
            client.ping()
        finally:
            client.close()
        return
    # The embedded broker is a folder: it is ready when the folder is writable.
    detail["kind"] = "filesystem"
    probe = settings.BROKER_DIR / "queue" / ".ready-probe"
    probe.write_bytes(b"ok")
    probe.unlink()


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "database": _check_database,
    "store": _check_store,
    "broker": _check_broker,
}


def check_dependencies() -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        detail: dict[str, Any] = {}
        try:
            check(detail)
        except Exception as exc:
            results[name] = {
                "status": "down",
                **detail,
                "error": redact(f"{type(exc).__name__}: {exc}")[:300],
            }
        else:
            results[name] = {"status": "ok", **detail}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    overall = "ok" if all(r["status"] == "ok" for r in results.values()) else "degraded"
    return {"status": overall, "checks": results}
