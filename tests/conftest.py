"""Shared fixtures: API keys, an authenticated JSON client, documents on disk."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache, caches
from django.test import Client, override_settings

from sessions_api.access import keys
from sessions_api.models import (
    DocumentBody,
    DocumentVersion,
    ModelUsage,
    Session,
    SessionError,
    ToolCallRecord,
)
from tests.support.chromium import browser  # noqa: F401 - the browser tests' shared fixture

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Read-only reference material beside the project (shared/); tests skip when it is absent.
SHARED = PROJECT_ROOT.parent / "shared"


# --- lanes: pure tests run once, the PostgreSQL pass runs what reaches a database ---------------

# How a test reaches the suite's database in this process: pytest-django refuses database access
# to a test that asked for none of these (django_db_setup stands for any fixture that sets the
# test database up). django_db_blocker is not one: pytest-django's own autouse fixtures take it.
DATABASE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "django_db_setup",
        "live_server",
    }
)


def reaches_a_database(item: pytest.Item) -> bool:
    if item.get_closest_marker("django_db"):
        return True
    if DATABASE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    # Live processes migrate a database of the suite's own vendor (PostgreSQL on its pass).
    return getattr(getattr(item, "module", None), "live_database", None) is not None


SYSTEM_LANE = PROJECT_ROOT / "tests" / "system"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``pure`` every test that cannot reach the suite's database; bin/test's PostgreSQL pass
    skips them, since they would only repeat what the SQLite pass proved.

    Mark ``serial`` every test in tests/system that is not ``parallel_safe``: they measure time
    or memory of live processes, so bin/test runs them one at a time, apart from the rest."""
    for item in items:
        if not reaches_a_database(item):
            item.add_marker(pytest.mark.pure)
        in_system_lane = SYSTEM_LANE in Path(str(item.path)).parents
        if in_system_lane and not item.get_closest_marker("parallel_safe"):
            item.add_marker(pytest.mark.serial)
    # The long parallel-safe tests first: on both cores they then overlap the many short ones
    # instead of running alone at the end of the lane.
    items.sort(key=lambda item: item.get_closest_marker("parallel_safe") is None)


@pytest.fixture(scope="session", autouse=True)
def fast_password_hasher() -> Iterator[None]:
    """The production hasher costs about a second per hash on a loaded machine; tests that make
    users need a hash, not its cost. Subprocess servers keep the production settings."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(scope="session", autouse=True)
def private_throttle_cache() -> Iterator[None]:
    """Each test process counts failures (sign-ins, API keys, refusals) in its own memory, not
    in the file cache shared under DATA_DIR, so parallel tests never lock each other out."""
    caches_setting = {
        **settings.CACHES,
        "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t"},
    }
    # Every test client shares one address: tests of bad keys would lock each other out. The
    # throttle's own tests (tests/access/test_authentication_throttles.py) turn it back on.
    with override_settings(CACHES=caches_setting, API_AUTH_FAILURE_LIMIT=0):
        yield


@pytest.fixture(autouse=True)
def fresh_throttle_counts() -> None:
    """No test starts with another test's failures counted against it."""
    caches["throttle"].clear()


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared reference {path} is not present beside the project")
    return path


def seed_picoflow_document() -> bytes:
    """The Picoflow document printed in shared/seeds/000_*.txt, as bytes."""
    text = shared_path("seeds", "000_fa963f3effebf444.txt").read_text(encoding="utf-8")
    start = text.index("{", text.index("session document from previous run:"))
    end = text.rindex("}", 0, text.index("Wrapping up")) + 1
    return text[start:end].encode("utf-8")


class ApiClient:
    """Django's test client speaking the REST API with a bearer key."""

    def __init__(self, client: Client, key: str | None) -> None:
        self.client = client
        self.key = key

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def post(
        self,
        path: str,
        body: bytes | str | Any,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        **params: Any,
    ):
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        return self.client.post(
            "/api/v1" + path + _query(params),
            data=body,
            content_type=content_type,
            headers=self._headers(headers),
        )

    def get(self, path: str, *, headers: dict[str, str] | None = None, **params: Any):
        return self.client.get("/api/v1" + path + _query(params), headers=self._headers(headers))

    def delete(self, path: str, *, headers: dict[str, str] | None = None):
        return self.client.delete("/api/v1" + path, headers=self._headers(headers))


def _query(params: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    clean = {k: v for k, v in params.items() if v is not None}
    return ("?" + urlencode(clean, doseq=True)) if clean else ""


@pytest.fixture
def make_api_key(db) -> Callable[..., str]:
    def make(*scopes: str, name: str = "test") -> str:
        return keys.create_api_key(name=name, scopes=list(scopes)).key

    return make


@pytest.fixture
def api(client: Client, make_api_key) -> ApiClient:
    """A client holding every scope."""
    return ApiClient(client, make_api_key("ingest", "read", "write", "admin"))


@pytest.fixture
def api_as(client: Client, make_api_key) -> Callable[..., ApiClient]:
    """api_as("read") -> a client whose key holds only those scopes (none: no key at all)."""

    def make(*scopes: str) -> ApiClient:
        return ApiClient(client, make_api_key(*scopes) if scopes else None)

    return make


@pytest.fixture
def seed_document() -> bytes:
    return seed_picoflow_document()


# --- what ingest stores, and how a rejection must look ---------------------------------

ERROR_KEYS = {"code", "message", "path", "details"}


def count_stored() -> dict[str, int]:
    """Every table an ingest writes to: a rejection must leave all of them unchanged."""
    return {
        model.__name__: model.objects.count()
        for model in (
            Session,
            DocumentVersion,
            DocumentBody,
            ToolCallRecord,
            SessionError,
            ModelUsage,
        )
    }


@pytest.fixture
def stored() -> Callable[[], dict[str, int]]:
    return count_stored


@pytest.fixture
def reject(api) -> Callable[..., dict[str, Any]]:
    """Post a body, assert the exact error answer and that nothing at all was stored."""

    def check(
        body: bytes,
        status: int,
        code: str,
        *,
        path: str | None = None,
        endpoint: str = "/sessions",
        content_type: str = "application/json",
        **params: Any,
    ) -> dict[str, Any]:
        before = count_stored()
        response = api.post(endpoint, body, content_type=content_type, **params)
        assert response.status_code == status, response.content[:600]
        assert response["Content-Type"].startswith("application/json")
        error = response.json()
        assert set(error) <= ERROR_KEYS, error
        assert error["code"] == code, error
        assert isinstance(error["message"], str) and error["message"], error
        if path is not None:
            assert error.get("path") == path, error
        assert count_stored() == before, "a rejected document left rows behind"
        return error

    return check


@pytest.fixture
def empty_cache() -> Iterator[None]:
    """The default cache, emptied before and after the test."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def cache_reads(monkeypatch) -> list[str]:
    """Every key read from the default cache (get and get_many) while the test runs."""
    keys: list[str] = []
    inside_get_many = []  # LocMem's get_many calls get for each key: count those once
    real_get, real_get_many = cache.get, cache.get_many

    def get(key: str, *args: Any, **kwargs: Any) -> Any:
        if not inside_get_many:
            keys.append(key)
        return real_get(key, *args, **kwargs)

    def get_many(many: list[str], *args: Any, **kwargs: Any) -> dict[str, Any]:
        keys.extend(many)
        inside_get_many.append(True)
        try:
            return real_get_many(many, *args, **kwargs)
        finally:
            inside_get_many.pop()

    monkeypatch.setattr(cache, "get", get)
    monkeypatch.setattr(cache, "get_many", get_many)
    return keys
