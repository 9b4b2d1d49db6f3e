"""The openai_chat adapter: detection (rule 16), mapping and bad input."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import helpers
import pytest
from helpers import (
    ODD_SHAPE_SETTINGS,
    assert_odd_shape_is_handled,
    assert_wrong_type_at,
    codes,
    rejection,
    set_path,
)
from hypothesis import given
from hypothesis import strategies as st

from sessions_api.domain import (
    Role,
    SessionStatus,
    StatusSource,
    TimestampSource,
    TokenSource,
    TokenUsage,
    ToolStatus,
)
from sessions_api.formats import registry
from sessions_api.formats.base import InvalidDocument
from sessions_api.formats.openai_chat import parse as openai_chat


def load(name: str) -> Any:
    """A fixture of tests/fixtures/openai_chat by its file name."""
    return helpers.load(f"openai_chat/{name}")


parse = openai_chat.ADAPTER.parse


def minimal_chat(*messages: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    return {"messages": list(messages), **envelope}


PICOFLOW_DOC = {
    "id": "69c03d430daed53aceb358de",
    "runStatus": "completed",
    "flows": [{"name": "HotelFlow", "memory": []}],
    "log": [],
    "error": [],
    "warn": [],
}

ANTHROPIC_TOOL_USE_DOC = {
    "model": "claude-sonnet-4",
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"c": "P"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny"}],
        },
    ],
}


# ------------------------------------------------------------------------------ detection


@pytest.mark.parametrize(
    ("fixture", "variant"),
    [
        ("parallel_tools.json", "chat-completions"),
        ("content_parts.json", "chat-completions"),
        ("legacy_function_call.json", "chat-completions"),
        ("generic_seed.json", "generic"),
        ("responses_usage.json", "generic"),
        ("bare_list.json", "bare-list"),
    ],
)
def test_registry_detects_fixtures_as_openai_chat_with_their_variant(fixture, variant):
    detection = registry.detect_format(load(fixture))

    assert detection.format_id == "openai_chat"
    assert detection.variant == variant
    assert detection.rule.startswith("rule 16:")


def test_parsed_variant_matches_detection():
    assert parse(load("generic_seed.json")).session.format_variant == "generic"
    assert parse(load("bare_list.json")).session.format_variant == "bare-list"
    assert parse(load("parallel_tools.json")).session.format_variant == "chat-completions"


def test_rules_are_numbered_16_and_owned_by_openai_chat():
    assert {rule.number for rule in openai_chat.ADAPTER.rules} == {16}
    assert {rule.format_id for rule in openai_chat.ADAPTER.rules} == {"openai_chat"}
    assert openai_chat.ADAPTER.format_id == "openai_chat"


def _not_openai_chat(doc: Any) -> bool:
    try:
        return registry.detect_format(doc).format_id != "openai_chat"
    except registry.UnknownFormat:
        return True


def test_picoflow_document_is_not_openai_chat():
    assert openai_chat.sniff_variant(PICOFLOW_DOC) is None
    assert _not_openai_chat(PICOFLOW_DOC)


def test_anthropic_tool_use_blocks_are_left_to_rule_15():
    assert openai_chat.sniff_variant(ANTHROPIC_TOOL_USE_DOC) is None
    assert _not_openai_chat(ANTHROPIC_TOOL_USE_DOC)


@pytest.mark.parametrize("block_type", ["tool_result", "thinking"])
def test_other_anthropic_blocks_are_left_to_rule_15(block_type):
    doc = minimal_chat(
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": block_type, "thinking": "hmm"}]},
    )
    assert openai_chat.sniff_variant(doc) is None


def test_top_level_system_without_system_message_is_anthropic():
    doc = minimal_chat({"role": "user", "content": "hi"}, system="Be brief.")
    assert openai_chat.sniff_variant(doc) is None


def test_top_level_system_beside_a_system_message_still_matches():
    doc = minimal_chat(
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}, system="x"
    )
    assert openai_chat.sniff_variant(doc) == "chat-completions"


@pytest.mark.parametrize(
    "doc",
    [
        {"messages": []},
        [],
        {"messages": [{"content": "no role"}]},
        {"messages": [{"role": "user"}, {"role": "critic"}]},
        {"messages": [{"role": "User"}]},
        {"items": [{"role": "user", "content": "hi"}]},
    ],
    ids=["empty", "empty-bare-list", "no-role", "unknown-role", "wrong-case-role", "no-messages"],
)
def test_rule_16_needs_a_known_role_and_only_known_roles(doc):
    assert openai_chat.sniff_variant(doc) is None


@pytest.mark.parametrize(
    "doc",
    [
        None,
        0,
        "messages",
        True,
        [1, 2, 3],
        [None, {"role": None}],
        {"messages": None},
        {"messages": "user"},
        {"messages": {"role": "user"}},
        {"messages": [{"role": 5}]},
        {"messages": [{"role": ["user"]}]},
        {"messages": [{"role": "user", "content": {"type": "tool_use"}}]},
        {"messages": [{"role": "user", "content": [None, 3, ["tool_use"]]}]},
    ],
)
def test_matches_returns_a_bool_and_never_raises_on_odd_shapes(doc):
    for rule in openai_chat.ADAPTER.rules:
        assert rule.matches(doc) in (True, False)


def test_unknown_role_parses_as_other_with_a_warning_when_forced():
    doc = minimal_chat({"role": "user", "content": "hi"}, {"role": "critic", "content": "meh"})

    detection, parsed = registry.parse_document(doc, format_id="openai_chat")

    assert detection.format_id == "openai_chat"
    critic = parsed.session.messages[1]
    assert critic.role is Role.OTHER
    assert critic.raw_role == "critic"
    assert "unknown_role" in codes(parsed)


# ------------------------------------------------------------------- envelope and session


def test_envelope_maps_onto_the_session():
    session = parse(load("parallel_tools.json")).session

    assert session.source_format == "openai_chat"
    assert session.external_id == "conv-weather-0001"
    assert session.user_id == "user-42"
    assert session.created_at == datetime(2026, 11, 21, 16, 0, tzinfo=UTC)
    assert session.status is SessionStatus.UNKNOWN
    assert session.metadata["app"] == "trip-planner"
    # Keys the adapter does not map are kept, not dropped.
    assert session.metadata["envelope_extra"] == {
        "object": "chat.completion",
        "system_fingerprint": "fp_7b3c1e2a90",
    }


def test_envelope_usage_is_reported():
    tokens = parse(load("parallel_tools.json")).session.tokens

    assert tokens == TokenUsage(
        input=812, output=147, total=959, reasoning=0, cached=512, source=TokenSource.REPORTED
    )


def test_session_model_is_put_on_assistant_messages_without_one():
    session = parse(load("parallel_tools.json")).session

    assert session.models == ["gpt-4o-2024-08-06"]
    for message in session.messages:
        expected = "gpt-4o-2024-08-06" if message.role is Role.ASSISTANT else None
        assert message.model == expected


def test_session_id_wins_over_the_completion_id():
    doc = minimal_chat({"role": "user", "content": "hi"}, id="chatcmpl-1", session_id="s-1")
    session = parse(doc).session

    assert session.external_id == "s-1"
    assert session.metadata["envelope_extra"] == {"id": "chatcmpl-1"}


def test_no_id_leaves_external_id_for_the_ingest_service():
    session = parse(load("legacy_function_call.json")).session

    assert session.external_id is None


def test_no_usage_means_unknown_tokens():
    tokens = parse(load("generic_seed.json")).session.tokens

    assert tokens == TokenUsage()
    assert tokens.is_empty


def test_title_iso_created_at_and_non_ascii_session_id():
    session = parse(load("content_parts.json")).session

    assert session.external_id == "sess-ünïcødé-7"
    assert session.title == "Résumé review — 履歴書"
    assert session.created_at == datetime(2026, 11, 20, 9, 15, tzinfo=UTC)


def test_responses_usage_is_summed():
    parsed = parse(load("responses_usage.json"))
    session = parsed.session

    assert session.tokens == TokenUsage(
        input=250, output=50, total=300, reasoning=5, cached=64, source=TokenSource.SUMMED
    )
    assert session.updated_at == datetime(2026, 11, 21, 8, 1, 30, tzinfo=UTC)
    assert session.state == {"ticket": 8812}


def test_per_message_usage_is_summed_when_there_is_no_envelope_usage():
    doc = minimal_chat(
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "a",
            "usage": {"prompt_tokens": 3, "completion_tokens": 1},
        },
        {
            "role": "assistant",
            "content": "b",
            "usage": {"prompt_tokens": 5, "completion_tokens": 2},
        },
    )
    session = parse(doc).session

    assert session.messages[1].tokens == TokenUsage(input=3, output=1)
    assert session.tokens == TokenUsage(input=8, output=3, source=TokenSource.SUMMED)


def test_responses_style_usage_names_are_read():
    doc = minimal_chat(
        {"role": "user", "content": "hi"},
        usage={
            "input_tokens": 10,
            "output_tokens": 4,
            "total_tokens": 14,
            "input_tokens_details": {"cached_tokens": 2},
            "output_tokens_details": {"reasoning_tokens": 1},
        },
    )
    assert parse(doc).session.tokens == TokenUsage(
        input=10, output=4, total=14, cached=2, reasoning=1
    )


def test_generic_seed_shape_maps_agent_to_assistant_and_variables_to_state():
    parsed = parse(load("generic_seed.json"))
    session = parsed.session

    assert session.external_id == "3f1c2a9e-6a0b-4d1e-9d7e-1c2b3a4d5e6f"
    assert session.state == {"ticker": "AAPL", "language": "python", "attempts": 2}
    assert [m.role for m in session.messages] == [Role.USER, Role.ASSISTANT, Role.USER]
    assert session.messages[1].raw_role == "agent"
    assert session.messages[1].content_text == "Here\u2019s a Python function using yfinance..."
    assert parsed.warnings == ()


# ------------------------------------------------------------------------------ messages


def test_messages_keep_document_order_and_text():
    session = parse(load("parallel_tools.json")).session

    assert [m.seq for m in session.messages] == list(range(9))
    assert [m.role for m in session.messages[:3]] == [Role.SYSTEM, Role.USER, Role.ASSISTANT]
    assert session.messages[0].content_text.startswith("You are a travel assistant")
    assert session.messages[5].content_text.startswith("Paris will be sunny (21 °C)")


def test_model_dump_nulls_are_treated_as_absent():
    parsed = parse(load("parallel_tools.json"))
    assistant = parsed.session.messages[2]

    assert assistant.content_text == ""
    assert assistant.content_parts is None
    assert assistant.extra == {}
    # A non-null unknown key is kept.
    assert parsed.session.messages[5].extra == {"annotations": []}


def test_plain_messages_have_no_timestamps():
    session = parse(load("parallel_tools.json")).session

    assert all(m.timestamp is None for m in session.messages)
    assert all(m.timestamp_source is TimestampSource.NONE for m in session.messages)


def test_per_message_timestamps_are_explicit_and_bad_ones_warn():
    parsed = parse(load("responses_usage.json"))
    first, second, third = parsed.session.messages

    assert first.timestamp == datetime(2026, 11, 21, 8, 0, 5, tzinfo=UTC)
    assert first.timestamp_source is TimestampSource.EXPLICIT
    assert second.timestamp == datetime(2026, 11, 21, 8, 0, 10, tzinfo=UTC)
    assert third.timestamp is None
    assert third.timestamp_source is TimestampSource.NONE
    assert [(w.code, w.path) for w in parsed.warnings] == [
        ("bad_timestamp", "/messages/2/timestamp")
    ]


def test_unknown_message_keys_go_to_extra():
    second = parse(load("responses_usage.json")).session.messages[1]

    assert second.extra == {"feedback": {"thumbs": "up"}}
    assert second.finish_reason == "stop"
    assert second.model == "gpt-4o-mini"


def test_content_parts_are_kept_and_their_text_extracted():
    session = parse(load("content_parts.json")).session
    user = session.messages[1]

    assert user.author == "zoë"
    assert [part["type"] for part in user.content_parts] == [
        "text",
        "image_url",
        "input_audio",
        "file",
        "text",
    ]
    assert user.content_text == (
        "Bitte prüfe meinen Lebenslauf 📄 — 日本語も読めますか\uff1f مرحبا\n"
        "<script>alert('pwned')</script>"
    )


def test_markup_is_kept_verbatim_as_text():
    session = parse(load("content_parts.json")).session

    assert "<script>alert('pwned')</script>" in session.messages[1].content_text
    assert session.messages[2].content_text == (
        "Ja. Here is <b>bold</b> advice: <img src=x onerror=alert(1)>"
    )


def test_developer_role_is_a_system_message():
    developer = parse(load("content_parts.json")).session.messages[0]

    assert developer.role is Role.SYSTEM
    assert developer.raw_role == "developer"


def test_refusal_is_the_text_when_there_is_no_content():
    refusal = parse(load("content_parts.json")).session.messages[4]

    assert refusal.content_text == "I can't sign on someone else's behalf."
    assert refusal.extra == {"refusal": "I can't sign on someone else's behalf."}


def test_refusal_content_part_is_shown_as_text():
    doc = minimal_chat(
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
    )
    assert parse(doc).session.messages[1].content_text == "I can't."


def test_a_message_over_5_kb_is_kept_whole():
    big = ("Größe ✓ 大きい " * 600)[:6000]
    doc = minimal_chat({"role": "user", "content": big})
    assert len(big.encode("utf-8")) > 5 * 1024

    assert parse(doc).session.messages[0].content_text == big


def test_structured_object_content_is_kept_as_parts():
    doc = minimal_chat({"role": "assistant", "content": {"answer": 42}})
    message = parse(doc).session.messages[0]

    assert message.content_text == ""
    assert message.content_parts == {"answer": 42}


def test_parse_does_not_change_the_document():
    doc = load("parallel_tools.json")
    before = copy.deepcopy(doc)

    parse(doc)

    assert doc == before


# ---------------------------------------------------------------------------- tool calls


def test_parallel_tool_calls_pair_with_later_results_by_id():
    session = parse(load("parallel_tools.json")).session
    paris, oslo = session.messages[2].tool_calls

    assert (paris.call_id, paris.name) == ("call_paris_01", "get_weather")
    assert paris.arguments == {"city": "Paris", "day": "tomorrow"}
    assert paris.result_seq == 3
    assert paris.result_content == '{"forecast": "sunny", "high_c": 21}'
    assert (paris.status, paris.status_source) == (ToolStatus.SUCCESS, StatusSource.HEURISTIC)
    assert oslo.result_seq == 4


def test_error_looking_result_is_an_error_by_heuristic():
    session = parse(load("parallel_tools.json")).session
    oslo = session.messages[2].tool_calls[1]
    result = session.messages[4]

    assert (oslo.status, oslo.status_source) == (ToolStatus.ERROR, StatusSource.HEURISTIC)
    assert result.role is Role.TOOL
    assert result.tool_call_id == "call_oslo_02"
    assert (result.tool_status, result.tool_status_source) == (
        ToolStatus.ERROR,
        StatusSource.HEURISTIC,
    )


def test_error_text_inside_content_parts_is_also_an_error():
    sqrt = parse(load("bare_list.json")).session.messages[2].tool_calls[1]

    assert (sqrt.status, sqrt.status_source) == (ToolStatus.ERROR, StatusSource.HEURISTIC)


def test_unpaired_call_is_pending_and_orphan_result_warns():
    parsed = parse(load("parallel_tools.json"))
    train = parsed.session.messages[7].tool_calls[0]
    orphan = parsed.session.messages[8]

    assert train.status is ToolStatus.PENDING
    assert train.result_seq is None
    assert orphan.tool_call_id == "call_ghost_99"
    assert orphan.tool_status is None
    assert codes(parsed) == ["unmatched_tool_result", "tool_call_without_result"]


def test_session_lists_every_tool_call():
    session = parse(load("parallel_tools.json")).session

    assert [c.call_id for c in session.tool_calls] == [
        "call_paris_01",
        "call_oslo_02",
        "call_train_03",
    ]


def test_non_json_arguments_are_kept_verbatim_with_a_warning():
    parsed = parse(load("bare_list.json"))
    sqrt = parsed.session.messages[2].tool_calls[1]

    assert sqrt.arguments == "{x: -1"
    assert sqrt.arguments_error
    assert [(w.code, w.path) for w in parsed.warnings] == [
        ("unparseable_tool_arguments", "/2/tool_calls/1/function/arguments")
    ]


@pytest.mark.parametrize(
    ("arguments", "parsed_arguments", "has_error"),
    [
        ('{"n": NaN}', '{"n": NaN}', True),
        ("[" * 100_000, "[" * 100_000, True),
        ("", None, False),
        ({"already": "parsed"}, {"already": "parsed"}, False),
        (None, None, False),
    ],
    ids=["nan", "deep-nesting", "blank", "object", "null"],
)
def test_argument_edge_cases(arguments, parsed_arguments, has_error):
    doc = [
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
            ],
        }
    ]
    call = parse(doc).session.messages[0].tool_calls[0]

    assert call.arguments == parsed_arguments
    assert (call.arguments_error is not None) is has_error


def test_legacy_function_call_pairs_with_the_next_function_message():
    parsed = parse(load("legacy_function_call.json"))
    assistant, result = parsed.session.messages[1], parsed.session.messages[2]
    (call,) = assistant.tool_calls

    assert call.call_id == "function_call:1"
    assert call.name == "convert_currency"
    assert call.arguments == {"amount": 10, "from": "USD", "to": "EUR"}
    assert call.result_seq == 2
    assert call.result_content == "9.21"
    assert (result.role, result.raw_role, result.author) == (
        Role.TOOL,
        "function",
        "convert_currency",
    )
    assert parsed.warnings == ()


def test_legacy_function_result_prefers_the_call_with_its_name():
    doc = minimal_chat(
        {"role": "assistant", "function_call": {"name": "a", "arguments": "{}"}},
        {"role": "assistant", "function_call": {"name": "b", "arguments": "{}"}},
        {"role": "function", "name": "b", "content": "from b"},
    )
    first, second = (m.tool_calls[0] for m in parse(doc).session.messages[:2])

    assert second.result_content == "from b"
    assert first.status is ToolStatus.PENDING


def test_function_message_without_a_call_warns():
    doc = minimal_chat({"role": "function", "name": "f", "content": "x"})

    assert codes(parse(doc)) == ["unmatched_tool_result"]


def test_tool_message_without_call_id_warns():
    doc = minimal_chat({"role": "tool", "content": "x"})

    assert codes(parse(doc)) == ["tool_result_without_call_id"]


def test_tool_call_without_id_gets_a_synthetic_one():
    doc = [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}]
    parsed = parse(doc)

    assert parsed.session.messages[0].tool_calls[0].call_id == "tool_call:0:0"
    assert "missing_tool_call_id" in codes(parsed)


def test_custom_tool_call_keeps_its_free_form_input():
    call = {"id": "c1", "type": "custom", "custom": {"name": "sql", "input": "SELECT 1"}}
    doc = minimal_chat({"role": "assistant", "tool_calls": [call]})
    (parsed_call,) = parse(doc).session.messages[0].tool_calls

    assert (parsed_call.name, parsed_call.arguments) == ("sql", "SELECT 1")
    assert parsed_call.arguments_error is None


def test_duplicate_call_ids_warn():
    call = {"id": "dup", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    doc = minimal_chat({"role": "assistant", "tool_calls": [call, call]})

    assert "duplicate_tool_call_id" in codes(parse(doc))


# ------------------------------------------------------------------------------ bad input


def _base_doc() -> dict[str, Any]:
    return {
        "id": "s1",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


WRONG_TYPES = [
    ("/messages", {"role": "user"}),
    ("/messages/1", "hello"),
    ("/messages/0/role", 5),
    ("/messages/0/content", 42),
    ("/messages/1/content/0", 7),
    ("/messages/1/content/0/text", ["hi"]),
    ("/messages/1/name", {"first": "x"}),
    ("/messages/2/tool_calls", {"id": "c1"}),
    ("/messages/2/tool_calls/0", "c1"),
    ("/messages/2/tool_calls/0/id", 1),
    ("/messages/2/tool_calls/0/function", "f"),
    ("/messages/2/tool_calls/0/function/name", 123),
    ("/messages/2/tool_calls/0/function/arguments", 3.5),
    ("/messages/2/tool_calls/0/function/arguments", ["a"]),
    ("/messages/3/tool_call_id", 99),
    ("/messages/2/function_call", "f"),
    ("/id", ["s1"]),
    ("/user", 42),
    ("/model", {"name": "gpt"}),
    ("/metadata", "meta"),
    ("/variables", ["a"]),
    ("/responses", {"usage": {}}),
]

# Usage is optional data: a usage in a shape the adapter cannot read is a warning and no tokens
# (never coerced: "451" is not read as 451), not a refused document.
UNREADABLE_USAGE = [
    ("/usage", "2"),
    ("/usage/prompt_tokens", "451"),
    ("/usage/total_tokens", True),
    ("/usage/prompt_tokens_details", 5),
]


@pytest.mark.parametrize(("path", "value"), WRONG_TYPES)
def test_wrong_types_are_rejected_with_a_json_pointer(path, value):
    doc = set_path(_base_doc(), path, value)

    assert_wrong_type_at(parse, doc, path)


def test_wrong_type_inside_a_bare_list_has_an_index_path():
    doc = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 3}]

    with pytest.raises(InvalidDocument) as raised:
        parse(doc)

    assert raised.value.path == "/1/content"


@pytest.mark.parametrize("doc", ["just a string", 12, None, True])
def test_scalar_documents_are_rejected(doc):
    assert rejection(parse, doc) == ("wrong_type", "")


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"id": "x"}, "/messages"),
        ({"messages": [{"content": "no role"}]}, "/messages/0/role"),
    ],
)
def test_missing_required_fields_are_rejected(doc, path):
    assert rejection(parse, doc) == ("missing_field", path)


@pytest.mark.parametrize(("path", "value"), UNREADABLE_USAGE)
def test_unreadable_usage_is_a_warning_and_no_tokens(path, value):
    doc = set_path(_base_doc(), path, value)

    parsed = parse(doc)

    assert codes(parsed) == ["unreadable_usage"]
    assert parsed.warnings[0].path.startswith("/usage")
    assert parsed.session.tokens.is_empty
    assert len(parsed.session.messages) == 4


def test_a_token_count_beyond_2_pow_53_is_rejected():
    doc = set_path(_base_doc(), "/usage/prompt_tokens", 2**53)

    assert rejection(parse, doc) == ("out_of_range", "/usage/prompt_tokens")


def test_a_negative_token_count_is_clamped_to_zero_and_flagged():
    doc = set_path(_base_doc(), "/usage/prompt_tokens", -1)

    parsed = parse(doc)

    assert codes(parsed) == ["impossible_token_count"]
    assert parsed.warnings[0].path == "/usage/prompt_tokens"
    assert parsed.session.tokens.input == 0


def test_empty_messages_parse_to_an_empty_session_with_a_warning():
    parsed = parse({"id": "s", "messages": []})

    assert parsed.session.messages == ()
    assert codes(parsed) == ["no_messages"]


def test_blank_session_id_is_treated_as_absent():
    parsed = parse(minimal_chat({"role": "user", "content": "x"}, id="  "))

    assert parsed.session.external_id is None
    assert codes(parsed) == ["empty_session_id"]


# Arbitrary JSON, and message-shaped objects with arbitrary field values: the adapter may
# reject them, but only with InvalidDocument, and detection only ever answers a bool.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = st.sampled_from(
    ["role", "content", "name", "tool_calls", "tool_call_id", "function_call", "id", "usage"]
)
ROLES = st.sampled_from(["system", "user", "assistant", "tool", "function", "agent", "x"])
MESSAGES = st.dictionaries(FIELD_NAMES, JSON_VALUES | ROLES, max_size=5)
DOCUMENTS = (
    JSON_VALUES
    | st.lists(MESSAGES, max_size=4)
    | st.fixed_dictionaries(
        {"messages": st.lists(MESSAGES, max_size=4)},
        optional={
            "usage": JSON_VALUES,
            "id": JSON_VALUES,
            "responses": JSON_VALUES,
            "system": JSON_VALUES,
        },
    )
)


@ODD_SHAPE_SETTINGS
@given(DOCUMENTS)
def test_odd_shapes_never_crash_detection_or_parsing(doc):
    assert_odd_shape_is_handled(openai_chat.ADAPTER, doc)
