"""API keys missing, malformed, unknown, revoked or lacking the scope; hashes at rest; the
create_api_key command."""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.forms.models import model_to_dict

from sessions_api.access import keys
from sessions_api.models import ApiKey, Session
from tests.conftest import ERROR_KEYS

pytestmark = pytest.mark.django_db

DOC = b'[{"role": "user", "content": "hi"}]'


def call(client, method: str, path: str, key: str | None, *, authorization: str | None = None):
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization
    elif key is not None:
        headers["Authorization"] = f"Bearer {key}"
    url = "/api/v1" + path
    if method == "post":
        body = b'{"documents": [' + DOC + b"]}" if path.endswith("/batch") else DOC
        return client.post(url, data=body, content_type="application/json", headers=headers)
    return getattr(client, method)(url, headers=headers)


@pytest.fixture
def session_id(api) -> str:
    response = api.post(
        "/sessions", b'{"session_id": "auth-1", "messages": [{"role": "user", "content": "x"}]}'
    )
    assert response.status_code == 201
    return response.json()["id"]


def operations(session_id: str) -> list[tuple[str, str, str]]:
    """(method, path, scope it needs) for every API operation."""
    return [
        ("post", "/sessions", "ingest"),
        ("post", "/sessions/batch", "ingest"),
        ("get", "/sessions", "read"),
        ("get", f"/sessions/{session_id}", "read"),
        ("get", f"/sessions/{session_id}/raw", "read"),
        ("get", f"/sessions/{session_id}/timeline", "read"),
        ("get", f"/sessions/{session_id}/versions", "read"),
        ("delete", f"/sessions/{session_id}", "admin"),
    ]


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) <= ERROR_KEYS
    assert body["code"] == code
    assert body["message"]
    return body


# --- 401 ----------------------------------------------------------------------------------


def test_every_operation_without_a_key_is_401(client, session_id):
    for method, path, _ in operations(session_id):
        response = call(client, method, path, None)
        assert_error(response, 401, "unauthenticated")
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert Session.objects.count() == 1


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "bearer",
        "Basic dXNlcjpwYXNz",
        "Token so_abc_def",
        "so_abc_def",
        "Bearer so_",
        "Bearer so__",
        "Bearer abc",
        "Bearer so_abc",
        "Bearer xx_abc_def",
        "Bearer so_" + "a" * 300 + "_b",
        "Bearer so_abc_def extra",
        "Bearer so_%00_x",
        "Bearer so_' OR 1=1 --_x",
        'Bearer so_{"$ne": null}_x',
    ],
)
def test_malformed_keys_are_401(client, session_id, authorization):
    for method, path, _ in operations(session_id)[:3]:
        response = call(client, method, path, None, authorization=authorization)
        assert_error(response, 401, "unauthenticated")


def test_unknown_key_is_401(client, make_api_key, session_id):
    real = make_api_key("admin")
    _, prefix, secret = real.split("_", 2)
    unknown_prefix = f"so_{'0' * len(prefix)}_{secret}"
    wrong_secret = f"so_{prefix}_{'x' * len(secret)}"
    for key in (unknown_prefix, wrong_secret, real + "x", real[:-1]):
        for method, path, _ in operations(session_id):
            assert_error(call(client, method, path, key), 401, "unauthenticated")
    # The real key itself still works.
    assert call(client, "get", "/sessions", real).status_code == 200


def test_revoked_key_is_401(client, session_id):
    created = keys.create_api_key(name="to revoke", scopes=["admin"])
    assert call(client, "get", "/sessions", created.key).status_code == 200
    assert keys.revoke_api_key(key_id=created.id) is True
    for method, path, _ in operations(session_id):
        assert_error(call(client, method, path, created.key), 401, "unauthenticated")
    assert keys.revoke_api_key(key_id=created.id) is False
    assert Session.objects.count() == 1


def test_a_key_edited_outside_the_api_is_re_read_on_its_next_request(client, settings):
    """Verified keys are cached for a few seconds; an edit made anywhere (the admin saves the
    row) must not wait for that cache to expire."""
    settings.API_KEY_CACHE_SECONDS = 300
    created = keys.create_api_key(name="edited in the admin", scopes=["admin"])
    assert call(client, "get", "/sessions", created.key).status_code == 200  # now cached
    row = ApiKey.objects.get(id=created.id)
    row.scopes = ["ingest"]
    row.save()
    assert_error(call(client, "get", "/sessions", created.key), 403, "forbidden")
    row.delete()
    assert_error(call(client, "get", "/sessions", created.key), 401, "unauthenticated")


def test_a_verified_key_is_remembered_as_a_key_record_not_a_row(client, settings):
    settings.API_KEY_CACHE_SECONDS = 300
    created = keys.create_api_key(name="remembered", scopes=["read"])
    assert call(client, "get", "/sessions", created.key).status_code == 200
    remembered = cache.get(keys.auth_cache_key(keys.hash_api_key(created.key)))
    assert isinstance(remembered, keys.KeyRecord)
    assert (remembered.id, remembered.scopes) == (created.id, ("read",))
    assert remembered.last_used_at is not None
    assert keys.authenticate(token=created.key) == remembered


def test_tokens_that_are_not_keys_authenticate_to_nothing(db):
    created = keys.create_api_key(name="real", scopes=["read"])
    for token in ("", "so_", created.key + "x", "xx" + created.key[2:], "so_" + "a" * 300):
        assert keys.authenticate(token=token) is None
    assert keys.authenticate(token=created.key) is not None


# --- 403 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scopes",
    [("ingest",), ("read",), ("write",), ("ingest", "read"), ("read", "write"), ("admin",)],
    ids=lambda scopes: "+".join(scopes),
)
def test_scopes(client, make_api_key, session_id, scopes):
    key = make_api_key(*scopes)
    for method, path, needed in operations(session_id):
        response = call(client, method, path, key)
        if needed in scopes or "admin" in scopes:
            assert response.status_code in (200, 201, 204), (method, path, response.content[:200])
        else:
            body = assert_error(response, 403, "forbidden")
            assert needed in body["message"]


def test_read_only_key_cannot_ingest_or_delete(client, make_api_key, session_id):
    key = make_api_key("read")
    assert_error(call(client, "post", "/sessions", key), 403, "forbidden")
    assert_error(call(client, "post", "/sessions/batch", key), 403, "forbidden")
    assert_error(call(client, "delete", f"/sessions/{session_id}", key), 403, "forbidden")
    assert Session.objects.count() == 1


def test_ingest_only_key_cannot_read(client, make_api_key, session_id):
    key = make_api_key("ingest")
    assert call(client, "post", "/sessions", key).status_code == 201
    for method, path, needed in operations(session_id):
        if needed == "read":
            assert_error(call(client, method, path, key), 403, "forbidden")


def test_unknown_session_with_wrong_scope_is_403_not_404(client, make_api_key):
    """Authorisation is checked before existence: a key cannot probe for ids."""
    key = make_api_key("ingest")
    assert_error(call(client, "get", f"/sessions/{uuid.uuid4()}", key), 403, "forbidden")


# --- at rest and in logs ------------------------------------------------------------------


def test_only_the_hash_is_stored(make_api_key):
    key = make_api_key("ingest", "read", name="hash check")
    row = ApiKey.objects.get()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    secret = key.split("_", 2)[2]
    for value in model_to_dict(row).values():
        assert key not in str(value)
        assert secret not in str(value)
    assert row.scopes == ["ingest", "read"]
    assert key.startswith(f"so_{row.prefix}_")


def test_keys_are_never_logged(client, make_api_key, session_id, caplog):
    key = make_api_key("read")
    with caplog.at_level(logging.DEBUG):
        call(client, "get", "/sessions", key)
        call(client, "post", "/sessions", key)  # a 403
        call(client, "get", "/sessions", key + "x")  # a 401
    secret = key.split("_", 2)[2]
    assert all(secret not in record.getMessage() for record in caplog.records)
    assert secret not in caplog.text


def test_unknown_scopes_are_refused_by_the_service():
    with pytest.raises(ValueError):
        keys.create_api_key(name="x", scopes=["superuser"])
    with pytest.raises(ValueError):
        keys.create_api_key(name="x", scopes=[])
    assert ApiKey.objects.count() == 0


# --- manage.py create_api_key -------------------------------------------------------------


def test_create_api_key_prints_the_key_alone_on_the_last_line(client, session_id):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "--name", "x", "--scopes", "ingest,read", stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    key = lines[-1]
    assert key == key.strip() and " " not in key and key.startswith("so_")
    row = ApiKey.objects.get(name="x")
    assert row.scopes == ["ingest", "read"]
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in err.getvalue()
    # The printed key works, with exactly those scopes.
    assert call(client, "get", "/sessions", key).status_code == 200
    assert call(client, "post", "/sessions", key).status_code == 201
    assert_error(call(client, "delete", f"/sessions/{session_id}", key), 403, "forbidden")


@pytest.mark.parametrize("scopes", ["ingest,root", "everything", ",", "read;write"])
def test_create_api_key_rejects_unknown_scopes(scopes):
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("create_api_key", "--name", "x", "--scopes", scopes, stdout=out)
    assert out.getvalue() == ""
    assert ApiKey.objects.count() == 0


def test_create_api_key_needs_a_name():
    with pytest.raises(CommandError):
        call_command("create_api_key", "--scopes", "read")
