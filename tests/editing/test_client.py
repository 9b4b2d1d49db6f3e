"""The Python client (clients/python) against a live server: load, append, save with If-Match,
a clear PreconditionFailed on a stale save, update() that reloads and retries; and the example
agent loop end to end."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from sessions_api.access import keys
from sessions_api.editing import selectors as editing_selectors
from sessions_api.ingest import services
from sessions_api.models import AuditEntry, Session
from tests.editing.conftest import openai_chat_body, picoflow_body

CLIENTS = str(Path(__file__).resolve().parents[2] / "clients" / "python")


@pytest.fixture
def client_module():
    sys.path.insert(0, CLIENTS)
    try:
        yield importlib.import_module("session_observatory_client")
    finally:
        sys.path.remove(CLIENTS)


@pytest.fixture
def client(client_module, live_server, transactional_db):
    key = keys.create_api_key(name="agent", scopes=["ingest", "read", "write"]).key
    return client_module.SessionObservatoryClient(live_server.url, key)


def test_load_append_save_and_conflict(client, client_module):
    session_id = services.ingest_document(body=openai_chat_body("client-1")).id
    loaded = client.load(session_id)
    assert loaded.version == 1 and loaded.etag == '"1"'
    assert loaded.body == openai_chat_body("client-1")
    assert loaded.document["variables"] == {"plan": "basic"}

    saved = client.append(
        session_id,
        etag=loaded.etag,
        messages=[{"role": "user", "content": "next"}],
        state={"plan": "pro"},
        reason="agent turn",
    )
    assert (saved.version, saved.etag, saved.changed) == (2, '"2"', True)

    # A save from the old version is refused, with what changed since.
    document = loaded.document
    document["messages"].append({"role": "user", "content": "stale"})
    with pytest.raises(client_module.PreconditionFailed) as conflict:
        client.save(session_id, document, etag=loaded.etag, reason="stale save")
    assert conflict.value.status == 412
    assert conflict.value.current_version == 2 and conflict.value.current_etag == '"2"'
    assert {op["path"] for op in conflict.value.diff} == {"/variables/plan", "/messages/3"}

    fresh = client.load(session_id)
    fresh.document["messages"].append({"role": "assistant", "content": "done"})
    result = client.save(session_id, fresh.document, etag=fresh.etag, reason="full save")
    assert result.version == 3
    assert [e["action"] for e in client.audit(session_id)] == ["edit_document", "patch"]

    with pytest.raises(client_module.ApiError) as missing:
        client.load("00000000-0000-0000-0000-000000000000")
    assert missing.value.status == 404 and missing.value.code == "not_found"


def test_update_reloads_and_retries_on_conflict(client, client_module):
    session_id = services.ingest_document(body=openai_chat_body("client-2")).id
    calls = []

    def change(session):
        calls.append(session.version)
        if len(calls) == 1:
            # Someone saves between our load and our save.
            client.append(session_id, etag=session.etag, state={"other": 1}, reason="other writer")
        return client_module.Patch(messages=[{"role": "user", "content": "mine"}])

    result = client.update(session_id, change, reason="retrying writer")
    assert calls == [1, 2]
    assert result.version == 3
    document = client.load(session_id).document
    assert document["variables"]["other"] == 1
    assert document["messages"][-1] == {"role": "user", "content": "mine"}


def test_checkpoint_restore_branch(client):
    session_id = services.ingest_document(body=picoflow_body("client-3")).id
    assert client.checkpoint(session_id, "start")["version"] == 1
    loaded = client.load(session_id)
    client.append(session_id, etag=loaded.etag, state={"x": 1}, reason="change")
    restored = client.restore(session_id, etag='"2"', checkpoint="start", reason="back")
    assert restored.version == 3
    branch = client.branch(session_id, reason="explore", version=1)
    assert branch["external_id"] == "client-3~branch-1"
    assert client.session(branch["id"])["external_id"] == "client-3~branch-1"


@pytest.mark.parametrize("kind", ["picoflow", "openai_chat"])
def test_example_agent_loop_runs_end_to_end(kind, live_server, transactional_db, capsys):
    key = keys.create_api_key(name="example-agent", scopes=["ingest", "read", "write"]).key
    sys.path.insert(0, CLIENTS)
    try:
        example = importlib.import_module("example_agent_loop")
        code = example.main(
            [
                "--base-url",
                live_server.url,
                "--api-key",
                key,
                "--create",
                kind,
                "--turns",
                "3",
                "--simulate-conflict",
            ]
        )
    finally:
        sys.path.remove(CLIENTS)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "412" in out and "reloading and re-applying" in out
    session = Session.objects.get(external_id__startswith="example-agent-")
    # 1 ingest + 1 simulated other writer + 3 turns + the final PUT
    assert session.latest_version == 6
    assert session.message_count >= 6
    actions = list(
        AuditEntry.objects.filter(session=session).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["patch", "patch", "patch", "patch", "edit_document"]
    assert all(
        e.actor_label.startswith("key:example-agent (")
        for e in AuditEntry.objects.filter(session=session)
    )
    document = json.loads(editing_selectors.get_latest_document(session_id=str(session.id)).body)
    if kind == "picoflow":
        assert session.status == "completed"
        turns = document["flow"]["steps"][0]["state"]["turns"]
    else:
        assert document["variables"]["finished"] is True
        turns = document["variables"]["turns"]
    assert turns == 3  # each turn re-read the state it built on: none lost to the conflict
