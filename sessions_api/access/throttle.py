"""Counters of failures per key over a fixed window, on the ``throttle`` cache.

One mechanism for every "too many of these": failed sign-ins per account and per address,
failed API authentications per address, refused attempts written to the audit log per actor.
A :class:`Throttle` counts hits of a key in the current window; the hit that reaches the limit
blocks the key for one whole window from that moment (:meth:`Throttle.blocked_for`).

The ``throttle`` cache is Redis when ``REDIS_URL`` is set and otherwise a file cache under
``DATA_DIR`` (config/settings.py): unlike the per-process memory cache, every web worker then
shares the count, so N workers do not multiply the allowance. The file cache's increment is not
atomic, so racing hits may be undercounted by a few; a limit of ten stays a limit of about ten.
If the cache cannot count at all, the throttle lets everything through: it protects the
service and must never be what takes it down.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches

_clock = time.time  # tests move it


def _cache():
    return caches["throttle"]


@dataclass(frozen=True)
class Throttle:
    name: str
    limit: int
    window_seconds: int

    def _keys(self, key: str, now: float) -> tuple[str, float]:
        start = int(now // self.window_seconds) * self.window_seconds
        # Hashed: usernames and addresses are not safe cache keys as they are.
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"throttle:{self.name}:{digest}:{start}", start

    def _lock_key(self, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"throttle-lock:{self.name}:{digest}"

    def hit(self, key: str, *, now: float | None = None) -> int:
        """Count one hit of ``key``; the count in this window (0 when the cache cannot count).
        A hit at or past the limit blocks the key for a whole window from now."""
        now = _clock() if now is None else now
        counter, _ = self._keys(key, now)
        try:
            cache = _cache()
            cache.add(counter, 0, timeout=self.window_seconds + 5)
            try:
                count = int(cache.incr(counter) or 0)
            except ValueError:  # expired between add and incr: a window boundary
                cache.set(counter, 1, timeout=self.window_seconds + 5)
                count = 1
            if self.limit > 0 and count >= self.limit:
                until = now + self.window_seconds
                cache.set(self._lock_key(key), until, timeout=self.window_seconds + 5)
            return count
        except Exception:
            return 0

    def count(self, key: str, *, now: float | None = None) -> int:
        now = _clock() if now is None else now
        counter, _ = self._keys(key, now)
        try:
            return int(_cache().get(counter) or 0)
        except Exception:
            return 0

    def blocked_for(self, key: str, *, now: float | None = None) -> int:
        """Seconds until ``key`` may try again (0: not blocked)."""
        now = _clock() if now is None else now
        if self.limit <= 0:
            return 0
        try:
            until = float(_cache().get(self._lock_key(key)) or 0)
        except Exception:
            return 0
        return max(0, math.ceil(until - now))

    def reset(self, key: str, *, now: float | None = None) -> None:
        now = _clock() if now is None else now
        counter, _ = self._keys(key, now)
        try:
            _cache().delete_many([counter, self._lock_key(key)])
        except Exception:
            return


def client_address(request) -> str:
    """The address a request came from, as the throttles count it: REMOTE_ADDR, or, behind
    ``TRUSTED_PROXY_HOPS`` proxies of your own, the address the outermost of them saw (that many
    entries from the right of X-Forwarded-For; what a client writes further left is ignored)."""
    hops = int(getattr(settings, "TRUSTED_PROXY_HOPS", 0) or 0)
    if hops > 0:
        forwarded = [
            part.strip()
            for part in str(request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops][:64]
    return str(request.META.get("REMOTE_ADDR") or "unknown")[:64]


@dataclass(frozen=True)
class Tally:
    """A running count per key, taken (read and zeroed) by whoever reports it."""

    name: str
    keep_seconds: int = 24 * 3600

    def _key(self, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"tally:{self.name}:{digest}"

    def add(self, key: str) -> None:
        try:
            cache = _cache()
            cache.add(self._key(key), 0, timeout=self.keep_seconds)
            cache.incr(self._key(key))
        except Exception:
            return

    def take(self, key: str) -> int:
        try:
            cache = _cache()
            count = int(cache.get(self._key(key)) or 0)
            if count:
                cache.delete(self._key(key))
            return count
        except Exception:
            return 0
