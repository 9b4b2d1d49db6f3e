"""The agent session API: GET/PUT/PATCH /sessions/{id}/document with ETag and If-Match, the
audit endpoint, checkpoints, restore and branch. Errors in the house shape."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from sessions_api.models import AuditEntry, DocumentVersion
from tests.editing.conftest import openai_chat_body

pytestmark = pytest.mark.django_db


def put(api, path: str, body: bytes, **headers: str):
    return api.client.put(
        "/api/v1" + path,
        data=body,
        content_type="application/json",
        headers=api._headers(headers),
    )


def patch(api, path: str, body, **headers: str):
    return api.client.patch(
        "/api/v1" + path,
        data=json.dumps(body),
        content_type="application/json",
        headers=api._headers(headers),
    )


REASON = {"X-Change-Reason": "test save"}


def test_get_document_returns_the_latest_body_with_its_version_as_etag(api, chat_session):
    response = api.get(f"/sessions/{chat_session}/document")
    assert response.status_code == 200
    assert response.content == openai_chat_body()
    assert response["ETag"] == '"1"'
    assert response["Content-Type"] == "application/json"
    again = api.get(f"/sessions/{chat_session}/document", headers={"If-None-Match": '"1"'})
    assert again.status_code == 304 and again["ETag"] == '"1"'
    missing = api.get("/sessions/00000000-0000-0000-0000-000000000000/document")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_put_with_the_current_etag_stores_a_new_version(api, chat_session):
    doc = json.loads(openai_chat_body())
    doc["messages"].append({"role": "user", "content": "thanks"})
    body = json.dumps(doc).encode()
    response = put(api, f"/sessions/{chat_session}/document", body, **{"If-Match": '"1"'}, **REASON)
    assert response.status_code == 200, response.json()
    answer = response.json()
    assert answer["version"] == 2 and answer["changed"] is True and answer["etag"] == '"2"'
    assert response["ETag"] == '"2"'
    stored = api.get(f"/sessions/{chat_session}/document")
    assert stored.content == body and stored["ETag"] == '"2"'
    entry = AuditEntry.objects.get(id=answer["audit_id"])
    assert entry.action == "edit_document" and entry.actor_label.startswith("key:test (")
    assert entry.reason == "test save"
    assert entry.diff == [
        {"op": "add", "path": "/messages/3", "value": {"role": "user", "content": "thanks"}}
    ]


def test_put_without_if_match_is_428_and_stale_is_412_with_the_current_etag(api, chat_session):
    body = openai_chat_body().replace(b"Hello!", b"Hi there!")
    missing = put(api, f"/sessions/{chat_session}/document", body, **REASON)
    assert missing.status_code == 428
    assert missing.json()["code"] == "precondition_required"
    assert (
        put(
            api, f"/sessions/{chat_session}/document", body, **{"If-Match": '"1"'}, **REASON
        ).status_code
        == 200
    )
    stale = put(
        api,
        f"/sessions/{chat_session}/document",
        body.replace(b"Hi there!", b"Yo"),
        **{"If-Match": '"1"'},
        **REASON,
    )
    assert stale.status_code == 412
    error = stale.json()
    assert error["code"] == "precondition_failed" and error["path"] == "If-Match"
    assert error["details"]["current_etag"] == '"2"'
    assert error["details"]["current_version"] == 2
    assert error["details"]["diff"] == [
        {
            "op": "replace",
            "path": "/messages/2/content",
            "value": "Hi there!",
            "old": "Hello!",
        }
    ]
    assert stale["ETag"] == '"2"'
    assert DocumentVersion.objects.filter(session_id=chat_session).count() == 2
    for bad in ("*", '"1", "2"', "abc"):
        response = put(
            api, f"/sessions/{chat_session}/document", body, **{"If-Match": bad}, **REASON
        )
        assert response.status_code in (400, 428), (bad, response.status_code)
        assert set(response.json()) >= {"code", "message"}


def test_if_match_star_names_no_version_so_the_precondition_is_still_required(api, chat_session):
    body = openai_chat_body().replace(b"Hello!", b"Hey")
    response = put(api, f"/sessions/{chat_session}/document", body, **{"If-Match": "*"}, **REASON)
    assert response.status_code == 428
    assert response.json()["code"] == "precondition_required"


def test_weak_and_bare_etags_are_accepted(api, chat_session):
    body = openai_chat_body().replace(b"Hello!", b"Hey")
    response = put(
        api, f"/sessions/{chat_session}/document", body, **{"If-Match": 'W/"1"'}, **REASON
    )
    assert response.status_code == 200
    body = body.replace(b"Hey", b"Hey!")
    assert (
        put(
            api, f"/sessions/{chat_session}/document", body, **{"If-Match": "2"}, **REASON
        ).status_code
        == 200
    )


def test_put_needs_a_reason_and_a_valid_document(api, chat_session):
    body = openai_chat_body().replace(b"Hello!", b"Hey")
    no_reason = put(api, f"/sessions/{chat_session}/document", body, **{"If-Match": '"1"'})
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "reason_required"
    encoded = put(
        api,
        f"/sessions/{chat_session}/document",
        body,
        **{"If-Match": '"1"', "X-Change-Reason": quote("corrigé: ünïcode")},
    )
    assert encoded.status_code == 200
    assert AuditEntry.objects.get().reason == "corrigé: ünïcode"
    renamed = put(
        api,
        f"/sessions/{chat_session}/document",
        openai_chat_body("someone-else"),
        **{"If-Match": '"2"'},
        **REASON,
    )
    assert renamed.status_code == 422 and renamed.json()["code"] == "external_id_conflict"
    broken = put(
        api,
        f"/sessions/{chat_session}/document",
        b'{"messages": [',
        **{"If-Match": '"2"'},
        **REASON,
    )
    assert broken.status_code == 400
    wrong_shape = put(
        api,
        f"/sessions/{chat_session}/document",
        b'{"messages": 3}',
        **{"If-Match": '"2"'},
        **REASON,
    )
    assert wrong_shape.status_code == 422 and wrong_shape.json()["path"]
    assert DocumentVersion.objects.filter(session_id=chat_session).count() == 2


def test_patch_appends_a_turn_and_merges_state(api, chat_session):
    response = patch(
        api,
        f"/sessions/{chat_session}/document",
        {
            "messages": [
                {"role": "user", "content": "more"},
                {"role": "assistant", "content": "ok"},
            ],
            "state": {"plan": "pro", "turns": 2},
            "reason": "agent turn 2",
        },
        **{"If-Match": '"1"'},
    )
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 2 and response["ETag"] == '"2"'
    doc = json.loads(api.get(f"/sessions/{chat_session}/document").content)
    assert doc["messages"][-2:] == [
        {"role": "user", "content": "more"},
        {"role": "assistant", "content": "ok"},
    ]
    assert doc["variables"] == {"plan": "pro", "turns": 2}
    entry = AuditEntry.objects.get()
    assert entry.action == "patch" and entry.reason == "agent turn 2"
    assert entry.details == {"appended_messages": 2, "merged_state": True}


def test_patch_picoflow_and_langchain(api, picoflow_session, ingest):
    stamp = "2030-01-01T00:00:00.000Z"
    response = patch(
        api,
        f"/sessions/{picoflow_session}/document",
        {
            "messages": [{"type": "human", "content": "hi", "id": f"Book|{stamp}|1111111111"}],
            "state": {"confirmed": True},
            "status": "completed",
        },
        **{"If-Match": '"1"'},
        **REASON,
    )
    assert response.status_code == 200, response.json()
    detail = api.get(f"/sessions/{picoflow_session}").json()
    assert detail["summary"]["status"] == "completed"
    book = next(s for s in detail["steps"] if s["name"] == "Book")
    assert book["state"]["confirmed"] is True

    from tests.editing.conftest import langchain_body

    lc = ingest(langchain_body())
    response = patch(
        api,
        f"/sessions/{lc}/document",
        {"messages": [{"type": "human", "content": "next", "id": "m-next"}], "state": {"k": 1}},
        **{"If-Match": '"1"'},
        **REASON,
    )
    assert response.status_code == 200, response.json()
    detail = api.get(f"/sessions/{lc}").json()
    assert detail["state"]["k"] == 1


def test_patch_errors_have_paths(api, chat_session, ingest):
    url = f"/sessions/{chat_session}/document"
    cases = [
        ({"messages": "no"}, "/messages"),
        ({"state": [1]}, "/state"),
        ({"status": "flying"}, "/status"),
        ({"bogus": 1}, "/bogus"),
        ({}, ""),
        ({"status": "completed"}, "/status"),  # openai_chat has no status field
        ({"messages": [{"role": 5}]}, None),
    ]
    for body, path in cases:
        response = patch(api, url, body, **{"If-Match": '"1"'}, **REASON)
        assert response.status_code == 422, (body, response.json())
        if path is not None:
            assert response.json().get("path", "") == path, (body, response.json())
    no_if_match = patch(api, url, {"messages": [{"role": "user", "content": "x"}]}, **REASON)
    assert no_if_match.status_code == 428
    from tests.editing.conftest import fixture_bytes

    anthropic = ingest(fixture_bytes("anthropic/messages_transcript.json"))
    refused = patch(
        api, f"/sessions/{anthropic}/document", {"state": {"a": 1}}, **{"If-Match": '"1"'}, **REASON
    )
    assert refused.status_code == 422 and "no state" in refused.json()["message"]
    assert DocumentVersion.objects.filter(session_id=chat_session).count() == 1


def test_audit_endpoint(api, chat_session):
    patch(
        api,
        f"/sessions/{chat_session}/document",
        {"state": {"a": 1}},
        **{"If-Match": '"1"'},
        **REASON,
    )
    patch(
        api,
        f"/sessions/{chat_session}/document",
        {"state": {"a": 2}},
        **{"If-Match": '"2"'},
        **REASON,
    )
    response = api.get(f"/sessions/{chat_session}/audit", limit=1)
    assert response.status_code == 200
    page = response.json()
    assert page["session_id"] == chat_session
    assert [e["to_version"] for e in page["items"]] == [3]
    assert page["items"][0]["diff"] == [
        {"op": "replace", "path": "/variables/a", "value": 2, "old": 1}
    ]
    rest = api.get(f"/sessions/{chat_session}/audit", cursor=page["next_cursor"]).json()
    assert [e["to_version"] for e in rest["items"]] == [2] and rest["next_cursor"] is None
    assert api.get(f"/sessions/{chat_session}/audit", action="nope").status_code == 400
    assert api.get(f"/sessions/{chat_session}/audit", cursor="x").status_code == 400


def test_checkpoint_restore_branch_over_rest(api, chat_session):
    created = api.post(f"/sessions/{chat_session}/checkpoints", {"name": "v1-good", "note": "ok"})
    assert created.status_code == 201, created.json()
    assert created.json()["version"] == 1
    duplicate = api.post(f"/sessions/{chat_session}/checkpoints", {"name": "v1-good"})
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "checkpoint_exists"
    assert api.post(f"/sessions/{chat_session}/checkpoints", {"name": ""}).status_code == 422
    listed = api.get(f"/sessions/{chat_session}/checkpoints").json()
    assert [c["name"] for c in listed["checkpoints"]] == ["v1-good"]

    patch(
        api,
        f"/sessions/{chat_session}/document",
        {"state": {"plan": "x"}},
        **{"If-Match": '"1"'},
        **REASON,
    )
    no_precondition = api.post(
        f"/sessions/{chat_session}/restore", {"checkpoint": "v1-good", "reason": "undo"}
    )
    assert no_precondition.status_code == 428
    stale = api.post(
        f"/sessions/{chat_session}/restore",
        {"checkpoint": "v1-good", "reason": "undo"},
        headers={"If-Match": '"1"'},
    )
    assert stale.status_code == 412
    restored = api.post(
        f"/sessions/{chat_session}/restore",
        {"checkpoint": "v1-good", "reason": "undo"},
        headers={"If-Match": '"2"'},
    )
    assert restored.status_code == 200, restored.json()
    assert restored.json()["version"] == 3 and restored["ETag"] == '"3"'
    assert api.get(f"/sessions/{chat_session}/document").content == openai_chat_body()
    reverted = api.post(
        f"/sessions/{chat_session}/restore",
        {"version": 2, "reason": "redo", "expected_version": 3},
    )
    assert reverted.status_code == 200 and reverted.json()["version"] == 4
    both = api.post(
        f"/sessions/{chat_session}/restore",
        {"version": 2, "checkpoint": "v1-good", "reason": "r"},
        headers={"If-Match": '"4"'},
    )
    assert both.status_code == 422

    branch = api.post(f"/sessions/{chat_session}/branch", {"version": 1, "reason": "experiment"})
    assert branch.status_code == 201, branch.json()
    child = branch.json()
    assert child["external_id"] == "chat-edit-me~branch-1" and child["parent_id"] == chat_session
    assert child["branched_from_version"] == 1
    assert api.get(f"/sessions/{child['id']}").json()["external_id"] == "chat-edit-me~branch-1"
    no_reason = api.post(f"/sessions/{chat_session}/branch", {"version": 1})
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "reason_required"
    taken = api.post(
        f"/sessions/{chat_session}/branch", {"id": "chat-edit-me~branch-1", "reason": "r"}
    )
    assert taken.status_code == 409


def test_openapi_lists_the_editing_operations(api):
    paths = api.client.get("/api/v1/openapi.json").json()["paths"]
    document = paths["/api/v1/sessions/{session_id}/document"]
    assert {"get", "put", "patch"} <= set(document)
    for path in ("audit", "checkpoints", "restore", "branch"):
        assert f"/api/v1/sessions/{{session_id}}/{path}" in paths


def test_hostile_inputs_are_4xx_never_5xx(api, chat_session, editor_client):
    huge = 10**20
    url = f"/sessions/{chat_session}"
    answers = [
        api.post(f"{url}/restore", {"version": huge, "reason": "r"}, headers={"If-Match": '"1"'}),
        api.post(f"{url}/checkpoints", {"name": "x", "version": huge}),
        api.post(f"{url}/branch", {"version": huge, "reason": "r"}),
        api.post(f"{url}/branch", {"id": "a\x00b", "reason": "r"}),
        api.post(f"{url}/checkpoints", {"name": "a\x00b"}),
        put(api, f"{url}/document", b"{}", **{"If-Match": '"999999999999"'}, **REASON),
        patch(api, f"{url}/document", {"state": {"a": 1}, "step": "x\x00"}, **{"If-Match": '"1"'}),
        patch(api, f"{url}/document", [1, 2], **{"If-Match": '"1"'}, **REASON),
        api.get(f"{url}/audit", actor="a\x00", action="note"),
        api.get(f"{url}/audit", since="not-a-date"),
        api.get("/sessions/not-a-uuid/document"),
        put(api, "/sessions/not-a-uuid/document", b"{}", **{"If-Match": '"1"'}, **REASON),
    ]
    for response in answers:
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:200])
        assert set(response.json()) >= {"code", "message"}
    pages = [
        editor_client.post(
            f"{url}/revert/", {"version": str(huge), "reason": "r", "expected_version": "1"}
        ),
        editor_client.post(
            f"{url}/edit/save/",
            {"part": "x\x00", "value": "{}", "reason": "r", "expected_version": str(huge)},
        ),
        editor_client.get("/audit/", {"session": "a\x00", "actor": "b\x00"}),
    ]
    for response in pages:
        assert response.status_code < 500, response.status_code
    assert DocumentVersion.objects.filter(session_id=chat_session).count() == 1
