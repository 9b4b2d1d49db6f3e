"""Django's Redis cache, made optional: a Redis outage degrades to "no cache", never to a 500.

Everything the project caches (parsed versions, timeline windows, filter suggestions, the rate
limiter's counters) can be rebuilt or skipped, so when Redis does not answer a read is a miss,
a write is dropped, and the request goes on (the request path never waits on
the broker). After a failure the cache stays bypassed for ``RETRY_SECONDS`` (OPTIONS
``retry_after``, default 5) so that a dead Redis costs one short timeout per process per
period, not one per call. A warning is logged once per outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger("observatory.cache")
T = TypeVar("T")


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS") or {})
        self.retry_after = float(options.pop("retry_after", 5))
        super().__init__(server, {**params, "OPTIONS": options})
        self._down_until = 0.0
        self._state_lock = threading.Lock()

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _guard(self, call: Callable[[], T], fallback: T) -> T:
        if not self.available:
            return fallback
        try:
            return call()
        except (RedisError, OSError) as exc:
            with self._state_lock:
                first = self.available
                self._down_until = time.monotonic() + self.retry_after
            if first:
                logger.warning(
                    "cache unavailable, bypassing it for %.0f s: %s",
                    self.retry_after,
                    f"{type(exc).__name__}: {exc}"[:200],
                )
            return fallback

    # Reads miss, writes are dropped, counters say "unknown" (None) while Redis is away.
    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._guard(partial(super().get, key, default, version), default)

    def get_many(self, keys: Any, version: int | None = None) -> dict[str, Any]:
        return self._guard(partial(super().get_many, keys, version), {})

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._guard(partial(super().has_key, key, version), False)

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None):
        self._guard(partial(super().set, key, value, timeout, version), None)

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None):
        return self._guard(partial(super().set_many, data, timeout, version), list(data))

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None):
        return self._guard(partial(super().add, key, value, timeout, version), False)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        return self._guard(partial(super().touch, key, timeout, version), False)

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self._guard(partial(super().delete, key, version), False)

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._guard(partial(super().delete_many, keys, version), None)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        # ValueError (no such key) still propagates, as Django's contract says; an outage
        # answers None, which callers (the rate limiter) read as "cannot tell".
        return self._guard(partial(super().incr, key, delta, version), None)

    def clear(self) -> None:
        self._guard(super().clear, None)
