"""Ingest and delete with the `mongo` store (mongomock here): the body-first write order."""

from __future__ import annotations

import json

import mongomock
import pytest
from django.test import override_settings

from sessions_api.storage import get_document_store


@pytest.fixture
def mongo_store():
    options = {"url": "mongodb://127.0.0.1:1", "database": "t", "client": mongomock.MongoClient()}
    backend = {"BACKEND": "sessions_api.storage.mongo.MongoDocumentStore", "OPTIONS": options}
    with override_settings(DOCUMENT_STORE=backend):
        yield get_document_store()


def _doc(text: str) -> bytes:
    body = {"id": "m-1", "messages": [{"role": "user", "content": text}], "$where": {"a.b": 1}}
    return json.dumps(body).encode()


def test_operator_keys_round_trip_byte_for_byte(api, mongo_store):
    body = _doc("hello")
    created = api.post("/sessions", body)
    assert created.status_code == 201, created.content
    raw = api.get(f"/sessions/{created.json()['id']}/raw")
    assert raw.content == body


def test_an_orphan_body_left_by_a_rolled_back_write_is_replaced(api, mongo_store):
    first = api.post("/sessions", _doc("one")).json()
    # A crash after the body write but before the index commit leaves version 2 behind.
    mongo_store.put(session_id=first["id"], version=2, body=b'{"orphan": true}')

    second = api.post("/sessions", _doc("two"))

    assert second.status_code == 200, second.content
    assert second.json()["version"] == 2
    assert api.get(f"/sessions/{first['id']}/raw").content == _doc("two")


def test_delete_removes_bodies_only_after_the_index_commits(
    api, mongo_store, django_capture_on_commit_callbacks
):
    session_id = api.post("/sessions", _doc("one")).json()["id"]
    api.post("/sessions", _doc("two"))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert api.delete(f"/sessions/{session_id}").status_code == 204
    assert mongo_store.list_versions(session_id=session_id) == [1, 2]

    for callback in callbacks:
        callback()
    assert mongo_store.list_versions(session_id=session_id) == []
