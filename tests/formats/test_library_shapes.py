"""Documents the libraries write that the format fixtures of each adapter do not show
(``tests/fixtures/<format>/shapes/``): each is detected as its format and read with the counts
its manifest entry gives, and the rule behind each fix holds beyond that one file."""

from __future__ import annotations

import copy
import json

import pytest
from helpers import FIXTURES, MANIFEST, codes, ingest, is_shape_fixture, load

from sessions_api.domain import StatusSource, ToolStatus
from sessions_api.formats import registry
from sessions_api.formats.pairing import count_recorded_tool_errors
from sessions_api.sessions.timeline import build_timeline

SHAPES = [entry for entry in MANIFEST["fixtures"] if is_shape_fixture(entry)]


def _calls(session):
    return [call for message in session.messages for call in message.tool_calls]


def _tokens(session):
    tokens = session.tokens
    if tokens.input is None and tokens.output is None and tokens.total is None:
        return None
    return {"input": tokens.input, "output": tokens.output, "total": tokens.total}


def test_every_format_with_a_library_shape_has_one():
    assert {entry["format_id"] for entry in SHAPES} >= {
        "openai_chat",
        "langchain",
        "anthropic",
        "openai_agents",
        "falai",
        "agentflow",
    }


@pytest.mark.parametrize("entry", SHAPES, ids=[entry["path"] for entry in SHAPES])
def test_shape_is_detected_and_counted_as_its_manifest_says(entry):
    doc = load(entry["path"])
    expected = entry["expected"]

    detection, parsed = registry.parse_document(doc)
    session = parsed.session

    assert detection.format_id == entry["format_id"]
    calls = _calls(session)
    assert len(calls) == expected["tool_calls"]
    assert count_recorded_tool_errors(session.messages) == expected["tool_errors"]
    pending = [call for call in calls if call.status is ToolStatus.PENDING]
    assert len(pending) == expected.get("tool_calls_pending", 0)
    if "tokens" in expected:
        assert _tokens(session) == expected["tokens"]
    if "messages" in expected and entry["format_id"] != "anthropic":
        assert len(session.messages) == expected["messages"]


@pytest.mark.parametrize("entry", SHAPES, ids=[entry["path"] for entry in SHAPES])
def test_forcing_the_format_reads_the_same_session(entry):
    doc = load(entry["path"])

    _, detected = registry.parse_document(doc)
    _, forced = registry.parse_document(doc, format_id=entry["format_id"])

    assert forced.session == detected.session


@pytest.mark.django_db
@pytest.mark.parametrize("entry", SHAPES, ids=[entry["path"] for entry in SHAPES])
def test_shape_is_ingested_through_the_api_with_its_counts(api, entry):
    expected = entry["expected"]

    answer = ingest(api, (FIXTURES / entry["path"]).read_bytes(), entry["format_id"])

    assert answer["summary"]["tool_call_count"] == expected["tool_calls"]
    assert answer["summary"]["tool_error_count"] == expected["tool_errors"]
    if expected.get("tokens"):
        assert answer["summary"]["total_tokens"] == expected["tokens"]["total"]
    if "thread_id" in expected:
        assert answer["external_id"] == expected["thread_id"]
        assert "inside the envelope" in answer["detected_by"]


# --- optional data in an unexpected shape ---------------------------------------------------


def test_a_list_of_per_completion_usages_is_summed():
    parsed = registry.parse_document(load("openai_chat/shapes/usage_list.json"))[1]

    assert parsed.session.tokens.cached == 384
    assert parsed.session.tokens.source.value == "summed"


@pytest.mark.parametrize("usage", ["2", 7, True, ["x"], [{"prompt_tokens": "many"}]])
def test_usage_in_a_shape_no_format_has_is_a_warning_not_a_refusal(usage):
    doc = load("openai_chat/shapes/usage_list.json")
    doc["usage"] = usage

    _, parsed = registry.parse_document(doc)

    assert "unreadable_usage" in codes(parsed)
    assert len(parsed.session.messages) == 4


# --- envelopes --------------------------------------------------------------------------------


def test_a_history_envelope_is_read_from_its_newest_state_and_keeps_its_thread_id():
    doc = load("langchain/shapes/state_history_envelope.json")

    detection, parsed = registry.parse_document(doc)

    assert detection.format_id == "langchain"
    assert "envelope" in detection.rule
    assert parsed.session.external_id == "lc-thread-history-0002"
    bare = registry.parse_document(doc["history"])[1].session
    assert [m.content_text for m in parsed.session.messages] == [
        m.content_text for m in bare.messages
    ]


@pytest.mark.parametrize(
    ("inner_path", "key"),
    [
        ("langchain/messages_to_dict.json", "messages"),
        ("openai_agents/session_items.json", "items"),
        ("langchain/state_history.json", "states"),
        ("agentflow/history.json", "history"),
    ],
)
def test_every_format_is_found_one_level_inside_an_id_envelope(inner_path, key):
    inner = load(inner_path)
    bare_format = registry.detect_format(inner).format_id
    bare_id = registry.parse_document(inner)[1].session.external_id

    detection, parsed = registry.parse_document({"id": "wrapped-0001", key: inner})

    assert detection.format_id == bare_format
    # The envelope names the session unless its content already does (then a warning).
    assert parsed.session.external_id == (bare_id or "wrapped-0001")
    assert ("envelope_id_differs" in codes(parsed)) == (bare_id is not None)


def test_an_envelope_holding_no_known_shape_is_still_unknown():
    with pytest.raises(registry.UnknownFormat):
        registry.detect_format({"id": "x", "history": [{"foo": 1}]})


# --- newer content blocks -----------------------------------------------------------------------


def test_mcp_connector_calls_are_tool_calls_with_their_results_and_errors():
    _, parsed = registry.parse_document(load("anthropic/shapes/mcp_connector.json"))

    calls = _calls(parsed.session)
    assert [(c.name, c.status, c.status_source) for c in calls] == [
        ("list_events", ToolStatus.SUCCESS, StatusSource.EXPLICIT),
        ("book_hotel", ToolStatus.ERROR, StatusSource.EXPLICIT),
    ]
    assert "No rooms left" in str(calls[1].result_content)
    assert parsed.session.tokens.total == 955


def test_server_tools_are_tool_calls_and_an_error_result_is_an_error():
    _, parsed = registry.parse_document(load("anthropic/shapes/server_tools.json"))

    calls = _calls(parsed.session)
    assert [(c.name, c.status) for c in calls] == [
        ("web_search", ToolStatus.SUCCESS),
        ("web_fetch", ToolStatus.ERROR),
        ("code_execution", ToolStatus.SUCCESS),
    ]
    events = [e for e in build_timeline(parsed.session) if e["kind"] == "tool_call"]
    assert [e["status"] for e in events] == ["success", "error", "success"]


def test_an_unknown_block_type_is_kept_verbatim_and_named_in_a_warning():
    doc = load("anthropic/shapes/server_tools.json")
    block = {"type": "hologram_tool_use", "id": "holo_1", "name": "project", "input": {}}
    doc["messages"][1]["content"].append({"type": "sparkle", "payload": [1, 2]})
    doc["messages"][1]["content"].append(block)

    _, parsed = registry.parse_document(doc)

    parts = parsed.session.messages[1].content_parts
    assert {"type": "sparkle", "payload": [1, 2]} in parts
    assert block in parts
    assert "unknown_block_type" in codes(parsed)


@pytest.mark.parametrize(
    ("doc", "format_id"),
    [
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
            "openai_chat",
        ),
        ([{"type": "human", "content": [{"type": "text", "text": "hi"}]}], "langchain"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t"}]}]},
            "anthropic",
        ),
    ],
)
def test_unknown_content_blocks_are_kept_verbatim_in_every_chat_format(doc, format_id):
    block = {"type": "hologram", "payload": [1, {"nested": True}]}
    messages = doc if isinstance(doc, list) else doc["messages"]
    messages[0]["content"].append(block)

    detection, parsed = registry.parse_document(doc)

    assert detection.format_id == format_id
    assert block in parsed.session.messages[0].content_parts


# --- a paused run -------------------------------------------------------------------------------


def test_a_run_paused_for_approval_counts_the_waiting_call_once():
    _, parsed = registry.parse_document(load("openai_agents/shapes/run_state_approval.json"))

    assert "duplicate_tool_call_id" not in codes(parsed)
    calls = {c.call_id: c for c in _calls(parsed.session)}
    assert calls["call_charge_02"].status is ToolStatus.PENDING
    approvals = [m for m in parsed.session.messages if m.extra.get("awaiting_approval")]
    assert [m.extra["awaiting_approval"] for m in approvals] == ["call_charge_02"]
    assert parsed.session.status.value == "running"


# --- tool work without a declared call ----------------------------------------------------------


def test_tool_events_without_an_announcing_call_are_calls_with_their_error_text_shown():
    _, parsed = registry.parse_document(load("falai/shapes/tool_events_without_calls.json"))

    events = build_timeline(parsed.session)
    shown = json.dumps([e for e in events if e["kind"] == "tool_call"], ensure_ascii=False)
    for text in ("seat map service timeout", "Card declined (insufficient funds)"):
        assert text in shown
    calls = {c.name: c for c in _calls(parsed.session)}
    assert calls["charge_card"].status is ToolStatus.ERROR
    assert calls["get_seat_map"].status is ToolStatus.ERROR
    assert calls["seat_map"].status is ToolStatus.PENDING


# --- usage where the framework puts it ----------------------------------------------------------


def test_agentflow_usage_in_assistant_metadata_is_summed():
    doc = load("agentflow/shapes/history_metadata_usage.json")
    doc.insert(1, copy.deepcopy(doc[-1]))  # a second answer with its own usage

    _, parsed = registry.parse_document(doc)

    assert parsed.session.tokens.input == 1060
    assert parsed.session.tokens.output == 122


# --- an inconsistent transcript -----------------------------------------------------------------


def test_the_inconsistent_tools_case_imports_with_its_warnings():
    entry = next(e for e in SHAPES if e["path"] == "openai_chat/shapes/inconsistent_tools.json")

    _, parsed = registry.parse_document(load(entry["path"]))

    assert set(entry["expected"]["warnings"]) <= set(codes(parsed))
    session = parsed.session
    assert session.messages[-1].role.value == "other"
    assert session.messages[-1].raw_role == "wizard"
    calls = _calls(session)
    assert [(c.call_id, c.status.value) for c in calls] == [
        ("call_dup", "success"),
        ("call_dup", "error"),
        ("call_raw", "unknown"),
        ("call_pending", "pending"),
    ]
    assert calls[2].arguments == "{not json"
    unmatched = [e for e in build_timeline(session) if e["kind"] == "tool_result"]
    assert [(e["call_id"], e["status"]) for e in unmatched] == [("call_orphan", "unmatched")]
    usage = session.messages[1].tokens
    assert (usage.input, usage.output) == (0, 10**15)
