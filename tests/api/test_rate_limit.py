"""A rate limit per API key. Twice the quota on one key: the excess is 429 with Retry-After;
other keys are unaffected; a new window lets the key in again; a cache that cannot count lets
requests through (the limiter must never take the service down).

Also the Redis cache's outage behaviour (config/cache.py): a miss, fast, never a 500.
"""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.test import Client

from config.cache import ResilientRedisCache
from sessions_api.api import ratelimit
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

QUOTA = 5
WINDOW = 60


@pytest.fixture
def limited(settings, empty_cache, monkeypatch):
    settings.API_RATE_LIMIT = QUOTA
    settings.API_RATE_WINDOW_SECONDS = WINDOW
    clock = {"now": 1_800_000_000.0 + 15}  # 15 s into a window (the epoch is window-aligned)
    monkeypatch.setattr(ratelimit, "_clock", lambda: clock["now"])
    return clock


def test_twice_the_quota_is_429_with_retry_after_and_other_keys_pass(limited, make_api_key):
    first = ApiClient(Client(), make_api_key("read", name="busy"))
    other = ApiClient(Client(), make_api_key("read", name="quiet"))
    answers = [first.get("/sessions") for _ in range(2 * QUOTA)]
    assert [r.status_code for r in answers] == [200] * QUOTA + [429] * QUOTA
    for response in answers[QUOTA:]:
        assert response["Retry-After"] == str(WINDOW - 15)
        error = response.json()
        assert error["code"] == "rate_limited"
        assert error["details"] == {"limit": QUOTA, "window_seconds": WINDOW}
    assert other.get("/sessions").status_code == 200


def test_the_next_window_lets_the_key_in_again(limited, make_api_key):
    api = ApiClient(Client(), make_api_key("read"))
    for _ in range(QUOTA):
        assert api.get("/sessions").status_code == 200
    assert api.get("/sessions").status_code == 429
    limited["now"] += WINDOW
    assert api.get("/sessions").status_code == 200


def test_ingest_is_limited_too_and_nothing_is_stored_when_refused(limited, make_api_key):
    from sessions_api.models import Session

    api = ApiClient(Client(), make_api_key("ingest"))
    for _ in range(QUOTA):
        assert api.post("/sessions", b"{").status_code == 400  # rejected bodies count too
    before = Session.objects.count()
    response = api.post("/sessions", {"id": "x", "version": 1.5})
    assert response.status_code == 429
    assert Session.objects.count() == before


def test_requests_without_a_valid_key_are_401_not_counted(limited, make_api_key):
    anonymous = ApiClient(Client(), None)
    for _ in range(2 * QUOTA):
        assert anonymous.get("/sessions").status_code == 401


def test_zero_turns_the_limit_off(settings, empty_cache, make_api_key):
    settings.API_RATE_LIMIT = 0
    api = ApiClient(Client(), make_api_key("read"))
    assert all(api.get("/sessions").status_code == 200 for _ in range(20))


def test_a_cache_that_cannot_count_lets_requests_through(limited, make_api_key, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "add", broken)
    monkeypatch.setattr(cache, "incr", broken)
    api = ApiClient(Client(), make_api_key("read"))
    assert all(api.get("/sessions").status_code == 200 for _ in range(2 * QUOTA))


def test_a_counter_expiring_between_add_and_incr_restarts_at_one(limited, monkeypatch):
    def gone(*args, **kwargs):
        raise ValueError("Key not found")

    monkeypatch.setattr(cache, "incr", gone)
    ratelimit.check("key-1")  # no exception: counted as the first of a fresh window


# --- the Redis cache during an outage -----------------------------------------------------------


def closed_port() -> int:
    from tests.support.live_processes import free_port

    return free_port()  # bound, then released: nothing listens there


def test_resilient_cache_misses_fast_while_redis_is_down(caplog):
    dead = ResilientRedisCache(
        f"redis://127.0.0.1:{closed_port()}/0",
        {"OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1, "retry_after": 30}},
    )
    started = time.perf_counter()
    assert dead.get("k", "default") == "default"
    dead.set("k", "v")
    assert dead.add("k", "v") is False
    assert dead.incr("k") is None
    assert dead.get_many(["a", "b"]) == {}
    assert dead.delete("k") is False
    assert time.perf_counter() - started < 2
    assert not dead.available  # bypassed for retry_after seconds: no more connection attempts
    warnings = [r for r in caplog.records if r.name == "observatory.cache"]
    assert len(warnings) == 1


def test_resilient_cache_talks_to_redis_again_after_the_pause(monkeypatch):
    dead = ResilientRedisCache(
        f"redis://127.0.0.1:{closed_port()}/0", {"OPTIONS": {"retry_after": 0}}
    )
    assert dead.get("k") is None
    calls = []
    monkeypatch.setattr(
        "django.core.cache.backends.redis.RedisCache.get",
        lambda self, key, default=None, version=None: calls.append(key) or "back",
    )
    assert dead.get("k") == "back"
    assert calls == ["k"]
