"""Every list answers {items, next_cursor}; the keys lists had before stay one release, with
the same list, and are marked deprecated in the OpenAPI document."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from sessions_api.editing import lineage
from sessions_api.editing.values import Actor, EditRequest
from sessions_api.ingest import services

pytestmark = pytest.mark.django_db

OLD_KEYS = {"timeline": "events", "versions": "versions", "checkpoints": "checkpoints"}


@pytest.fixture
def session_id() -> str:
    body = json.dumps(
        {"session_id": "shape-1", "messages": [{"role": "user", "content": "hello"}]}
    ).encode()
    session_id = services.ingest_document(body=body).id
    lineage.create_checkpoint(
        edit=EditRequest(
            session_id=session_id, actor=Actor(label="user:t"), reason="", now=timezone.now()
        ),
        name="first",
        version=1,
    )
    return session_id


@pytest.mark.parametrize("endpoint", ["", "timeline", "versions", "checkpoints", "audit"])
def test_every_list_has_items_and_next_cursor(api_as, session_id, endpoint):
    api = api_as("read")
    path = "/sessions" if not endpoint else f"/sessions/{session_id}/{endpoint}"
    body = api.get(path).json()
    assert isinstance(body["items"], list) and body["items"], body
    assert "next_cursor" in body
    if endpoint in OLD_KEYS:
        assert body[OLD_KEYS[endpoint]] == body["items"]


def test_old_list_keys_are_deprecated_in_the_openapi_document(api_as):
    schema = api_as("read").get("/openapi.json").json()
    components = schema["components"]["schemas"]
    deprecated = {
        (name, key)
        for name, component in components.items()
        for key, prop in component.get("properties", {}).items()
        if prop.get("deprecated")
    }
    assert {key for _, key in deprecated} == set(OLD_KEYS.values())
    for name, key in deprecated:
        assert "items" in components[name]["properties"], (name, key)
