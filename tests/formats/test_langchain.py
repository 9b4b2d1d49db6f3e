"""The langchain adapter: detection (rules 8, 12-14), mapping and bad input.

The fixtures come from the real libraries (tests/fixtures/generate/); their expected counts are
read from tests/fixtures/manifest.json. Checkpoint ids, created_at and ToolMessage ids change
between generator runs, so none of them is hard-coded here.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from helpers import (
    FIXTURES,
    JSON_VALUES,
    NON_ASCII,
    ODD_SHAPE_SETTINGS,
    SCRIPT,
    assert_odd_shape_is_handled,
    assert_wrong_type_at,
    codes,
    ingest,
    load,
    manifest_entries,
    other_format_fixtures,
    rejection,
    set_path,
    strings_in,
)
from hypothesis import given
from hypothesis import strategies as st

from sessions_api.domain import (
    LogLevel,
    Role,
    SessionStatus,
    StatusSource,
    TokenSource,
    ToolStatus,
)
from sessions_api.formats import registry
from sessions_api.formats.base import InvalidDocument
from sessions_api.formats.langchain import parse as langchain
from sessions_api.formats.pairing import count_recorded_tool_errors
from sessions_api.sessions.timeline import build_timeline

ENTRIES = {e["path"]: e for e in manifest_entries("langchain")}
# fixture -> (detection rule, variant)
SHAPES = {
    "langchain/messages_to_dict.json": (12, "messages_to_dict"),
    "langchain/model_dump.json": (14, "model_dump"),
    "langchain/dumpd.json": (13, "dumpd"),
    "langchain/content_blocks_envelope.json": (12, "messages_to_dict"),
    "langchain/thread_state.json": (8, "thread-state"),
    "langchain/thread_state_task_error.json": (8, "thread-state"),
    "langchain/state_history.json": (8, "state-history"),
}

parse = langchain.ADAPTER.parse


def text_blocks(message) -> list[str]:
    parts = message.content_parts
    if isinstance(parts, list):
        return [b["text"] for b in parts if isinstance(b, dict) and isinstance(b.get("text"), str)]
    return [message.content_text] if message.content_text else []


def assert_every_text_in_timeline(session) -> None:
    timeline_strings = set(strings_in(build_timeline(session)))
    for message in session.messages:
        if message.content_text:
            assert message.content_text in timeline_strings or all(
                block in timeline_strings for block in text_blocks(message)
            ), f"message #{message.seq} text is not in the timeline"


def fixture_ids() -> list[str]:
    assert set(ENTRIES) == set(SHAPES), "manifest and this test disagree on the fixtures"
    return sorted(ENTRIES)


# ------------------------------------------------------------------- fixtures from the library


@pytest.mark.parametrize("path", fixture_ids())
def test_fixture_is_detected_as_langchain_by_its_rule(path):
    doc = load(path)
    rule, variant = SHAPES[path]

    detection = registry.detect_format(doc)
    forced_detection, parsed = registry.parse_document(doc)

    assert (detection.format_id, detection.variant) == ("langchain", variant)
    assert detection.rule.startswith(f"rule {rule}:")
    assert forced_detection == detection
    assert parsed.session.source_format == "langchain"
    assert parsed.session.format_variant == variant


@pytest.mark.parametrize("path", fixture_ids())
def test_fixture_counts_match_the_manifest(path):
    expected = ENTRIES[path]["expected"]
    session = registry.parse_document(load(path))[1].session
    valid = [c for c in session.tool_calls if c.arguments_error is None]
    invalid = [c for c in session.tool_calls if c.arguments_error is not None]

    assert len(session.messages) == expected["messages"]
    assert Counter(m.role.value for m in session.messages) == expected["roles"]
    assert [m.seq for m in session.messages] == list(range(expected["messages"]))
    assert len(valid) == expected["tool_calls"]
    assert len(invalid) == expected["invalid_tool_calls"]
    assert sum(m.role is Role.TOOL for m in session.messages) == expected["tool_results"]
    assert count_recorded_tool_errors(session.messages) == expected["tool_errors"]
    assert (session.messages[0].role is Role.SYSTEM) is expected["has_system_prompt"]


@pytest.mark.parametrize("path", fixture_ids())
def test_fixture_tokens_are_the_sum_of_usage_metadata(path):
    expected = ENTRIES[path]["expected"]["tokens"]
    tokens = registry.parse_document(load(path))[1].session.tokens

    assert {"input": tokens.input, "output": tokens.output, "total": tokens.total} == expected
    assert tokens.source is TokenSource.SUMMED


@pytest.mark.parametrize("path", fixture_ids())
def test_fixture_tool_calls_pair_with_their_results_by_id(path):
    expected = ENTRIES[path]["expected"]
    session = registry.parse_document(load(path))[1].session
    by_seq = {m.seq: m for m in session.messages}
    paired = [c for c in session.tool_calls if c.result_seq is not None]

    for call in paired:
        result = by_seq[call.result_seq]
        assert result.role is Role.TOOL
        assert result.tool_call_id == call.call_id
        assert call.status_source in (StatusSource.EXPLICIT, StatusSource.CONVENTION)
        assert call.status is result.tool_status
    assert len(paired) == expected["tool_results"]
    pending = [c for c in session.tool_calls if c.status is ToolStatus.PENDING]
    assert len(pending) == expected.get("unpaired_tool_calls", 0)


@pytest.mark.parametrize("path", fixture_ids())
def test_fixture_session_id_is_the_thread_or_envelope_id(path):
    expected = ENTRIES[path]["expected"]
    session = registry.parse_document(load(path))[1].session

    assert session.external_id == (expected.get("external_id") or expected.get("thread_id"))


@pytest.mark.parametrize("path", fixture_ids())
def test_fixture_text_survives_verbatim_and_is_in_the_timeline(path):
    entry = ENTRIES[path]
    doc = load(path)
    session = registry.parse_document(doc)[1].session
    texts = [m.content_text for m in session.messages]
    document_strings = set(strings_in(doc))

    assert_every_text_in_timeline(session)
    if entry["coverage"]["non_ascii"]:
        assert any(not text.isascii() for text in texts)
        if any(NON_ASCII in string for string in document_strings):
            assert any(NON_ASCII in text for text in texts)
    if entry["coverage"]["script_markup"]:
        assert any(SCRIPT in text for text in texts)
    if entry["coverage"]["message_over_5kb"]:
        longest = max(texts, key=len)
        assert len(longest.encode("utf-8")) > 5 * 1024
        assert longest in document_strings  # byte for byte what the library wrote
        assert "<img src=x onerror=alert(1)>" in longest


def test_the_three_serialisations_give_the_same_messages():
    sessions = [
        parse(load(f"langchain/{name}.json")).session
        for name in ("messages_to_dict", "model_dump", "dumpd")
    ]
    shapes = [
        [
            (m.role, m.content_text, m.external_id, m.model, m.tokens, m.tool_calls)
            for m in session.messages
        ]
        for session in sessions
    ]
    assert shapes[0] == shapes[1] == shapes[2]


# ------------------------------------------------------------------------- message mapping


def test_message_fields_map_onto_the_canonical_message():
    session = parse(load("langchain/model_dump.json")).session
    system, human, ai, weather, hotel = session.messages[:5]

    assert (system.role, system.external_id) == (Role.SYSTEM, "sys-0001")
    assert human.role is Role.USER and human.content_text.startswith(NON_ASCII)
    assert ai.role is Role.ASSISTANT
    assert ai.model == "gpt-4o-mini-2024-07-18"
    assert ai.finish_reason == "tool_calls"
    assert ai.tokens.input == 412 and ai.tokens.output == 58 and ai.tokens.total == 470
    assert ai.extra["response_metadata"] == {
        "system_fingerprint": "fp_0aa8d3e20b",
        "model_provider": "openai",
    }
    assert (weather.author, weather.tool_call_id) == ("get_weather", "call_weather_01")
    assert hotel.tool_status is ToolStatus.ERROR
    assert all(m.timestamp is None for m in session.messages)
    assert session.models == ["gpt-4o-mini-2024-07-18"]


def test_explicit_tool_status_pairs_without_the_text_heuristic():
    session = parse(load("langchain/messages_to_dict.json")).session
    weather, hotel = session.messages[2].tool_calls

    assert (weather.status, weather.status_source) == (ToolStatus.SUCCESS, StatusSource.EXPLICIT)
    assert (hotel.status, hotel.status_source) == (ToolStatus.ERROR, StatusSource.EXPLICIT)
    assert hotel.result_content.startswith("Error: RuntimeError('No rooms left in 東京")


def test_invalid_tool_calls_are_shown_as_calls_that_failed_to_parse():
    parsed = parse(load("langchain/model_dump.json"))
    (call,) = parsed.session.messages[7].tool_calls

    assert (call.call_id, call.name) == ("call_save_03", "save_itinerary")
    assert call.arguments == '{"days": 7, "title": "Tōkyō'
    assert "are not valid JSON" in call.arguments_error
    # It never ran: not pending, and not a recorded tool error.
    assert (call.status, call.status_source) == (ToolStatus.UNKNOWN, StatusSource.NONE)
    assert [(w.code, w.path) for w in parsed.warnings] == [
        ("invalid_tool_call", "/7/invalid_tool_calls/0")
    ]


def test_an_invalid_tool_call_answered_by_a_tool_message_is_paired():
    doc = [
        {
            "type": "ai",
            "content": "",
            "tool_calls": [],
            "invalid_tool_calls": [
                {"type": "invalid_tool_call", "id": "c1", "name": "f", "args": "{", "error": "bad"}
            ],
        },
        {"type": "tool", "content": "Error: bad args", "tool_call_id": "c1", "status": "error"},
    ]
    parsed = parse(doc)
    (call,) = parsed.session.messages[0].tool_calls

    assert (call.status, call.result_seq, call.arguments_error) == (ToolStatus.ERROR, 1, "bad")
    assert codes(parsed) == ["invalid_tool_call"]


def test_content_blocks_envelope():
    parsed = parse(load("langchain/content_blocks_envelope.json"))
    session = parsed.session
    system, human, ai, tool = session.messages[:4]

    assert parsed.warnings == ()
    assert system.content_text.startswith("You are Voyager")
    assert [b["type"] for b in human.content_parts] == ["text", "image_url"]
    # thinking stays a structured part; only text blocks make the text.
    assert [b["type"] for b in ai.content_parts] == ["thinking", "text", "tool_use"]
    assert ai.content_text == "Ich schaue mir das Foto an."
    # The tool_use block repeats tool_calls[0]: one call, not two.
    assert [c.call_id for c in ai.tool_calls] == ["toolu_01A"]
    assert ai.model == "claude-sonnet-4-5-20250929"
    assert ai.finish_reason == "tool_use"
    assert (ai.tokens.cached, ai.tokens.cache_write) == (1024, 200)
    assert tool.extra["artifact"] == {"labels": ["torii", "shrine"], "confidence": 0.93}
    assert ai.tool_calls[0].result_content == [
        {"type": "text", "text": "A torii gate at Meiji Jingū (明治神宮)."}
    ]
    assert session.tokens.cached == 1024 and session.tokens.cache_write == 200


def test_tool_use_block_missing_from_tool_calls_becomes_a_call_with_a_warning():
    doc = [
        {
            "type": "ai",
            "content": [{"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"a": 1}}],
            "tool_calls": [],
        },
        {"type": "tool", "content": "ok", "tool_call_id": "toolu_9"},
    ]
    parsed = parse(doc)
    (call,) = parsed.session.messages[0].tool_calls

    assert (call.call_id, call.arguments, call.result_seq) == ("toolu_9", {"a": 1}, 1)
    assert [(w.code, w.path) for w in parsed.warnings] == [
        ("tool_call_only_in_content", "/0/content/0")
    ]


def test_legacy_additional_kwargs_tool_calls_are_read_when_tool_calls_is_absent():
    raw_call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    doc = [
        {"type": "ai", "content": "", "additional_kwargs": {"tool_calls": [raw_call]}},
        {"type": "tool", "content": "done", "tool_call_id": "call_1"},
    ]
    session = parse(doc).session
    (call,) = session.messages[0].tool_calls

    assert (call.call_id, call.name, call.arguments, call.result_seq) == ("call_1", "f", {}, 1)
    assert session.messages[0].extra["additional_kwargs"] == {"tool_calls": [raw_call]}


@pytest.mark.parametrize(
    ("status", "content", "expected", "warning"),
    [
        (None, "42", (ToolStatus.SUCCESS, StatusSource.EXPLICIT), None),
        (
            None,
            "Error: ValueError('x')\n Please fix your mistakes.",
            (ToolStatus.ERROR, StatusSource.CONVENTION),
            None,
        ),
        (
            None,
            "Error: lookup is not a valid tool, try one of [get_weather].",
            (ToolStatus.ERROR, StatusSource.CONVENTION),
            None,
        ),
        (
            "success",
            "Error: ValueError('x')\n Please fix your mistakes.",
            (ToolStatus.SUCCESS, StatusSource.EXPLICIT),
            "error_text_with_success_status",
        ),
        ("error", "boom", (ToolStatus.ERROR, StatusSource.EXPLICIT), None),
        ("exploded", "boom", (ToolStatus.UNKNOWN, StatusSource.NONE), "unknown_tool_status"),
    ],
    ids=["default", "toolnode-error", "toolnode-bad-tool", "success-over-text", "error", "odd"],
)
def test_tool_status(status, content, expected, warning):
    tool = {"type": "tool", "content": content, "tool_call_id": "c1"}
    if status is not None:
        tool["status"] = status
    doc = [{"type": "ai", "content": "", "tool_calls": [{"name": "f", "args": {}, "id": "c1"}]}]
    parsed = parse([*doc, tool])
    (call,) = parsed.session.messages[0].tool_calls

    assert (call.status, call.status_source) == expected
    assert codes(parsed) == ([warning] if warning else [])


def test_chat_function_remove_and_unknown_types():
    doc = [
        {"type": "chat", "role": "critic", "content": "meh"},
        {"type": "chat", "role": "assistant", "content": "fine"},
        {"type": "function", "name": "legacy", "content": "{}"},
        {"type": "remove", "content": "", "id": "m-1"},
        {"type": "AIMessageChunk", "content": "partial"},
        {"type": "narrator", "content": "Once upon a time"},
    ]
    parsed = parse(doc)
    roles = [(m.role, m.raw_role) for m in parsed.session.messages]

    assert roles == [
        (Role.OTHER, "critic"),
        (Role.ASSISTANT, "assistant"),
        (Role.TOOL, "function"),
        (Role.OTHER, "remove"),
        (Role.ASSISTANT, "AIMessageChunk"),
        (Role.OTHER, "narrator"),
    ]
    assert codes(parsed) == ["unknown_role", "remove_message", "unknown_role"]


def test_unknown_message_keys_are_kept_in_extra():
    doc = [{"type": "human", "content": "hi", "example": False, "feedback": {"up": True}}]
    message = parse(doc).session.messages[0]

    assert message.extra == {"feedback": {"up": True}}


def test_messages_to_dict_type_mismatch_warns_and_the_outer_type_wins():
    doc = [{"type": "human", "data": {"type": "ai", "content": "hi"}}]
    parsed = parse(doc)

    assert parsed.session.messages[0].role is Role.USER
    assert [(w.code, w.path) for w in parsed.warnings] == [("type_mismatch", "/0/data/type")]


def test_dumpd_entry_that_is_not_a_message_is_kept_with_a_warning():
    entry = {"lc": 1, "type": "not_implemented", "id": ["x", "Thing"], "repr": "Thing()"}
    doc = [
        {"lc": 1, "type": "constructor", "id": ["m", "HumanMessage"], "kwargs": {"content": "a"}}
    ]
    parsed = parse([*doc, entry])

    assert parsed.session.messages[1].content_parts == entry
    assert parsed.session.messages[1].role is Role.OTHER
    assert codes(parsed) == ["not_a_message"]


def test_a_bare_list_has_no_session_id():
    assert parse(load("langchain/model_dump.json")).session.external_id is None


def test_the_envelope_maps_onto_the_session():
    doc = {
        "session_id": "s-1",
        "user_id": "u-1",
        "title": "Trip",
        "app": "planner",
        "messages": [{"type": "human", "data": {"content": "hi"}}],
    }
    session = parse(doc).session

    assert (session.external_id, session.user_id, session.title) == ("s-1", "u-1", "Trip")
    assert session.metadata == {"envelope_extra": {"app": "planner"}}


def test_parse_does_not_change_the_document():
    doc = load("langchain/state_history.json")
    before = copy.deepcopy(doc)
    parse(doc)
    assert doc == before


# ------------------------------------------------------------------------- LangGraph state


def test_thread_state_session():
    session = parse(load("langchain/thread_state.json")).session
    (step,) = session.steps

    assert session.status is SessionStatus.UNKNOWN  # next is empty
    assert session.updated_at is not None and session.created_at is None
    assert step.name == "step 9 (loop)"
    assert step.is_active is True
    assert step.state["next"] == []
    assert session.metadata["checkpoint"]["thread_id"] == "lc-thread-trip-0001"
    assert session.state is None  # no channel besides messages


def test_failed_task_makes_the_session_an_error_and_logs_it():
    parsed = parse(load("langchain/thread_state_task_error.json"))
    session = parsed.session
    (log,) = session.logs
    (call,) = session.tool_calls

    assert session.status is SessionStatus.ERROR
    assert log.level is LogLevel.ERROR
    assert "No rooms left in Zürich" in log.message
    assert call.status is ToolStatus.PENDING
    assert codes(parsed) == ["tool_call_without_result"]
    assert session.steps[0].state["failed_tasks"][0]["name"] == "tools"


def test_state_history_uses_the_newest_state_and_reports_every_step():
    expected = ENTRIES["langchain/state_history.json"]["expected"]
    doc = load("langchain/state_history.json")
    session = parse(doc).session

    assert len(session.steps) == expected["states"]
    assert [s.state["step"] for s in session.steps] == sorted(expected["steps"])
    assert [s.is_active for s in session.steps] == [False] * (expected["states"] - 1) + [True]
    assert [s.name for s in session.steps[:4]] == [
        "step -1 (input)",
        "step 0: __start__",
        "step 1: agent",
        "step 2: tools",
    ]
    assert session.metadata["history_states"] == expected["states"]
    assert session.updated_at > session.created_at
    # Messages are attributed to the step that wrote them.
    assert session.messages[2].step == "step 1: agent"
    assert session.messages[3].step == "step 2: tools"


def test_state_history_oldest_first_is_read_with_a_warning():
    doc = list(reversed(load("langchain/state_history.json")))
    parsed = parse(doc)

    assert len(parsed.session.messages) == 10
    assert parsed.session.steps[-1].is_active
    assert "history_oldest_first" in codes(parsed)


def test_history_messages_missing_from_the_newest_state_are_reported():
    doc = load("langchain/state_history.json")
    del doc[0]["values"]["messages"][1]  # human-0001, present since step 0
    parsed = parse(doc)

    assert len(parsed.session.messages) == 9
    assert "history_messages_not_in_latest" in codes(parsed)


def _state(**overrides: Any) -> dict[str, Any]:
    state = {
        "values": {"messages": [{"type": "human", "content": "hi", "id": "h1"}], "plan": [1, 2]},
        "next": [],
        "tasks": [],
        "metadata": {"source": "loop", "step": 2, "user_id": "u-9", "graph_id": "trip"},
        "created_at": "2026-11-21T10:00:00+00:00",
        "checkpoint": {"thread_id": "t-1", "checkpoint_ns": "", "checkpoint_id": "c-2"},
        "parent_checkpoint": None,
        "interrupts": [],
    }
    state.update(overrides)
    return state


def test_thread_state_envelope_fields():
    session = parse(_state()).session

    assert (session.external_id, session.user_id, session.agent_name) == ("t-1", "u-9", "trip")
    assert session.state == {"plan": [1, 2]}


def test_interrupts_mean_running_and_are_logged():
    doc = _state(
        next=["human_review"],
        tasks=[
            {"id": "t", "name": "human_review", "error": None, "interrupts": [{"value": "OK?"}]}
        ],
    )
    session = parse(doc).session

    assert session.status is SessionStatus.RUNNING
    assert [(e.level, e.message) for e in session.logs] == [
        (LogLevel.EVENT, "interrupted in task human_review: OK?")
    ]


def test_state_snapshot_with_config_instead_of_checkpoint():
    doc = _state(config={"configurable": {"thread_id": "t-cfg", "checkpoint_id": "c"}})
    del doc["checkpoint"]

    detection = registry.detect_format(doc)
    assert (detection.format_id, detection.variant) == ("langchain", "thread-state")
    assert parse(doc).session.external_id == "t-cfg"


def test_message_graph_state_whose_values_are_the_messages():
    doc = _state(values=[{"type": "human", "content": "hi"}, {"type": "ai", "content": "yo"}])
    session = parse(doc).session

    assert [m.content_text for m in session.messages] == ["hi", "yo"]
    assert session.state is None


def test_old_metadata_writes_name_the_step():
    doc = _state(metadata={"source": "loop", "step": 3, "writes": {"agent": {"messages": []}}})
    assert parse(doc).session.steps[0].name == "step 3: agent"


def test_bad_created_at_is_a_warning():
    parsed = parse(_state(created_at="0000-00-00"))

    assert parsed.session.updated_at is None
    assert [(w.code, w.path) for w in parsed.warnings] == [("bad_timestamp", "/created_at")]


# ------------------------------------------------------------------------------- detection


def test_rules_are_numbered_as_in_formats_md():
    assert sorted({r.number for r in langchain.ADAPTER.rules}) == [8, 12, 13, 14]
    assert {r.format_id for r in langchain.ADAPTER.rules} == {"langchain"}


def _other_format_fixtures() -> list[str]:
    paths = other_format_fixtures("langchain")
    paths += [f"openai_chat/{p.name}" for p in sorted((FIXTURES / "openai_chat").glob("*.json"))]
    return sorted(set(paths))


@pytest.mark.parametrize("path", _other_format_fixtures())
def test_other_formats_fixtures_are_never_langchain(path):
    doc = load(path)
    assert langchain.sniff_variant(doc) is None
    try:
        detected = registry.detect_format(doc).format_id
    except registry.UnknownFormat:
        detected = None  # that format's adapter is not installed: still not ours
    assert detected != "langchain"


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"messages": []},
        [{"role": "user", "content": "hi"}],
        [{"type": "message", "role": "user", "content": "hi"}],
        [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}],
        [{"type": "human", "content": "hi"}, {"role": "user", "content": "mixed"}],
        [{"type": "human"}],
        {"values": {}, "next": []},
        {"runStatus": "running", "flows": [], "log": [], "error": [], "warn": []},
        [{"lc": True, "type": "constructor", "id": ["AIMessage"], "kwargs": {}}],
    ],
    ids=[
        "empty-list",
        "empty-messages",
        "openai-roles",
        "responses-message-items",
        "responses-function-call",
        "mixed-shapes",
        "no-content",
        "values-next-only",
        "picoflow",
        "lc-true-is-not-1",
    ],
)
def test_documents_that_are_not_langchain(doc):
    assert langchain.sniff_variant(doc) is None
    assert not any(rule.matches(doc) for rule in langchain.ADAPTER.rules)


def test_langchain_lists_under_messages_are_claimed_before_rule_15():
    # content_blocks_envelope.json holds Anthropic tool_use blocks: rule 12 comes first.
    detection = registry.detect_format(load("langchain/content_blocks_envelope.json"))
    assert detection.rule.startswith("rule 12:")


def test_a_mixed_list_parses_when_forced():
    doc = [
        {"type": "human", "data": {"content": "a"}},
        {"type": "ai", "content": "b"},
        {"lc": 1, "type": "constructor", "id": ["m", "HumanMessage"], "kwargs": {"content": "c"}},
    ]
    _, parsed = registry.parse_document(doc, format_id="langchain")

    assert [m.content_text for m in parsed.session.messages] == ["a", "b", "c"]


# ------------------------------------------------------------------------------- bad input


MODEL_DUMP_WRONG_TYPES = [
    ("/0", "hello"),
    ("/0/type", 5),
    ("/0/content", 42),
    ("/1/content/0", 7),
    ("/1/content/0/text", ["x"]),
    ("/0/id", ["sys-0001"]),
    ("/0/name", 1),
    ("/0/additional_kwargs", "x"),
    ("/2/response_metadata", []),
    ("/2/response_metadata/model_name", 4),
    ("/2/tool_calls", {"id": "c"}),
    ("/2/tool_calls/0", "call"),
    ("/2/tool_calls/0/id", 1),
    ("/2/tool_calls/0/name", 1),
    ("/2/tool_calls/0/args", "{}"),
    ("/2/invalid_tool_calls", "x"),
    ("/3/tool_call_id", 9),
    ("/3/status", False),
]

# usage_metadata is optional data: a shape the adapter cannot read is a warning and no tokens
# for that message (never coerced), not a refused document.
UNREADABLE_USAGE = [
    ("/2/usage_metadata", "470"),
    ("/2/usage_metadata/input_tokens", "412"),
    ("/2/usage_metadata/total_tokens", True),
    ("/2/usage_metadata/input_token_details", 0),
    ("/2/usage_metadata/input_token_details/cache_read", 1.5),
]


@pytest.mark.parametrize(("path", "value"), UNREADABLE_USAGE)
def test_unreadable_usage_is_a_warning_and_no_tokens_for_that_message(path, value):
    doc = set_path(_model_dump_doc(), path, value)

    parsed = parse(doc)

    assert codes(parsed) == ["unreadable_usage"]
    assert parsed.warnings[0].path.startswith("/2/usage_metadata")
    assert parsed.session.messages[2].tokens is None
    assert len(parsed.session.messages) == 5


def _model_dump_doc() -> list[dict[str, Any]]:
    doc = load("langchain/model_dump.json")[:5]
    doc[1]["content"] = [{"type": "text", "text": "hi"}]
    return doc


@pytest.mark.parametrize(("path", "value"), MODEL_DUMP_WRONG_TYPES)
def test_wrong_types_are_rejected_with_a_json_pointer(path, value):
    doc = set_path(_model_dump_doc(), path, value)

    assert_wrong_type_at(parse, doc, path)


@pytest.mark.parametrize(
    ("fixture", "path", "value"),
    [
        ("langchain/messages_to_dict.json", "/0/data", "x"),
        ("langchain/messages_to_dict.json", "/0/type", 3),
        ("langchain/messages_to_dict.json", "/2/data/tool_calls/0/args", [1]),
        ("langchain/dumpd.json", "/0/kwargs", []),
        ("langchain/dumpd.json", "/0/id/1", 5),
        ("langchain/thread_state.json", "/values", "x"),
        ("langchain/thread_state.json", "/next", "tools"),
        ("langchain/thread_state_task_error.json", "/next/0", 1),
        ("langchain/thread_state_task_error.json", "/tasks/0/error", {"e": 1}),
        ("langchain/thread_state.json", "/tasks", {}),
        ("langchain/thread_state.json", "/metadata", []),
        ("langchain/thread_state.json", "/metadata/step", "9"),
        ("langchain/thread_state.json", "/checkpoint", "c"),
        ("langchain/thread_state.json", "/checkpoint/thread_id", 7),
        ("langchain/thread_state.json", "/created_at", 1700000000),
        ("langchain/thread_state.json", "/values/messages/1/content", 3),
        ("langchain/state_history.json", "/3/values/messages", {}),
        ("langchain/state_history.json", "/0/values/messages/2/tool_calls/0/id", 1),
        ("langchain/content_blocks_envelope.json", "/session_id", 12),
        ("langchain/content_blocks_envelope.json", "/messages", {}),
    ],
)
def test_wrong_types_in_every_shape_have_their_paths(fixture, path, value):
    doc = set_path(load(fixture), path, value)

    assert rejection(parse, doc) == ("wrong_type", path)


def test_a_message_without_a_type_is_rejected():
    assert rejection(parse, [{"type": "human", "content": "a"}, {"content": "b"}]) == (
        "missing_field",
        "/1/type",
    )


def test_a_token_count_beyond_2_pow_53_is_rejected():
    doc = set_path(_model_dump_doc(), "/2/usage_metadata/output_tokens", 2**53)

    assert rejection(parse, doc) == (
        "out_of_range",
        "/2/usage_metadata/output_tokens",
    )


def test_a_negative_token_count_is_clamped_to_zero_and_flagged():
    doc = set_path(_model_dump_doc(), "/2/usage_metadata/output_tokens", -1)

    parsed = parse(doc)

    assert codes(parsed) == ["impossible_token_count"]
    assert parsed.session.messages[2].tokens.output == 0


@pytest.mark.parametrize("doc", ["text", 3, None, True])
def test_scalar_documents_are_rejected(doc):
    assert rejection(parse, doc) == ("wrong_type", "")


def test_an_envelope_without_messages_is_rejected_when_forced():
    with pytest.raises(InvalidDocument) as raised:
        registry.parse_document({"session_id": "x"}, format_id="langchain")
    assert (raised.value.code, raised.value.path) == ("missing_field", "/messages")


def test_a_state_without_messages_is_an_empty_session_with_a_warning():
    parsed = parse(_state(values={"plan": []}))

    assert parsed.session.messages == ()
    assert codes(parsed) == ["no_messages"]


def test_tool_message_without_call_id_and_call_without_id_warn():
    doc = [
        {"type": "ai", "content": "", "tool_calls": [{"name": "f", "args": {}}]},
        {"type": "tool", "content": "x"},
    ]
    parsed = parse(doc)

    assert parsed.session.messages[0].tool_calls[0].call_id == "tool_call:0:0"
    assert codes(parsed) == [
        "missing_tool_call_id",
        "tool_result_without_call_id",
        "tool_call_without_result",
    ]


TYPES = st.sampled_from(["human", "ai", "tool", "system", "chat", "remove", "x"])
FIELDS = st.sampled_from(
    ["content", "tool_calls", "invalid_tool_calls", "usage_metadata", "status", "tool_call_id"]
)
MESSAGES = st.builds(
    lambda t, rest: {"type": t, "content": "", **rest},
    TYPES,
    st.dictionaries(FIELDS, JSON_VALUES, max_size=3),
)
DOCUMENTS = (
    JSON_VALUES
    | st.lists(MESSAGES, max_size=4)
    | st.lists(st.builds(lambda t, m: {"type": t, "data": m}, TYPES, MESSAGES), max_size=3)
    | st.builds(
        lambda msgs, nxt, tasks: {"values": {"messages": msgs}, "next": nxt, "tasks": tasks},
        st.lists(MESSAGES, max_size=3),
        JSON_VALUES,
        JSON_VALUES,
    )
)


@ODD_SHAPE_SETTINGS
@given(DOCUMENTS)
def test_odd_shapes_never_crash_detection_or_parsing(doc):
    assert_odd_shape_is_handled(langchain.ADAPTER, doc)


# -------------------------------------------------------------------------------- the API


@pytest.mark.django_db
def test_thread_state_is_ingested_through_the_api(api):
    expected = ENTRIES["langchain/thread_state.json"]["expected"]

    answer = ingest(api, (FIXTURES / "langchain/thread_state.json").read_bytes(), "langchain")

    summary = answer["summary"]
    assert answer["external_id"] == expected["thread_id"]
    assert summary["message_count"] == expected["messages"]
    assert summary["tool_call_count"] == expected["tool_calls"] + expected["invalid_tool_calls"]
    assert summary["tool_error_count"] == expected["tool_errors"]
    assert (summary["input_tokens"], summary["output_tokens"], summary["total_tokens"]) == (
        expected["tokens"]["input"],
        expected["tokens"]["output"],
        expected["tokens"]["total"],
    )
    assert summary["models"] == ["gpt-4o-mini-2024-07-18"]
    assert [w["code"] for w in answer["warnings"]] == ["invalid_tool_call"]


@pytest.mark.django_db
def test_a_bare_list_gets_a_stable_derived_id_through_the_api(api):
    body = (FIXTURES / "langchain/dumpd.json").read_bytes()

    first = ingest(api, body, "langchain")
    again = api.post("/sessions", body)

    assert first["external_id"]
    assert again.json()["external_id"] == first["external_id"]
    assert again.json()["changed"] is False
