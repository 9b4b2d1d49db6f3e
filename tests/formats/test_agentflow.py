"""The agentflow adapter: detection (rule 9), mapping against the fixtures the
real gittielabs-agentflow library produced (tests/fixtures/manifest.json), and bad input.

The FileSystemStorage folder itself is imported by tests/test_import_agentflow.py."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from helpers import (
    FIXTURES,
    assert_message_texts_in_timeline,
    assert_no_other_fixture_detects_as,
    codes,
    ingest,
    load,
    manifest_entries,
)

from sessions_api.domain import LogLevel, Role, SessionStatus, StatusSource, TokenSource, ToolStatus
from sessions_api.formats import registry
from sessions_api.formats.agentflow import parse as agentflow
from sessions_api.formats.base import InvalidDocument
from sessions_api.formats.pairing import count_recorded_tool_errors
from sessions_api.sessions.timeline import build_timeline

# JSON documents (the fs_storage folder entry is a folder, imported as a unit elsewhere).
ENTRIES = manifest_entries("agentflow", json_only=True)
STATUS = {"active": SessionStatus.RUNNING, "completed": SessionStatus.COMPLETED}
STATUS["error"] = SessionStatus.ERROR


def variant_for(item: dict[str, Any]) -> str:
    if item["path"].endswith("export_bundle.json"):
        return "export-bundle"
    if item["path"].endswith("session.json"):
        return "session-json"
    return "history"


def bundle() -> dict[str, Any]:
    return copy.deepcopy(load("agentflow/export_bundle.json"))


def test_manifest_lists_the_json_fixtures():
    assert sorted(variant_for(e) for e in ENTRIES) == [
        "export-bundle",
        "history",
        "session-json",
        "session-json",
        "session-json",
    ]


# ------------------------------------------------------------------------ manifest fixtures


@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_fixture_detects_and_parses_as_agentflow(item):
    detection, parsed = registry.parse_document(load(item["path"]))

    assert detection.format_id == "agentflow"
    assert detection.rule.startswith("rule 9:")
    assert detection.variant == variant_for(item)
    assert parsed.session.format_variant == variant_for(item)
    assert parsed.session.source_format == "agentflow"


@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_fixture_counts_match_the_manifest(item):
    expected = item["expected"]
    session = agentflow.ADAPTER.parse(load(item["path"])).session

    assert len(session.messages) == expected["messages"]
    assert session.external_id == expected.get("external_id")
    if "roles" in expected:
        assert dict(Counter(m.role.value for m in session.messages)) == expected["roles"]
        assert len(session.tool_calls) == expected["tool_calls"]
        assert sum(1 for m in session.messages if m.role is Role.TOOL) == expected["tool_results"]
        assert count_recorded_tool_errors(session.messages) == expected["tool_errors"]
        heuristic = [
            c
            for c in session.tool_calls
            if c.status is ToolStatus.ERROR and c.status_source is StatusSource.HEURISTIC
        ]
        assert len(heuristic) == expected["tool_errors_heuristic"]
        assert not any(m.role is Role.SYSTEM for m in session.messages)
    if "status" in expected:
        assert session.status is STATUS[expected["status"]]
        assert session.raw_status == expected["status"]
        assert session.agent_name == expected["agent"]
        assert session.metadata["workflow"] == expected["workflow"]
        assert session.created_at is not None
        assert session.updated_at is None
    tokens = expected.get("tokens")
    if tokens is None:
        assert session.tokens.is_empty
    else:
        assert (session.tokens.input, session.tokens.output, session.tokens.total) == (
            tokens["input"],
            tokens["output"],
            tokens["total"],
        )
        assert session.tokens.source is TokenSource.SUMMED
    if "llm_calls" in expected:
        completed = [e for e in session.logs if e.message == "llm_call_completed"]
        assert len(completed) == expected["llm_calls"]
    if "artifacts" in expected:
        assert len(session.metadata["artifacts"]) == expected["artifacts"]


@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_every_message_text_is_in_the_timeline(item):
    session = agentflow.ADAPTER.parse(load(item["path"])).session

    assert_message_texts_in_timeline(
        session, item["coverage"], check_non_ascii=bool(item["expected"]["messages"])
    )


# ------------------------------------------------------------------------ tools and status


def test_tool_result_entries_become_one_tool_message_each_paired_by_id():
    session = agentflow.ADAPTER.parse(load("agentflow/history.json")).session
    calls = {call.call_id: call for call in session.tool_calls}

    tool_messages = [m for m in session.messages if m.role is Role.TOOL]
    assert [m.tool_call_id for m in tool_messages] == [
        "toolu_chat_01",
        "toolu_chat_02",
        "toolu_chat_03",
    ]
    assert {m.extra["history_index"] for m in tool_messages} == {2}
    assert calls["toolu_chat_01"].arguments == {"city": "東京"}
    assert calls["toolu_chat_01"].status is ToolStatus.SUCCESS
    assert calls["toolu_chat_01"].status_source is StatusSource.EXPLICIT


def test_is_error_is_explicit_and_local_dispatcher_errors_are_heuristic():
    session = agentflow.ADAPTER.parse(load("agentflow/history.json")).session
    calls = {call.call_id: call for call in session.tool_calls}

    # A dispatcher that raises: is_error true.
    assert calls["toolu_chat_03"].status is ToolStatus.ERROR
    assert calls["toolu_chat_03"].status_source is StatusSource.EXPLICIT
    # LocalToolDispatcher caught the exception: is_error false, "Tool error: ..." text.
    hotel = calls["toolu_chat_02"]
    assert hotel.status is ToolStatus.ERROR
    assert hotel.status_source is StatusSource.HEURISTIC
    assert hotel.result_content.startswith("Tool error:")
    assert session.messages[hotel.result_seq].extra["is_error_recorded"] is False
    timeline_calls = {e["call_id"]: e for e in build_timeline(session) if e["kind"] == "tool_call"}
    assert timeline_calls["toolu_chat_02"]["heuristic"] is True
    assert timeline_calls["toolu_chat_03"]["heuristic"] is False


def test_a_result_without_is_error_falls_back_to_the_text_heuristic():
    doc = load("agentflow/history.json")
    del doc[2]["tool_results"][0]["is_error"]

    session = agentflow.ADAPTER.parse(doc).session
    call = session.tool_calls[0]

    assert call.status is ToolStatus.SUCCESS
    assert call.status_source is StatusSource.HEURISTIC


def test_assistant_raw_response_null_is_not_kept_but_other_metadata_is():
    doc = load("agentflow/history.json")
    doc[0]["metadata"] = {"lang": "de"}

    session = agentflow.ADAPTER.parse(doc).session

    assert session.messages[0].extra == {"metadata": {"lang": "de"}}
    assert "metadata" not in session.messages[1].extra


# --------------------------------------------------------------------------------- bundle


def test_bundle_events_are_logs_with_errors_at_error_level():
    session = agentflow.ADAPTER.parse(bundle()).session
    events = bundle()["events"]

    assert len(session.logs) == len(events)
    errors = [e for e in session.logs if e.level is LogLevel.ERROR]
    assert len(errors) == sum(1 for e in events if e["type"] == "error") == 1
    assert errors[0].message == "convert_currency: rate service unreachable (HTTP 503)"
    tool_results = [e for e in session.logs if e.message == "tool_result"]
    assert [e.extra["data"]["is_error"] for e in tool_results] == [False, False, True]
    assert {e["kind"] for e in build_timeline(session)} >= {"message", "tool_call", "log"}


def test_bundle_model_goes_on_the_node_step_and_the_assistant_messages():
    session = agentflow.ADAPTER.parse(bundle()).session

    assert session.models == ["claude-sonnet-4-6"]
    assert [s.name for s in session.steps] == ["chat"]
    assert session.steps[0].flow == "chat"
    assert session.steps[0].state["notes"] == ["scratch", "summary"]
    assert all(m.model == "claude-sonnet-4-6" for m in session.messages if m.role is Role.ASSISTANT)


def test_bundle_notes_and_artifacts_are_in_the_session_metadata():
    session = agentflow.ADAPTER.parse(bundle()).session
    notes = session.metadata["notes"]
    artifacts = {a["name"]: a for a in session.metadata["artifacts"]}

    assert [(n["workflow"], n["node"], n["kind"]) for n in notes] == [
        ("chat", "chat", "scratch"),
        ("chat", "chat", "summary"),
    ]
    assert notes[1]["text"] == "User planned a Tokyo trip Grüße, 東京, émoji 🚀; hotel failed."
    assert artifacts["weather.json"]["kind"] == "json"
    assert artifacts["weather.json"]["json"] == {"city": "東京", "forecast": "sunny ☀"}
    photo = artifacts["photo.png"]
    assert (photo["kind"], photo["size"]) == ("binary", 70)
    assert "base64" not in photo  # the page lists binaries with their size
    assert session.user_id == "user-42"
    assert session.metadata["app_metadata"] == {"user_id": "user-42", "channel": "web"}


def test_node_events_make_steps_and_the_unfinished_node_is_active():
    doc = bundle()
    doc["events"] = [
        {"type": "workflow_started", "data": {"workflow": "trip_planning"}},
        {"type": "node_started", "data": {"node": "research"}},
        {"type": "node_completed", "data": {"node": "research", "agent": "voyager"}},
        {"type": "node_started", "data": {"node": "write"}},
        {
            "type": "llm_call_completed",
            "data": {"node": "write", "model": "m-2", "input_tokens": 5, "output_tokens": 7},
        },
    ]
    doc["notes"] = {"trip_planning/research_summary.md": "done", "trip_planning/zz_scratch.md": ""}

    session = agentflow.ADAPTER.parse(doc).session
    steps = {s.name: s for s in session.steps}

    assert [s.name for s in session.steps] == ["research", "write", "zz"]
    assert steps["research"].is_active is False
    assert steps["research"].state["agent"] == "voyager"
    assert steps["write"].is_active is True
    assert steps["write"].model == "m-2"
    assert steps["zz"].is_active is None
    assert steps["research"].flow == "trip_planning"
    assert (session.tokens.input, session.tokens.output, session.tokens.total) == (5, 7, 12)


def test_folder_bundle_shape_is_read_too():
    doc = bundle()
    common = {"size": 2, "sha256": "ab"}
    doc["artifacts"] = [
        {"name": "a.json", **common, "media_type": "application/json", "json": {}},
        {"name": "notes.md", **common, "media_type": "text/markdown", "text": "hi"},
        {"name": "big.bin", "size": 10**6, "sha256": "ef", "omitted": True},
        # "AAAA" is 3 bytes, not the 4 declared.
        {"name": "x.png", "size": 4, "sha256": "01", "media_type": "image/png", "base64": "AAAA"},
    ]
    doc["other_files"] = [{"path": "chat/blob.bin", "size": 9, "sha256": "99"}]

    parsed = agentflow.ADAPTER.parse(doc)
    artifacts = {a["name"]: a for a in parsed.session.metadata["artifacts"]}

    assert artifacts["a.json"]["kind"] == "json"
    assert artifacts["notes.md"]["text"] == "hi"
    assert artifacts["big.bin"] == {
        "name": "big.bin",
        "size": 10**6,
        "media_type": None,
        "sha256": "ef",
        "kind": "binary",
        "omitted": True,
    }
    assert artifacts["x.png"]["kind"] == "binary"
    assert parsed.session.metadata["other_files"][0]["path"] == "chat/blob.bin"
    assert {"unrecognised_files", "artifact_size_mismatch"} <= set(codes(parsed))


def test_unknown_bundle_keys_and_status_are_kept():
    doc = bundle()
    doc["exported_by"] = "me"
    doc["session"]["status"] = "paused"

    parsed = agentflow.ADAPTER.parse(doc)

    assert parsed.session.metadata["bundle_extra"] == {"exported_by": "me"}
    assert parsed.session.status is SessionStatus.UNKNOWN
    assert parsed.session.raw_status == "paused"
    assert "unknown_status" in codes(parsed)


def test_a_bundle_without_session_takes_the_id_the_events_name():
    doc = bundle()
    del doc["session"]

    parsed = agentflow.ADAPTER.parse(doc)

    assert parsed.session.external_id == "64c073f0-0330-4297-b895-bd7497d1d24d"
    assert "bundle_without_session" in codes(parsed)


# ------------------------------------------------------------------------------- detection


def test_no_other_fixture_detects_as_agentflow():
    assert_no_other_fixture_detects_as("agentflow", skip_parts=("generate", "artifacts"))


@pytest.mark.parametrize(
    "doc",
    [
        {"id": "x", "created_at": "t", "agent": "a", "workflow": "w", "status": "active"},
        {"id": "x", "agent": "a", "workflow": "w", "status": "active", "metadata": {}, "more": 1},
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        [{"role": "tool", "tool_results": [], "content": ""}],
        [],
        {"_kind": "something-else", "session": {}},
    ],
    ids=[
        "session-json-missing-key",
        "session-json-extra-key",
        "openai-style-list",
        "tool-role",
        "empty-list",
        "other-kind",
    ],
)
def test_rule_9_is_strict(doc):
    assert not any(rule.matches(doc) for rule in agentflow.ADAPTER.rules)


@pytest.mark.parametrize("doc", [None, 0, "x", [1], [None], {"_kind": None}, {"_kind": ["x"]}])
def test_matches_never_raises(doc):
    for rule in agentflow.ADAPTER.rules:
        assert rule.matches(doc) in (True, False)


# ---------------------------------------------------------------------------- invalid input


@pytest.mark.parametrize(
    ("mutate", "path", "code"),
    [
        (lambda d: d["session"].update(id=7), "/session/id", "wrong_type"),
        (lambda d: d["session"].pop("id"), "/session/id", "missing_session_id"),
        (lambda d: d["session"].update(status=1), "/session/status", "wrong_type"),
        (lambda d: d["session"].update(metadata=[]), "/session/metadata", "wrong_type"),
        (lambda d: d.update(session=[]), "/session", "wrong_type"),
        (lambda d: d.update(history={}), "/history", "wrong_type"),
        (lambda d: d["history"].__setitem__(0, "hi"), "/history/0", "wrong_type"),
        (lambda d: d["history"][0].pop("role"), "/history/0/role", "missing_field"),
        (lambda d: d["history"][0].update(content=5), "/history/0/content", "wrong_type"),
        (
            lambda d: d["history"][1]["tool_calls"].__setitem__(0, "x"),
            "/history/1/tool_calls/0",
            "wrong_type",
        ),
        (
            lambda d: d["history"][2]["tool_results"][1].update(is_error="no"),
            "/history/2/tool_results/1/is_error",
            "wrong_type",
        ),
        (
            lambda d: d["history"][2]["tool_results"][0].update(tool_call_id=1),
            "/history/2/tool_results/0/tool_call_id",
            "wrong_type",
        ),
        (lambda d: d.update(events={}), "/events", "wrong_type"),
        (lambda d: d.update(notes=["x"]), "/notes", "wrong_type"),
        (lambda d: d["notes"].update({"chat/x.md": 3}), "/notes/chat~1x.md", "wrong_type"),
        (lambda d: d["artifacts"][0].pop("name"), "/artifacts/0/name", "wrong_type"),
        (lambda d: d["artifacts"][1].update(bytes="58"), "/artifacts/1/bytes", "wrong_type"),
        (lambda d: d.update(artifacts={}), "/artifacts", "wrong_type"),
    ],
)
def test_wrong_types_are_invalid_with_their_path(mutate, path, code):
    doc = bundle()
    mutate(doc)

    with pytest.raises(InvalidDocument) as error:
        agentflow.ADAPTER.parse(doc)

    assert error.value.path == path
    assert error.value.code == code


@pytest.mark.parametrize(
    ("value", "code"), [("412", "unreadable_usage"), (-5, "impossible_token_count")]
)
def test_unreadable_or_impossible_event_tokens_are_a_warning(value, code):
    # Token counts are optional data: never coerced ("412"), a negative count clamped to 0.
    doc = bundle()
    doc["events"][1]["data"]["input_tokens"] = value

    parsed = agentflow.ADAPTER.parse(doc)

    assert code in codes(parsed)
    assert [w.path for w in parsed.warnings if w.code == code] == ["/events/1/data/input_tokens"]


def test_session_json_alone_needs_an_id():
    doc = load("agentflow/fs_storage/sessions/821230ce-c473-49f7-9c30-f3f7e82b61b7/session.json")
    doc["id"] = None

    with pytest.raises(InvalidDocument) as error:
        registry.parse_document(doc, format_id="agentflow")

    assert error.value.path == "/id"


def test_a_forced_bundle_of_another_kind_is_refused():
    doc = bundle()
    doc["_kind"] = "other-export"

    with pytest.raises(InvalidDocument) as error:
        registry.parse_document(doc, format_id="agentflow")

    assert error.value.path == "/_kind"


# ------------------------------------------------------------------------------------- API


@pytest.mark.django_db
@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_api_ingests_the_fixture(api, item):
    answer = ingest(api, (FIXTURES / item["path"]).read_bytes(), "agentflow")

    expected_id = item["expected"].get("external_id")
    if expected_id:
        assert answer["external_id"] == expected_id
    else:
        assert answer["external_id"].startswith("sha256:")  # a history list has no id
    assert answer["summary"]["message_count"] == item["expected"]["messages"]
    assert answer["summary"]["tool_error_count"] == item["expected"].get("tool_errors", 0)
    tokens = item["expected"].get("tokens")
    assert answer["summary"]["total_tokens"] == (tokens["total"] if tokens else None)
