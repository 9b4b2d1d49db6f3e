"""The openai_agents adapter: detection (rules 5-7), mapping and bad input.

Every manifest fixture of the format is checked against the counts the generator took from the
real library (tests/fixtures/manifest.json); ids and timestamps that vary between runs are read
from there, never hard-coded.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest
from helpers import (
    FIXTURES,
    ODD_SHAPE_SETTINGS,
    SCRIPT,
    assert_odd_shape_is_handled,
    assert_refuses_several_sessions,
    assert_wrong_type_at,
    codes,
    ingest,
    load,
    manifest_entries,
    manifest_entry,
    other_format_fixtures,
    rejection,
    set_path,
)
from hypothesis import given
from hypothesis import strategies as st

from sessions_api.domain import Role, StatusSource, TimestampSource, TokenSource, ToolStatus
from sessions_api.formats import registry
from sessions_api.formats.base import InvalidDocument
from sessions_api.formats.openai_agents import parse as openai_agents
from sessions_api.formats.pairing import count_recorded_tool_errors
from sessions_api.sessions.timeline import build_timeline

ENTRIES = manifest_entries("openai_agents", json_only=True)

parse = openai_agents.ADAPTER.parse


def single_session_docs(fixture: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """(expected, document) per session: multi-session dumps are split like import_sessions."""
    doc = load(fixture["path"])
    if "expected" in fixture:
        return [(fixture["expected"], doc)]
    parts = openai_agents.split_sessions(doc) or [(fixture["sessions"][0]["external_id"], doc)]
    by_id = {s["external_id"]: s for s in fixture["sessions"]}
    return [(by_id[session_id], part) for session_id, part in parts]


ITEM_FIXTURES = [
    e["path"] for e in ENTRIES if "items_by_type" in (e.get("expected") or e["sessions"][0])
]


def item_cases() -> list[Any]:
    cases = []
    for fixture in ENTRIES:
        if fixture["path"] not in ITEM_FIXTURES:
            continue
        for expected, doc in single_session_docs(fixture):
            label = f"{fixture['path']}:{expected.get('external_id', 'bare')}"
            cases.append(pytest.param(fixture, expected, doc, id=label))
    return cases


def timeline_texts(session) -> tuple[list[str], list[Any]]:
    events = build_timeline(session)
    texts = [e["text"] for e in events if e["kind"] == "message"]
    results = [e["result"] for e in events if e["kind"] in ("tool_call", "tool_result")]
    return texts, results


def assert_every_text_in_timeline(session) -> None:
    texts, results = timeline_texts(session)
    for message in session.messages:
        if message.role is Role.TOOL:
            content = message.content_parts if message.content_parts is not None else None
            assert (content or message.content_text) in results or message.content_text in texts
        else:
            assert message.content_text in texts


# ------------------------------------------------------------------------ manifest fixtures


RULE_OF_SHAPE = {"rule 5": 5, "rule 6": 6, "rule 7": 7}


@pytest.mark.parametrize("fixture", ENTRIES, ids=[e["path"] for e in ENTRIES])
def test_every_fixture_is_detected_by_the_rule_its_shape_names(fixture):
    doc = load(fixture["path"])
    detection = registry.detect_format(doc)

    assert detection.format_id == "openai_agents"
    number = next(n for key, n in RULE_OF_SHAPE.items() if key in fixture["shape"])
    assert detection.rule.startswith(f"rule {number}:")


@pytest.mark.parametrize(("fixture", "expected", "doc"), item_cases())
def test_item_fixtures_match_the_manifest(fixture, expected, doc):
    detection, parsed = registry.parse_document(doc)
    session = parsed.session

    assert detection.format_id == session.source_format == "openai_agents"
    assert len(session.messages) == expected["messages"]
    assert Counter(m.role.value for m in session.messages) == expected["roles"]
    item_types = Counter(m.extra.get("item_type", "message") for m in session.messages)
    assert item_types == expected["items_by_type"]
    function_calls = [c for c in session.tool_calls if c.name != "web_search_call"]
    assert len(function_calls) == expected["tool_calls"]
    assert sum(1 for m in session.messages if m.extra.get("handoff")) == expected["handoffs"]
    assert sum(1 for c in function_calls if c.result_seq is not None) == expected["tool_results"]
    assert count_recorded_tool_errors(session.messages) == expected["tool_errors"]
    heuristic_errors = [
        c
        for c in session.tool_calls
        if c.status is ToolStatus.ERROR and c.status_source is StatusSource.HEURISTIC
    ]
    assert len(heuristic_errors) == expected["tool_errors_heuristic"]
    if expected.get("external_id"):
        assert session.external_id == expected["external_id"]
    if expected["tokens"] is None:
        assert session.tokens.is_empty
    else:
        tokens = session.tokens
        assert (tokens.input, tokens.output, tokens.total) == (
            expected["tokens"]["input"],
            expected["tokens"]["output"],
            expected["tokens"]["total"],
        )
        assert tokens.source is TokenSource.SUMMED
    assert not any(m.role is Role.SYSTEM for m in session.messages)  # not stored by the SDK
    assert_every_text_in_timeline(session)


@pytest.mark.parametrize(
    "path", ["openai_agents/run_state_tools.json", "openai_agents/run_state_handoff.json"]
)
def test_run_state_fixtures_match_the_manifest(path):
    expected = manifest_entry(path)["expected"]
    parsed = parse(load(path))
    session = parsed.session
    generated = [m for m in session.messages if m.extra.get("run_state_part") == "generated_items"]

    assert session.format_variant == "run-state"
    assert session.agent_name == expected["current_agent"]
    assert session.metadata["schema_version"] == expected["schema_version"]
    assert session.metadata["model_responses"] == expected["model_responses"]
    assert len(generated) == expected["generated_items"]
    assert (
        Counter(m.extra["run_item_type"] for m in generated)
        == (expected["generated_items_by_type"])
    )
    calls = [c for m in generated for c in m.tool_calls]
    assert len(calls) == expected["tool_calls"]
    heuristic = [c for c in calls if c.status is ToolStatus.ERROR]
    assert len(heuristic) == expected["tool_errors_heuristic"]
    assert all(c.status_source is StatusSource.HEURISTIC for c in calls)
    assert count_recorded_tool_errors(session.messages) == expected["tool_errors"]
    tokens = session.tokens
    assert (tokens.input, tokens.output, tokens.total) == tuple(expected["tokens"].values())
    assert tokens.source is TokenSource.REPORTED
    # Each model response's usage sits on the first message it produced, and sums to the total.
    per_response = [m.tokens.total for m in generated if m.tokens is not None]
    assert len(per_response) == expected["requests"]
    assert sum(per_response) == expected["tokens"]["total"]
    # Generated items name their agent.
    assert all(m.author for m in generated)
    assert session.external_id is None  # RunState has no session id: the ingest derives one
    assert_every_text_in_timeline(session)


def test_run_state_token_details_are_lists_of_objects_in_0_24():
    doc = load("openai_agents/run_state_tools.json")
    assert isinstance(doc["context"]["usage"]["input_tokens_details"], list)

    tokens = parse(doc).session.tokens

    assert tokens.cached == 384
    assert tokens.reasoning == 24


def test_run_state_handoff_names_source_and_target_agents():
    session = parse(load("openai_agents/run_state_handoff.json")).session
    output = next(
        m for m in session.messages if m.extra.get("run_item_type") == "handoff_output_item"
    )
    reply = session.messages[-1]

    assert output.extra["handoff_to"] == "Billing"
    assert output.extra["handoff_from"] == "Voyager"
    assert reply.author == "Billing"


def test_encrypted_dump_shows_each_item_as_encrypted():
    fixture = manifest_entry("openai_agents/encrypted_sqlite_dump.json")
    expected = fixture["sessions"][0]
    parsed = parse(load(fixture["path"]))
    session = parsed.session

    assert session.external_id == expected["external_id"]
    assert len(session.messages) == expected["messages"] == expected["encrypted_items"]
    for message in session.messages:
        assert message.role is Role.OTHER
        assert message.raw_role == "encrypted"
        assert message.content_text == "[encrypted]"
        assert message.extra["encrypted"]["__enc__"] == 1
        assert "payload" not in message.extra["encrypted"]
        assert message.extra["encrypted"]["payload_length"] > 0
    assert codes(parsed).count("encrypted_item") == expected["encrypted_items"]
    assert_every_text_in_timeline(session)


def test_sqlite_dump_with_two_sessions_is_refused_and_split_for_the_importer():
    fixture = manifest_entry("openai_agents/sqlite_session_dump.json")
    doc = load(fixture["path"])

    with pytest.raises(InvalidDocument) as raised:
        parse(doc)
    assert raised.value.code == "multiple_sessions"
    assert "import_sessions" in raised.value.message

    parts = openai_agents.split_sessions(doc)
    assert [session_id for session_id, _ in parts] == [
        s["external_id"] for s in fixture["sessions"]
    ]
    for (_, part), expected in zip(parts, fixture["sessions"], strict=True):
        session = parse(part).session
        assert session.external_id == expected["external_id"]
        assert len(session.messages) == expected["messages"]


def test_split_is_none_for_one_session_and_other_documents():
    assert openai_agents.split_sessions(load("openai_agents/advanced_sqlite_dump.json")) is None
    assert openai_agents.split_sessions(load("openai_agents/session_items.json")) is None
    assert openai_agents.split_sessions({"agent_sessions": "x", "agent_messages": []}) is None


def test_dump_rows_give_session_times_and_message_times():
    fixture = manifest_entry("openai_agents/advanced_sqlite_dump.json")
    doc = load(fixture["path"])
    session = parse(doc).session
    row = doc["agent_sessions"][0]

    assert session.created_at.strftime("%Y-%m-%d %H:%M:%S") == row["created_at"]
    assert session.updated_at.strftime("%Y-%m-%d %H:%M:%S") == row["updated_at"]
    assert all(m.timestamp is not None for m in session.messages)
    assert all(m.timestamp_source is TimestampSource.EXPLICIT for m in session.messages)
    assert session.messages[0].extra["row_id"] == doc["agent_messages"][0]["id"]


def test_advanced_dump_turn_usage_becomes_turn_steps():
    fixture = manifest_entry("openai_agents/advanced_sqlite_dump.json")
    expected = fixture["sessions"][0]
    session = parse(load(fixture["path"])).session

    assert session.format_variant == "advanced-sqlite-dump"
    assert [s.name for s in session.steps] == [f"turn {n}" for n in range(1, 5)]
    assert sum(s.state["usage"]["total"] for s in session.steps) == expected["tokens"]["total"]
    assert len({m.step for m in session.messages}) == expected["user_turns"]
    structure = session.messages[2].extra["structure"]
    assert structure["user_turn_number"] == 1
    assert structure["tool_name"] == "get_weather"


# ------------------------------------------------------------------------ mapping details


@pytest.fixture(scope="module")
def items_session():
    return parse(load("openai_agents/session_items.json")).session


def test_roles_turns_and_reasoning(items_session):
    messages = items_session.messages
    assert messages[0].role is Role.USER and messages[0].step == "turn 1"
    reasoning = messages[1]
    assert reasoning.role is Role.ASSISTANT
    assert reasoning.extra["item_type"] == "reasoning"
    assert reasoning.content_text == "Need the forecast for 東京 and a hotel booking."
    assert messages[-1].step == "turn 4"


def test_function_calls_pair_by_call_id_with_a_heuristic_status(items_session):
    calls = {c.name: c for c in items_session.tool_calls}

    weather, hotel = calls["get_weather"], calls["book_hotel"]
    assert weather.arguments == {"city": "東京"}
    assert weather.status is ToolStatus.SUCCESS
    assert hotel.status is ToolStatus.ERROR
    assert hotel.result_content == openai_agents.DEFAULT_TOOL_ERROR_TEXT
    assert {weather.status_source, hotel.status_source} == {StatusSource.HEURISTIC}
    # The timeline says the verdict is a heuristic.
    events = {e["name"]: e for e in build_timeline(items_session) if e["kind"] == "tool_call"}
    assert events["book_hotel"]["heuristic"] is True
    assert events["book_hotel"]["status"] == "error"


def test_hosted_web_search_is_a_tool_call_with_its_own_status(items_session):
    call = next(c for c in items_session.tool_calls if c.name == "web_search_call")
    message = items_session.messages[call.result_seq]

    assert call.status is ToolStatus.SUCCESS
    assert call.status_source is StatusSource.EXPLICIT
    assert call.arguments == {"type": "search", "query": "Tokyo 7 day itinerary"}
    assert message.extra["hosted_tool"] is True


def test_handoff_is_marked_and_the_target_agent_answers_in_that_turn(items_session):
    messages = items_session.messages
    call = next(m for m in messages if m.extra.get("handoff"))
    output = next(m for m in messages if m.extra.get("handoff_to"))
    reply = messages[output.seq + 1]

    assert call.tool_calls[0].name == "transfer_to_billing"
    assert output.extra["handoff_to"] == "Billing"
    assert reply.author == "Billing"
    assert reply.extra["author_source"] == "handoff"
    # The next user turn starts again with an unknown agent.
    assert messages[-1].author is None


def test_fixture_text_survives_verbatim(items_session):
    raw = load("openai_agents/session_items.json")
    long_text = raw[9]["content"][0]["text"]
    texts = [m.content_text for m in items_session.messages]

    assert len(long_text.encode("utf-8")) > 5000
    assert long_text in texts
    assert any(SCRIPT in t for t in texts)
    assert any("東京" in t and "🚀" in t for t in texts)
    timeline = timeline_texts(items_session)[0]
    assert long_text in timeline
    assert any(SCRIPT in t for t in timeline)


# ------------------------------------------------------------------------ odd but survivable


def test_unknown_item_types_are_other_messages_with_the_raw_item():
    doc = {
        "session_id": "s",
        "items": [{"role": "user", "content": "hi"}, {"type": "message", "role": "assistant"}],
    }
    doc["items"].append({"type": "hologram_call", "id": "h1", "payload": [1, 2]})

    parsed = registry.parse_document(doc, format_id="openai_agents")[1]
    other = parsed.session.messages[2]

    assert other.role is Role.OTHER
    assert other.raw_role == "hologram_call"
    assert other.extra["item"]["payload"] == [1, 2]
    assert "unknown_item_type" in codes(parsed)


def test_unparseable_message_data_is_shown_raw_with_a_warning():
    doc = {
        "agent_sessions": [{"session_id": "s1"}],
        "agent_messages": [
            {"id": 2, "session_id": "s1", "message_data": '{"role": "assistant", "content": "b"}'},
            {"id": 1, "session_id": "s1", "message_data": "{not json"},
        ],
    }
    parsed = parse(doc)
    first, second = parsed.session.messages

    assert (first.role, first.content_text) == (Role.OTHER, "{not json")  # rows by id
    assert second.content_text == "b"
    assert "unparseable_message_data" in codes(parsed)


def test_nul_inside_message_data_is_refused_like_in_the_document():
    doc = {
        "agent_sessions": [{"session_id": "s1"}],
        "agent_messages": [
            {"id": 1, "session_id": "s1", "message_data": '{"role": "user", "content": "a\\u0000"}'}
        ],
    }
    with pytest.raises(InvalidDocument) as raised:
        parse(doc)
    assert raised.value.code == "nul_character"
    assert raised.value.path.startswith("/agent_messages/0/message_data")


def test_nul_inside_function_call_arguments_is_refused_like_in_the_document():
    doc = [{"type": "function_call", "call_id": "a", "name": "f", "arguments": '{"q": "a\\u0000"}'}]
    with pytest.raises(InvalidDocument) as raised:
        parse(doc)
    assert raised.value.code == "nul_character"
    assert raised.value.path.startswith("/0/arguments")


def test_hosted_call_statuses_failed_and_in_progress_and_mcp_errors():
    doc = [
        {"role": "user", "content": "go"},
        {"type": "file_search_call", "id": "fs1", "status": "failed", "queries": ["q"]},
        {"type": "code_interpreter_call", "id": "ci1", "status": "in_progress", "code": "1+1"},
        {
            "type": "mcp_call",
            "id": "mcp1",
            "name": "lookup",
            "server_label": "crm",
            "arguments": '{"id": 7}',
            "error": "timeout",
        },
    ]
    session = parse(doc).session
    failed, running, mcp = session.tool_calls

    assert (failed.status, failed.status_source) == (ToolStatus.ERROR, StatusSource.EXPLICIT)
    assert running.status is ToolStatus.PENDING and running.result_seq is None
    assert (mcp.name, mcp.arguments, mcp.status) == ("lookup", {"id": 7}, ToolStatus.ERROR)
    assert count_recorded_tool_errors(session.messages) == 2


def test_computer_and_custom_calls_pair_with_their_outputs():
    doc = [
        {"role": "user", "content": "go"},
        {"type": "computer_call", "id": "cu1", "call_id": "c1", "action": {"type": "click"}},
        {"type": "computer_call_output", "call_id": "c1", "output": {"type": "screenshot"}},
        {"type": "custom_tool_call", "id": "ct1", "call_id": "c2", "name": "grep", "input": "x"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": "Error: no match"},
    ]
    computer, custom = parse(doc).session.tool_calls

    assert computer.result_seq == 2 and computer.status is ToolStatus.SUCCESS
    assert (custom.name, custom.arguments, custom.status) == ("grep", "x", ToolStatus.ERROR)


def test_unpaired_calls_and_orphan_outputs_are_warnings():
    doc = [
        {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{x"},
        {"type": "function_call_output", "call_id": "zzz", "output": "late"},
    ]
    parsed = parse(doc)

    assert parsed.session.tool_calls[0].arguments == "{x"
    assert parsed.session.tool_calls[0].arguments_error
    assert {
        "unparseable_tool_arguments",
        "unmatched_tool_result",
        "tool_call_without_result",
    } <= set(codes(parsed))


# ------------------------------------------------------------------------ detection boundaries


@pytest.mark.parametrize("path", sorted(p.name for p in (FIXTURES / "openai_chat").glob("*.json")))
def test_openai_chat_fixtures_stay_openai_chat(path):
    doc = load(f"openai_chat/{path}")
    assert registry.detect_format(doc).format_id == "openai_chat"
    assert not any(rule.matches(doc) for rule in openai_agents.RULES)


@pytest.mark.parametrize("path", other_format_fixtures("openai_agents"))
def test_no_other_formats_fixture_matches_rules_5_to_7(path):
    doc = load(path)
    assert not any(rule.matches(doc) for rule in openai_agents.RULES)


@pytest.mark.parametrize(
    "doc",
    [
        [{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}],
        [{"role": "assistant", "content": None, "tool_calls": []}],
        [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        [{"role": "user", "content": "hi", "name": "bob"}],
        [{"id": 1, "sessionId": "s", "role": "user", "content": "x", "createdAt": "2026"}],
        [{"type": "human", "content": "x"}],
        [{"type": "human", "data": {"content": "x"}}],
        {
            "messages": [{"role": "user", "content": "x"}],
            "items": [{"role": "user", "content": "x"}],
        },
        {"items": []},
        [],
        {"items": [{"type": "function_call"}, "x"]},
    ],
    ids=[
        "tool-role",
        "tool-calls",
        "chat-text-part",
        "name-key",
        "falai-row",
        "langchain-model-dump",
        "langchain-to-dict",
        "messages-envelope",
        "empty-items-without-id",
        "empty-list",
        "non-object-item",
    ],
)
def test_rule_7_leaves_chat_and_other_lists_alone(doc):
    assert not any(rule.matches(doc) for rule in openai_agents.RULES if rule.number == 7)


@pytest.mark.parametrize(
    "doc",
    [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        [{"__enc__": 1, "v": 1, "payload": "gAAA"}],
        {"session_id": "s", "items": []},
        {"items": [{"type": "reasoning", "id": "rs", "summary": []}]},
    ],
    ids=["plain-roles", "input-text", "encrypted", "empty-with-id", "envelope"],
)
def test_rule_7_owns_responses_item_lists(doc):
    assert registry.detect_format(doc).format_id == "openai_agents"


ODD = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "role", "content", "items", "call_id", "output", "__enc__"])
            | st.text(max_size=4),
            children,
            max_size=4,
        )
    ),
    max_leaves=14,
)


@ODD_SHAPE_SETTINGS
@given(ODD)
def test_odd_shapes_never_crash_detection_or_parsing(doc):
    assert_odd_shape_is_handled(openai_agents.ADAPTER, doc)


# ------------------------------------------------------------------------ wrong types


def _items_doc() -> list[Any]:
    return copy.deepcopy(load("openai_agents/session_items.json"))


def _dump_doc() -> dict[str, Any]:
    return copy.deepcopy(load("openai_agents/advanced_sqlite_dump.json"))


def _run_state_doc() -> dict[str, Any]:
    return copy.deepcopy(load("openai_agents/run_state_tools.json"))


WRONG_TYPES = [
    (_items_doc, "/0", "hi"),
    (_items_doc, "/0/role", 3),
    (_items_doc, "/0/content", 42),
    (_items_doc, "/6/content/0", "text"),
    (_items_doc, "/6/content/0/text", ["x"]),
    (_items_doc, "/2/call_id", 7),
    (_items_doc, "/2/name", {"n": 1}),
    (_items_doc, "/2/arguments", 3.5),
    (_items_doc, "/4/output", 12),
    (_items_doc, "/1/summary", "s"),
    (_items_doc, "/8/status", 1),
    (_dump_doc, "/agent_sessions", {"session_id": "x"}),
    (_dump_doc, "/agent_sessions/0", "x"),
    (_dump_doc, "/agent_sessions/0/session_id", 5),
    (_dump_doc, "/agent_sessions/0/created_at", ["x"]),
    (_dump_doc, "/agent_messages/0", 1),
    (_dump_doc, "/agent_messages/0/message_data", 1),
    (_dump_doc, "/agent_messages/0/id", 1.5),
    (_dump_doc, "/turn_usage", "x"),
    (_run_state_doc, "/$schemaVersion", 1.21),
    (_run_state_doc, "/model_responses", {"usage": {}}),
    (_run_state_doc, "/model_responses/0", "r"),
    (_run_state_doc, "/current_agent", 5),
    (_run_state_doc, "/original_input", 5),
    (_run_state_doc, "/generated_items", {}),
    (_run_state_doc, "/generated_items/0", "x"),
]


@pytest.mark.parametrize(("make", "path", "value"), WRONG_TYPES)
def test_wrong_types_are_rejected_with_a_json_pointer(make, path, value):
    doc = set_path(make(), path, value)

    assert_wrong_type_at(parse, doc, path)


# Usage is optional data: a shape the adapter cannot read is a warning and no tokens from it
# (never coerced), not a refused document.
UNREADABLE_USAGE = [
    (_dump_doc, "/turn_usage/0/input_tokens", "942"),
    (_dump_doc, "/turn_usage/0/output_tokens_details", 3),
    (_run_state_doc, "/model_responses/0/usage", "x"),
    (_run_state_doc, "/context/usage/input_tokens", "942"),
    (_run_state_doc, "/context/usage/input_tokens_details/0", 7),
]


@pytest.mark.parametrize(("make", "path", "value"), UNREADABLE_USAGE)
def test_unreadable_usage_is_a_warning(make, path, value):
    doc = set_path(make(), path, value)

    parsed = parse(doc)

    assert "unreadable_usage" in codes(parsed)
    assert len(parsed.session.messages) == len(parse(make()).session.messages)


def test_a_token_count_beyond_2_pow_53_is_rejected():
    doc = set_path(_dump_doc(), "/turn_usage/1/total_tokens", 2**53)

    assert rejection(parse, doc) == ("out_of_range", "/turn_usage/1/total_tokens")


def test_a_negative_token_count_is_clamped_to_zero_and_flagged():
    doc = set_path(_dump_doc(), "/turn_usage/1/total_tokens", -1)

    parsed = parse(doc)

    assert "impossible_token_count" in codes(parsed)
    assert parsed.session.steps[1].state["usage"]["total"] == 0


@pytest.mark.parametrize("doc", ["items", 3, None])
def test_scalar_documents_are_rejected(doc):
    with pytest.raises(InvalidDocument):
        parse(doc)


def test_a_forced_object_without_items_says_what_is_missing():
    with pytest.raises(InvalidDocument) as raised:
        registry.parse_document({"id": "x"}, format_id="openai_agents")
    assert (raised.value.code, raised.value.path) == ("missing_field", "/items")


# ------------------------------------------------------------------------ through the API


@pytest.mark.django_db
def test_api_ingests_an_envelope_and_a_run_state(api):
    envelope = manifest_entry("openai_agents/session_items_envelope.json")
    body = ingest(api, load(envelope["path"]), "openai_agents")
    assert body["external_id"] == envelope["expected"]["external_id"]
    assert body["detected_by"].startswith("rule 7:")
    assert body["summary"]["message_count"] == envelope["expected"]["messages"]

    run_state = manifest_entry("openai_agents/run_state_tools.json")
    body = ingest(api, load(run_state["path"]), "openai_agents")
    assert body["external_id"].startswith("sha256:")
    assert body["summary"]["total_tokens"] == run_state["expected"]["tokens"]["total"]
    assert body["summary"]["tool_error_count"] == 0  # heuristic verdicts are not counted

    timeline = api.get(f"/sessions/{body['id']}/timeline").json()
    texts = json.dumps(timeline, ensure_ascii=False)
    assert "Morgen in 東京" in texts


@pytest.mark.django_db
def test_api_refuses_a_dump_with_several_sessions_and_says_what_to_do(api):
    assert_refuses_several_sessions(api, load("openai_agents/sqlite_session_dump.json"))
