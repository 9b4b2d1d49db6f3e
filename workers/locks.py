"""One run per job at a time: a per-job lock held as a lease.

The lease is a Redis key when REDIS_URL is set, else named state (``lock:<job>`` in
sessions_api/state.py). While the job runs, a heartbeat thread renews it every third of its
TTL (JOB_LOCK_TTL_SECONDS). A worker killed with -9 stops renewing, so the lease runs out and
the redelivered task can take the job over; a run whose lease was lost stops at its next batch
boundary (``LeaseLost``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.db import OperationalError, connections
from django.utils import timezone

from sessions_api import conf
from sessions_api.state import read_state, update_state

logger = logging.getLogger(__name__)


class TransientJobError(RuntimeError):
    """Worth retrying later: a dependency is down, not the job wrong."""


class LockUnavailable(TransientJobError):
    """The lock backend (Redis or the database) could not be asked."""


class LeaseLost(RuntimeError):
    """This run's lock lease ran out or was taken over: it stops at the next batch boundary."""


class JobLock(Protocol):
    ttl: timedelta

    def acquire(self) -> bool: ...
    def renew(self) -> bool: ...
    def release(self) -> None: ...
    def holder(self) -> str: ...


def job_lock(job: str, *, owner: str = "", ttl: timedelta | None = None) -> JobLock:
    """The lock for one job: Redis when REDIS_URL is set, the database otherwise."""
    ttl = ttl or conf.job_lock_ttl()
    token = f"{worker_name()}:{owner}:{uuid.uuid4().hex[:8]}"
    if getattr(settings, "REDIS_URL", ""):
        return RedisJobLock(job, token=token, ttl=ttl)
    return DatabaseJobLock(job, token=token, ttl=ttl)


@cache
def worker_name() -> str:
    """This process, as lock owners and run details name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


class RedisJobLock:
    """``SET NX PX`` with a token; renew and release only while the token is ours."""

    def __init__(self, job: str, *, token: str, ttl: timedelta) -> None:
        self.key = f"observatory:joblock:{job}"
        self.token = token
        self.ttl = ttl
        self._client = _redis_client(settings.REDIS_URL)

    def _call(self, fn: Callable[[], Any]) -> Any:
        import redis

        try:
            return fn()
        except redis.RedisError as exc:
            raise LockUnavailable(f"Redis lock: {exc}") from exc

    def acquire(self) -> bool:
        ms = int(self.ttl.total_seconds() * 1000)
        return bool(self._call(lambda: self._client.set(self.key, self.token, nx=True, px=ms)))

    def renew(self) -> bool:
        ms = int(self.ttl.total_seconds() * 1000)
        return bool(self._call(lambda: self._client.eval(_RENEW_LUA, 1, self.key, self.token, ms)))

    def release(self) -> None:
        with suppress(LockUnavailable):
            self._call(lambda: self._client.eval(_RELEASE_LUA, 1, self.key, self.token))

    def holder(self) -> str:
        with suppress(LockUnavailable):
            value = self._call(lambda: self._client.get(self.key))
            return value.decode() if isinstance(value, bytes) else str(value)
        return "unknown"


# Compare-and-act on the token, atomically on the server. Renewing also re-takes a key that
# is gone (Redis restarted without persistence): nobody else holds the job then, so the run may
# go on; a key held by another token means the lease is lost.
_RENEW_LUA = """
local current = redis.call('get', KEYS[1])
if current == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
if not current then
  if redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
    return 1
  end
end
return 0
"""
_RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


@cache
def _redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


class DatabaseJobLock:
    """A lease in the named state ``lock:<job>``, taken when free or expired; every change is
    made under the state's row lock."""

    def __init__(self, job: str, *, token: str, ttl: timedelta) -> None:
        self.name = f"lock:{job}"
        self.token = token
        self.ttl = ttl

    def acquire(self) -> bool:
        now = timezone.now()

        def take(lease: dict[str, Any]) -> dict[str, Any] | None:
            owner = lease.get("owner")
            until = _parse_time(lease.get("until"))
            if owner and owner != self.token and until is not None and until > now:
                return None
            until = (now + self.ttl).isoformat()
            return {"owner": self.token, "until": until, "since": now.isoformat()}

        try:
            lease = update_state(name=self.name, change=take)
        except OperationalError as exc:
            raise LockUnavailable(f"database lock: {exc}") from exc
        return lease.get("owner") == self.token

    def renew(self) -> bool:
        now = timezone.now()

        def extend(lease: dict[str, Any]) -> dict[str, Any] | None:
            if lease.get("owner") != self.token:
                return None
            return {**lease, "until": (now + self.ttl).isoformat()}

        return update_state(name=self.name, change=extend).get("owner") == self.token

    def release(self) -> None:
        def clear(lease: dict[str, Any]) -> dict[str, Any] | None:
            return {} if lease.get("owner") == self.token else None

        with suppress(Exception):
            update_state(name=self.name, change=clear)

    def holder(self) -> str:
        return str(read_state(name=self.name).get("owner", "unknown"))


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


class LeaseHeartbeat:
    """Renews the lease every third of its TTL on a daemon thread; sets ``lost`` when the
    lease is no longer ours (a renewal that merely fails is tried again next beat)."""

    def __init__(self, lock: JobLock) -> None:
        self.lock = lock
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-lock-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = max(0.5, self.lock.ttl.total_seconds() / 3)
        try:
            while not self._stop.wait(interval):
                try:
                    if not self.lock.renew():
                        self.lost.set()
                        return
                except Exception:
                    logger.warning("job lock renewal failed; trying again", exc_info=True)
        finally:
            connections.close_all()  # this thread's own database connections
