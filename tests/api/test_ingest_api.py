"""POST /sessions, POST /sessions/batch and DELETE /sessions/{id} through the real HTTP API."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import override_settings

from sessions_api.models import (
    DocumentBody,
    DocumentVersion,
    ModelUsage,
    Session,
    SessionError,
    ToolCallRecord,
)

pytestmark = pytest.mark.django_db

SUMMARY_KEYS = {
    "status",
    "message_count",
    "tool_call_count",
    "tool_error_count",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "agent",
    "user",
    "models",
    "started_at",
    "updated_at",
    "expires_at",
}
INGEST_KEYS = {
    "id",
    "external_id",
    "format",
    "version",
    "created",
    "changed",
    "summary",
    "warnings",
}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def post(api, body: bytes, status: int, **params: Any) -> dict[str, Any]:
    response = api.post("/sessions", body, **params)
    assert response.status_code == status, response.content[:600]
    return response.json()


def raw(api, session_id: str, **params: Any) -> bytes:
    response = api.get(f"/sessions/{session_id}/raw", **params)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/json"
    return response.content


def versions(api, session_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/sessions/{session_id}/versions")
    assert response.status_code == 200
    return response.json()["versions"]


# --- one document -------------------------------------------------------------------------


def test_seed_document_is_201_with_the_summary(api, seed_document):
    answer = post(api, seed_document, 201)
    assert set(answer) >= INGEST_KEYS
    assert answer["external_id"] == "6917ad4ac3d31db001ec2393"
    assert answer["format"] == "picoflow"
    assert (answer["version"], answer["created"], answer["changed"]) == (1, True, True)
    assert answer["detected_by"].startswith("rule 1: Picoflow")
    summary = answer["summary"]
    assert set(summary) == SUMMARY_KEYS
    assert summary["status"] == "completed"
    assert summary["message_count"] == 12
    assert summary["tool_call_count"] == 2
    assert summary["tool_error_count"] == 1
    assert (summary["input_tokens"], summary["output_tokens"], summary["total_tokens"]) == (
        451,
        47,
        617,
    )
    assert summary["models"] == ["gemini-2.0-flash", "gemini-2.5-flash"]
    assert summary["agent"] == "TutorialFlow"
    assert when(summary["started_at"]) == when("2025-11-14T22:29:30.648Z")
    assert when(summary["updated_at"]) == when("2025-11-14T22:29:45.799Z")
    assert when(summary["expires_at"]) == when("2025-11-14T22:29:45.799Z") + timedelta(
        seconds=50_000
    )
    assert answer["warnings"] == []

    # The list and the detail view say the same.
    detail = api.get(f"/sessions/{answer['id']}").json()
    assert detail["summary"] == summary
    listed = api.get("/sessions").json()["items"]
    assert [item["id"] for item in listed] == [answer["id"]]
    assert listed[0]["summary"] == summary
    assert raw(api, answer["id"]) == seed_document


def test_same_bytes_again_is_200_unchanged(api, seed_document):
    first = post(api, seed_document, 201)
    for _ in range(3):
        again = post(api, seed_document, 200)
        assert (again["id"], again["version"], again["created"], again["changed"]) == (
            first["id"],
            1,
            False,
            False,
        )
        assert again["summary"] == first["summary"]
    assert len(versions(api, first["id"])) == 1
    assert (Session.objects.count(), DocumentVersion.objects.count()) == (1, 1)
    assert DocumentBody.objects.count() == 1


def test_changed_bytes_make_version_2_and_keep_version_1(api, seed_document):
    first = post(api, seed_document, 201)
    changed = seed_document.replace(b'"runStatus": "completed"', b'"runStatus": "aborted"', 1)
    assert changed != seed_document
    second = post(api, changed, 200)
    assert (second["id"], second["version"], second["created"], second["changed"]) == (
        first["id"],
        2,
        False,
        True,
    )
    assert second["summary"]["status"] == "aborted"
    assert raw(api, first["id"], version=1) == seed_document
    assert raw(api, first["id"], version=2) == changed
    assert raw(api, first["id"]) == changed
    listed = versions(api, first["id"])
    assert [v["number"] for v in listed] == [1, 2]
    assert [v["size_bytes"] for v in listed] == [len(seed_document), len(changed)]
    assert [v["sha256"] for v in listed] == [
        hashlib.sha256(seed_document).hexdigest(),
        hashlib.sha256(changed).hexdigest(),
    ]
    assert all(v["source"] == "api" for v in listed)
    assert when(listed[0]["received_at"]) <= when(listed[1]["received_at"])
    # The first version's bytes again are a change from the latest: a third version.
    third = post(api, seed_document, 200)
    assert (third["version"], third["changed"]) == (3, True)
    # The detail view follows the latest version.
    assert api.get(f"/sessions/{first['id']}").json()["version"] == 3


def test_whitespace_only_change_is_a_new_version(api, seed_document):
    first = post(api, seed_document, 201)
    second = post(api, seed_document + b"\n", 200)
    assert (second["id"], second["version"]) == (first["id"], 2)
    assert raw(api, first["id"]) == seed_document + b"\n"


def test_unknown_raw_version_is_404(api, seed_document):
    first = post(api, seed_document, 201)
    response = api.get(f"/sessions/{first['id']}/raw", version=2)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["path"] == "version"


# --- revisions ----------------------------------------------------------------------------


def v15(revision: int, text: str = "Lisbon in June", **extra: Any) -> bytes:
    doc = {
        "id": "5b0c7f0e-3d1a-4f7e-9a57-1f1d2b0c9e11",
        "revision": revision,
        "version": 1.5,
        "runStatus": "running",
        "createdOn": "2026-05-02T09:00:00.000Z",
        "saveOn": "2026-05-02T09:03:10.500Z",
        "flow": {
            "name": "TripFlow",
            "model": {"provider": "openai", "name": "gpt-4.1-mini"},
            "memory": {
                "planner": {
                    "messages": [
                        {
                            "type": "human",
                            "content": text,
                            "id": "PlanStep|2026-05-02T09:00:05.000Z|3000000002",
                            "timestamp": "2026-05-02T09:00:05.000Z",
                        }
                    ]
                }
            },
            "steps": [{"name": "PlanStep", "state": {"city": "Lisbon"}}],
            "currentStep": "PlanStep",
            "sequence": [{"level": 1, "stepName": "PlanStep"}],
        },
        "tokens": {"inputTokens": 10, "outputTokens": 2, "totalTokens": 12},
        "log": [],
        "error": [],
        "warn": [],
        **extra,
    }
    return json.dumps(doc).encode()


def test_same_revision_with_other_content_is_409_and_nothing_changes(api):
    original = v15(7)
    first = post(api, original, 201)
    assert first["summary"]["status"] == "running"
    before = (Session.objects.get().last_received_at, DocumentBody.objects.count())

    response = api.post("/sessions", v15(7, text="Porto in July"))
    assert response.status_code == 409
    error = response.json()
    assert error["code"] == "revision_conflict"
    assert error["path"] == "/revision"
    assert "revision 7" in error["message"]
    assert error["details"]["revision"] == 7
    assert error["details"]["stored_version"] == 1
    assert error["details"]["stored_sha256"] == hashlib.sha256(original).hexdigest()

    assert [v["number"] for v in versions(api, first["id"])] == [1]
    assert raw(api, first["id"]) == original
    assert (Session.objects.get().last_received_at, DocumentBody.objects.count()) == before
    assert api.get(f"/sessions/{first['id']}").json()["revision"] == 7

    # The same revision with the same bytes is the idempotent retry, and the next revision is
    # a new version.
    assert post(api, original, 200)["changed"] is False
    nxt = post(api, v15(8, text="Porto in July"), 200)
    assert (nxt["version"], nxt["changed"]) == (2, True)
    assert api.get(f"/sessions/{first['id']}").json()["revision"] == 8


def test_revision_conflict_in_a_batch_fails_that_item_only(api):
    post(api, v15(3), 201)
    body = b'{"documents": [' + v15(3, text="other") + b"," + v15(4, text="next") + b"]}"
    response = api.post("/sessions/batch", body)
    assert response.status_code == 200
    first, second = response.json()["results"]
    assert first["ok"] is False and first["error"]["code"] == "revision_conflict"
    assert second["ok"] is True and second["version"] == 2


# --- documents without an id --------------------------------------------------------------

# An id-less Chat Completions transcript. The tool call keeps it out of detection rule 7 (Agents
# SDK items: bare {role, content} lists without tool_calls), so rule 16 (openai_chat) detects it.
TRANSCRIPT = [
    {"role": "user", "content": "2 + 2?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_add",
                "type": "function",
                "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_add", "content": "4"},
]


def transcript(*extra: dict[str, Any]) -> bytes:
    return json.dumps([*TRANSCRIPT, *extra]).encode()


def test_external_id_names_an_id_less_transcript(api):
    first = post(api, transcript(), 201, external_id="conv-42")
    assert first["format"] == "openai_chat"
    assert first["external_id"] == "conv-42"
    assert "derived_session_id" not in {w["code"] for w in first["warnings"]}
    assert first["summary"]["message_count"] == 3
    assert first["summary"]["tool_call_count"] == 1
    # The conversation grows: the same session, a new version.
    longer = transcript({"role": "user", "content": "and 3 + 3?"})
    second = post(api, longer, 200, external_id="conv-42")
    assert (second["id"], second["version"], second["changed"]) == (first["id"], 2, True)
    assert second["summary"]["message_count"] == 4
    assert raw(api, first["id"], version=1) == transcript()


def test_without_external_id_the_id_is_derived_from_the_content(api):
    body = transcript()
    first = post(api, body, 201)
    assert first["format"] == "openai_chat"
    expected = "sha256:" + hashlib.sha256(body).hexdigest()[:32]
    assert first["external_id"] == expected
    assert "derived_session_id" in {w["code"] for w in first["warnings"]}
    # Stable: the same bytes again are the same session, not a duplicate.
    again = post(api, body, 200)
    assert (again["id"], again["changed"]) == (first["id"], False)
    # Other bytes are another session, which is what the warning is about.
    other = post(api, transcript({"role": "user", "content": "more"}), 201)
    assert other["id"] != first["id"]


@pytest.mark.parametrize(
    "external_id", ["", "   ", "x" * 513, "tab\there", "new\nline", "nul\x00"], ids=repr
)
def test_invalid_external_id_is_422(reject, external_id):
    reject(transcript(), 422, "invalid_external_id", path="?external_id", external_id=external_id)


def test_external_id_contradicting_the_document_id_is_422(reject, seed_document):
    reject(seed_document, 422, "external_id_conflict", external_id="someone-else")


def test_external_id_equal_to_the_document_id_is_fine(api, seed_document):
    answer = post(api, seed_document, 201, external_id="6917ad4ac3d31db001ec2393")
    assert answer["external_id"] == "6917ad4ac3d31db001ec2393"


# --- batch --------------------------------------------------------------------------------


def _batch(api, body: bytes, status: int = 200) -> list[dict[str, Any]]:
    response = api.post("/sessions/batch", body)
    assert response.status_code == status, response.content[:600]
    return response.json()["results"]


def test_batch_mixed_items_store_the_good_ones_byte_for_byte(api, seed_document):
    # Odd spacing, unsorted keys, unescaped non-ASCII and a tab: all of it must survive.
    good_a = (
        '{ "role_play": false,\n\t"messages": [ {"role":"user","content":"Olá — ünïcode"} ],'
        '"session_id":"batch-a" }'
    )
    good_b = '[{"content": "hi", "role": "user"}   ,{"role":"assistant","content":"yo"}]'
    bad_types = (
        '{"id": ["x"], "runStatus": "completed", "flows": [], "log": [], "error": [], "warn": []}'
    )
    bad_nan = '{"messages": [{"role": "user", "content": "n"}], "session_id": "nan", "n": NaN}'
    unknown = '{"hello": "world"}'
    body = (
        '{\n  "documents": [\n    '
        + ",\n    ".join(
            [good_a, seed_document.decode(), bad_types, good_b, bad_nan, unknown, "42"]
        )
        + "\n  ]\n}"
    ).encode()
    results = _batch(api, body)
    assert [r["index"] for r in results] == list(range(7))
    assert [r["ok"] for r in results] == [True, True, False, True, False, False, False]
    errors = {r["index"]: r["error"] for r in results if not r["ok"]}
    assert errors[2]["code"] == "wrong_type" and errors[2]["path"] == "/id"
    assert errors[4]["code"] == "non_finite_number"
    assert errors[5]["code"] == "unknown_format"
    assert errors[6]["code"] == "not_a_document"
    assert all(e["message"] for e in errors.values())
    for result, text in zip(
        [results[0], results[1], results[3]], [good_a, seed_document.decode(), good_b], strict=True
    ):
        assert set(result) >= {"index", "ok", "id", "version", "created"}
        assert (result["version"], result["created"]) == (1, True)
        assert raw(api, result["id"]) == text.encode("utf-8")
        assert DocumentVersion.objects.get(session_id=result["id"]).source == "batch"
    assert Session.objects.count() == 3


def test_batch_repeated_item_is_idempotent(api, seed_document):
    body = b'{"documents": [' + seed_document + b", " + seed_document + b"]}"
    first, second = _batch(api, body)
    assert (first["ok"], first["created"]) == (True, True)
    assert (second["ok"], second["created"], second["changed"]) == (True, False, False)
    assert first["id"] == second["id"]
    assert DocumentVersion.objects.count() == 1


def test_batch_item_over_the_single_cap_fails_alone(api, seed_document):
    small = transcript()
    body = b'{"documents": [' + small + b"," + seed_document + b"]}"
    with override_settings(INGEST_MAX_DOCUMENT_BYTES=len(small)):
        results = _batch(api, body)
    assert results[0]["ok"] is True
    assert results[1]["ok"] is False and results[1]["error"]["code"] == "too_large"


def test_batch_extra_envelope_keys_are_ignored(api):
    results = _batch(api, b'{"note": {"a": [1, 2]}, "documents": [' + transcript() + b"]}")
    assert [r["ok"] for r in results] == [True]


def test_empty_batch_is_200_with_no_results(api):
    assert _batch(api, b'{"documents": []}') == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"documents": [',
        b'{"documents": [{"a": 1}',
        b'{"documents": [1, 2,]}',
        b'[{"documents": []}]',
        b'"documents"',
        b'{"documents": []} trailing',
        b'{"documents": [], "documents": []}',
        b"{documents: []}",
        b'{"documents": [{"a": "unterminated]}',
    ],
    ids=[
        "truncated",
        "unclosed",
        "trailing-comma",
        "top-level-array",
        "scalar",
        "trailing-data",
        "duplicate-documents",
        "unquoted-key",
        "unterminated-string",
    ],
)
def test_malformed_batch_envelope_is_400(reject, body):
    error = reject(body, 400, _envelope_code(body), endpoint="/sessions/batch")
    assert error["message"]


def _envelope_code(body: bytes) -> str:
    return "duplicate_key" if body.count(b'"documents"') == 2 else "invalid_json"


@pytest.mark.parametrize("body", [b"", b"  \n"], ids=["zero", "blank"])
def test_empty_batch_body_is_400(reject, body):
    reject(body, 400, "empty_document", endpoint="/sessions/batch")


def test_batch_invalid_utf8_is_400(reject):
    reject(b'{"documents": ["\xff"]}', 400, "invalid_utf8", endpoint="/sessions/batch")


def test_batch_without_documents_is_422(reject):
    reject(b'{"docs": []}', 422, "missing_documents", path="/documents", endpoint="/sessions/batch")
    reject(b"{}", 422, "missing_documents", path="/documents", endpoint="/sessions/batch")


def test_batch_documents_not_an_array_is_422(reject):
    reject(
        b'{"documents": {"0": {}}}',
        422,
        "wrong_type",
        path="/documents",
        endpoint="/sessions/batch",
    )


def test_batch_over_the_item_cap_is_413(api, reject):
    items = [json.dumps([{"role": "user", "content": f"m{n}"}]).encode() for n in range(4)]
    body = b'{"documents": [' + b",".join(items) + b"]}"
    with override_settings(INGEST_MAX_BATCH_ITEMS=3):
        error = reject(body, 413, "too_many_documents", endpoint="/sessions/batch")
        assert "more than 3 documents" in error["message"]  # refused before walking the rest
        body_at_cap = b'{"documents": [' + b",".join(items[:3]) + b"]}"
        assert [r["ok"] for r in _batch(api, body_at_cap)] == [True, True, True]


def test_batch_format_override_applies_to_every_item(api):
    doc = {"id": "forced", "messages": [{"role": "user", "content": "hi"}], "flows": []}
    body = b'{"documents": [' + json.dumps(doc).encode() + b"]}"
    response = api.post("/sessions/batch", body, format="picoflow")
    (result,) = response.json()["results"]
    assert result["ok"] is True
    assert Session.objects.get(id=result["id"]).format == "picoflow"
    assert api.post("/sessions/batch", body, format="nope").status_code == 422


# --- delete -------------------------------------------------------------------------------


def test_delete_removes_everything_and_then_404s_everywhere(api, seed_document):
    answer = post(api, seed_document, 201)
    post(api, seed_document.replace(b"Jane Smith", b"Jane Roe", 1), 200)
    session_id = answer["id"]
    assert DocumentBody.objects.filter(session_id=session_id).count() == 2
    assert ToolCallRecord.objects.filter(session_id=session_id).exists()

    response = api.delete(f"/sessions/{session_id}")
    assert response.status_code == 204
    assert response.content == b""

    for path in ("", "/raw", "/timeline", "/versions"):
        gone = api.get(f"/sessions/{session_id}{path}")
        assert gone.status_code == 404, path
        assert gone.json()["code"] == "not_found"
    assert api.get(f"/sessions/{session_id}/raw", version=1).status_code == 404
    assert api.delete(f"/sessions/{session_id}").status_code == 404
    assert api.get("/sessions").json()["items"] == []
    assert DocumentBody.objects.filter(session_id=session_id).count() == 0
    for model in (Session, DocumentVersion, ToolCallRecord, SessionError, ModelUsage):
        assert model.objects.count() == 0, model.__name__

    # Posting it again starts a new session with a new id.
    again = post(api, seed_document, 201)
    assert again["id"] != session_id and again["version"] == 1


def test_delete_leaves_other_sessions_alone(api, seed_document):
    keep = post(api, transcript(), 201)
    drop = post(api, seed_document, 201)
    assert api.delete(f"/sessions/{drop['id']}").status_code == 204
    assert raw(api, keep["id"]) == transcript()
    assert [item["id"] for item in api.get("/sessions").json()["items"]] == [keep["id"]]


def test_an_api_delete_is_recorded_in_the_audit_log_with_its_reason(api, seed_document):
    from sessions_api.models import AuditEntry

    session_id = api.post("/sessions", seed_document).json()["id"]
    response = api.client.delete(
        f"/api/v1/sessions/{session_id}",
        headers={"Authorization": f"Bearer {api.key}", "X-Change-Reason": "GDPR request 42"},
    )

    assert response.status_code == 204
    entry = AuditEntry.objects.get(action="delete")
    assert entry.reason == "GDPR request 42"
    assert entry.session_external_id == "6917ad4ac3d31db001ec2393"
