"""A rate limit per API key: a fixed window on Django's cache.

``settings.API_RATE_LIMIT`` requests per ``API_RATE_WINDOW_SECONDS`` (default 60) per key; 0
turns it off. The counter lives in the default cache: Redis in production, so every web
process and machine shares it; the embedded locmem cache counts per process (with N gunicorn
workers a key gets up to N times the quota there). Over the quota the API answers 429 with
``Retry-After`` = the seconds left in the window. If the cache cannot count (Redis down), the
request is let through: the limit protects the service, it must never be what takes it down.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache

from sessions_api.errors import RateLimited

_clock = time.time  # tests move it


def limits() -> tuple[int, int]:
    """(requests per window, window seconds) from settings."""
    limit = int(getattr(settings, "API_RATE_LIMIT", 0) or 0)
    window = max(1, int(getattr(settings, "API_RATE_WINDOW_SECONDS", 60) or 60))
    return limit, window


def check(key_id: object, *, now: float | None = None) -> None:
    """Count one request for ``key_id``; raise RateLimited when it is over the quota."""
    limit, window = limits()
    if limit <= 0:
        return
    now = _clock() if now is None else now
    window_start = int(now // window) * window
    counter = f"ratelimit:v1:{key_id}:{window_start}"
    try:
        # add() creates the counter once per window (a no-op when it exists); incr is atomic
        # on Redis and under locmem's lock.
        cache.add(counter, 0, timeout=window + 5)
        count = cache.incr(counter)
    except ValueError:
        # The counter expired between add and incr (a window boundary): start it again.
        try:
            cache.set(counter, 1, timeout=window + 5)
        except Exception:
            return
        count = 1
    except Exception:
        return  # the cache cannot count: fail open
    if count is None:
        return  # ResilientRedisCache during an outage
    if count > limit:
        retry_after = max(1, math.ceil(window_start + window - now))
        raise RateLimited(limit=limit, window=window, retry_after=retry_after)
