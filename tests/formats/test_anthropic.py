"""The anthropic adapter: detection (rule 15), mapping and bad input.

Fixtures come from the real ``anthropic`` types (tests/fixtures/generate/); expected counts are
read from tests/fixtures/manifest.json. The manifest counts a user message holding tool_result
blocks as one message; the adapter splits it into one tool message per result (so results pair
by id), and every piece carries ``extra["transcript_message"]`` — the tests count transcript
messages through it.
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

from sessions_api.domain import Role, StatusSource, TokenSource, TokenUsage, ToolStatus
from sessions_api.formats import registry
from sessions_api.formats.anthropic import parse as anthropic
from sessions_api.formats.openai_chat import parse as openai_chat
from sessions_api.formats.pairing import count_recorded_tool_errors
from sessions_api.sessions.timeline import build_timeline

ENTRIES = {e["path"]: e for e in manifest_entries("anthropic")}
TRANSCRIPT = "anthropic/messages_transcript.json"
STRING_SYSTEM = "anthropic/string_system_no_usage.json"

parse = anthropic.ADAPTER.parse


def transcript_roles(session) -> Counter:
    """Roles as the transcript wrote them: one per transcript message (pieces counted once)."""
    seen: dict[Any, str] = {}
    for m in session.messages:
        key = m.extra.get("transcript_message", ("own", m.seq))
        seen.setdefault(key, m.raw_role or m.role.value)
    return Counter(seen.values())


def user_message(*content: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(content)}


def assistant_message(*content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": list(content)}


def tool_use(call_id: str, name: str = "f", **arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def tool_result(call_id: str, content: Any = "ok", **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": content, **extra}


# ------------------------------------------------------------------- fixtures from the library


@pytest.mark.parametrize("path", sorted(ENTRIES))
def test_fixture_is_detected_as_anthropic_by_rule_15(path):
    doc = load(path)

    detection = registry.detect_format(doc)
    parse_detection, parsed = registry.parse_document(doc)

    assert (detection.format_id, detection.variant) == ("anthropic", "transcript")
    assert detection.rule.startswith("rule 15:")
    assert parse_detection == detection
    assert parsed.session.source_format == "anthropic"
    assert openai_chat.sniff_variant(doc) is None


@pytest.mark.parametrize("path", sorted(ENTRIES))
def test_fixture_counts_match_the_manifest(path):
    expected = ENTRIES[path]["expected"]
    session = registry.parse_document(load(path))[1].session
    transcript = {m.extra.get("transcript_message", ("own", m.seq)) for m in session.messages}

    assert len(transcript) == expected["messages"]
    assert (
        len(transcript) - (1 if expected["has_system_prompt"] else 0)
        == expected["transcript_messages"]
    )
    assert transcript_roles(session) == expected["roles"]
    assert [m.seq for m in session.messages] == list(range(len(session.messages)))
    assert len(session.tool_calls) == expected["tool_calls"]
    assert sum(m.role is Role.TOOL for m in session.messages) == expected["tool_result_blocks"]
    assert count_recorded_tool_errors(session.messages) == expected["tool_errors"]
    assert (session.messages[0].role is Role.SYSTEM) is expected["has_system_prompt"]


@pytest.mark.parametrize("path", sorted(ENTRIES))
def test_fixture_tokens(path):
    expected = ENTRIES[path]["expected"]
    tokens = registry.parse_document(load(path))[1].session.tokens

    if expected["tokens"] is None:
        assert tokens == TokenUsage()
        assert tokens.is_empty
    else:
        assert {"input": tokens.input, "output": tokens.output, "total": tokens.total} == (
            expected["tokens"]
        )
        assert tokens.source is TokenSource.SUMMED


@pytest.mark.parametrize("path", sorted(ENTRIES))
def test_fixture_tool_calls_pair_with_their_results_explicitly(path):
    session = registry.parse_document(load(path))[1].session
    by_seq = {m.seq: m for m in session.messages}

    for call in session.tool_calls:
        assert call.result_seq is not None
        assert call.status_source is StatusSource.EXPLICIT
        result = by_seq[call.result_seq]
        if call.call_id in result.extra.get("server_tool_calls", ()):
            continue  # a server-side call: its result block sits in the calling message
        assert (result.role, result.tool_call_id) == (Role.TOOL, call.call_id)
        assert result.author == call.name


@pytest.mark.parametrize("path", sorted(ENTRIES))
def test_fixture_text_survives_verbatim_and_is_in_the_timeline(path):
    entry = ENTRIES[path]
    doc = load(path)
    session = registry.parse_document(doc)[1].session
    texts = [m.content_text for m in session.messages]
    document_strings = set(strings_in(doc))
    timeline_strings = set(strings_in(build_timeline(session)))

    for message in session.messages:
        if not message.content_text:
            continue
        blocks = (
            [b["text"] for b in message.content_parts if isinstance(b, dict) and "text" in b]
            if isinstance(message.content_parts, list)
            else [message.content_text]
        )
        assert message.content_text in timeline_strings or all(
            block in timeline_strings for block in blocks
        ), f"message #{message.seq} text is not in the timeline"
    if entry["coverage"]["non_ascii"]:
        assert any(NON_ASCII in text for text in texts)
    if entry["coverage"]["script_markup"]:
        assert any(SCRIPT in text for text in texts)
    if entry["coverage"]["message_over_5kb"]:
        longest = max(texts, key=len)
        assert len(longest.encode("utf-8")) > 5 * 1024
        assert longest in document_strings


def test_session_envelope_and_system_prompt():
    session = parse(load(TRANSCRIPT)).session
    system = session.messages[0]

    assert session.external_id == "anthropic-session-trip-0001"
    assert (system.seq, system.role) == (0, Role.SYSTEM)
    assert system.content_text.startswith("You are Voyager")
    assert system.content_parts[0]["cache_control"] == {"type": "ephemeral"}
    assert session.models == ["claude-sonnet-4-5-20250929"]


def test_string_system_prompt_and_no_envelope_id():
    session = parse(load(STRING_SYSTEM)).session

    assert session.messages[0].content_text == "You are a terse assistant. " + SCRIPT
    assert session.messages[0].content_parts is None
    assert session.external_id is None
    # The envelope has no model: the assistant messages name none.
    assert session.models == []


def test_user_message_with_two_tool_results_is_split_in_order():
    session = parse(load(TRANSCRIPT)).session
    weather, hotel = session.messages[3], session.messages[4]

    assert [(m.role, m.raw_role, m.tool_call_id) for m in (weather, hotel)] == [
        (Role.TOOL, "user", "toolu_01Weather"),
        (Role.TOOL, "user", "toolu_02Hotel"),
    ]
    assert weather.extra["transcript_message"] == hotel.extra["transcript_message"] == 2
    assert (weather.tool_status, weather.tool_status_source) == (
        ToolStatus.SUCCESS,
        StatusSource.EXPLICIT,
    )
    assert hotel.tool_status is ToolStatus.ERROR
    assert hotel.content_text == "RuntimeError: No rooms left in 東京"
    assert hotel.content_parts == [{"type": "text", "text": "RuntimeError: No rooms left in 東京"}]


def test_responses_give_their_usage_to_the_matching_assistant_message():
    session = parse(load(TRANSCRIPT)).session
    first = session.messages[2]

    assert first.external_id == "msg_01Fixture0000000001"
    assert first.finish_reason == "tool_use"
    assert first.model == "claude-sonnet-4-5-20250929"
    assert first.tokens == TokenUsage(input=412, output=58, total=470, cached=0, cache_write=380)
    assert [m.external_id for m in session.messages if m.role is Role.ASSISTANT] == [
        f"msg_01Fixture000000000{n}" for n in range(1, 5)
    ]


def test_thinking_is_a_part_not_text():
    session = parse(load(TRANSCRIPT)).session
    first, last = session.messages[2], session.messages[-1]

    assert first.content_text == "Ich prüfe Wetter und Hotel."
    assert first.content_parts[0]["type"] == "thinking"
    assert "The user wants" not in first.content_text
    assert last.content_parts[0] == {
        "type": "redacted_thinking",
        "data": "EmwKAhgBEgy3va3pzix/LafPsn4a",
    }
    assert last.content_text == "Gern geschehen! Bon voyage 🚀"


def test_server_tool_use_is_a_tool_call_paired_with_its_result_block():
    parsed = parse(load(TRANSCRIPT))
    itinerary = parsed.session.messages[7]
    (server_call,) = itinerary.tool_calls

    assert itinerary.extra["server_tool_calls"] == ["srvtoolu_01Search"]
    assert [b["type"] for b in itinerary.content_parts][:2] == [
        "server_tool_use",
        "web_search_tool_result",
    ]
    assert (server_call.call_id, server_call.name) == ("srvtoolu_01Search", "web_search")
    assert server_call.arguments == {"query": "Tokyo 7 day itinerary"}
    assert (server_call.status, server_call.status_source) == (
        ToolStatus.SUCCESS,
        StatusSource.EXPLICIT,
    )
    assert server_call.result_seq == 7
    assert server_call.result_content[0]["title"] == "Tokyo in 7 days"
    assert parsed.warnings == ()


def test_server_tool_error_and_missing_result():
    doc = {
        "messages": [
            {"role": "user", "content": "search"},
            assistant_message(
                {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {}},
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": "s1",
                    "content": {"type": "web_search_tool_result_error", "error_code": "max_uses"},
                },
                {"type": "server_tool_use", "id": "s2", "name": "web_search", "input": {}},
                {
                    "type": "bash_code_execution_tool_result",
                    "tool_use_id": "s3",
                    "content": {"type": "bash_code_execution_result", "return_code": 1},
                },
                {"type": "server_tool_use", "id": "s3", "name": "bash_code_execution"},
            ),
        ]
    }
    parsed = parse(doc)
    first, second, third = parsed.session.messages[1].tool_calls

    assert (first.status, first.status_source) == (ToolStatus.ERROR, StatusSource.EXPLICIT)
    assert first.result_content["error_code"] == "max_uses"
    assert second.status is ToolStatus.PENDING
    # A non-zero exit code is a failed run by convention (the API records no error there).
    assert (third.status, third.status_source) == (ToolStatus.ERROR, StatusSource.CONVENTION)
    assert codes(parsed) == ["server_tool_call_without_result"]


def test_a_server_tool_block_without_an_id_is_a_pending_call_with_a_warning():
    doc = {
        "messages": [
            {"role": "user", "content": "search"},
            assistant_message({"type": "mcp_tool_use", "name": "lookup", "input": {}}),
        ]
    }

    parsed = parse(doc)

    (call,) = parsed.session.tool_calls
    assert (call.call_id, call.status) == ("server_tool:0", ToolStatus.PENDING)
    assert codes(parsed) == ["missing_tool_call_id", "server_tool_call_without_result"]


def test_text_and_several_results_in_one_user_message_keep_their_order():
    doc = {
        "messages": [
            assistant_message(tool_use("a"), tool_use("b")),
            user_message(
                {"type": "text", "text": "before"},
                tool_result("a"),
                {"type": "text", "text": "between"},
                tool_result("b", is_error=True),
                {"type": "text", "text": "after"},
            ),
        ]
    }
    parsed = parse(doc)
    pieces = parsed.session.messages[1:]

    assert [(m.seq, m.role, m.content_text) for m in pieces] == [
        (1, Role.USER, "before"),
        (2, Role.TOOL, "ok"),
        (3, Role.USER, "between"),
        (4, Role.TOOL, "ok"),
        (5, Role.USER, "after"),
    ]
    assert {m.extra["transcript_message"] for m in pieces} == {1}
    a, b = parsed.session.messages[0].tool_calls
    assert (a.result_seq, a.status) == (2, ToolStatus.SUCCESS)
    assert (b.result_seq, b.status, b.status_source) == (4, ToolStatus.ERROR, StatusSource.EXPLICIT)
    assert parsed.warnings == ()


def test_is_error_false_and_absent_are_both_explicit_success():
    doc = {
        "messages": [
            assistant_message(tool_use("a"), tool_use("b")),
            user_message(tool_result("a", is_error=False), tool_result("b")),
        ]
    }
    a, b = parse(doc).session.messages[0].tool_calls

    assert (a.status, a.status_source) == (ToolStatus.SUCCESS, StatusSource.EXPLICIT)
    assert (b.status, b.status_source) == (ToolStatus.SUCCESS, StatusSource.EXPLICIT)


def test_envelope_usage_is_reported_and_wins():
    doc = load(TRANSCRIPT)
    doc["usage"] = {"input_tokens": 1, "output_tokens": 2, "cache_read_input_tokens": 3}

    assert parse(doc).session.tokens == TokenUsage(input=1, output=2, total=3, cached=3)


def test_an_unmatched_response_warns_and_still_counts():
    doc = load(TRANSCRIPT)
    doc["responses"][1]["content"] = [{"type": "text", "text": "something else"}]
    parsed = parse(doc)

    assert parsed.session.messages[5].tokens is None
    assert parsed.session.tokens.input == 4082
    assert [(w.code, w.path) for w in parsed.warnings] == [("unmatched_response", "/responses/1")]


def test_messages_that_are_full_message_dumps_carry_their_own_usage():
    doc = load(TRANSCRIPT)
    doc["messages"] = [{"role": "user", "content": "hi"}, doc["responses"][1]]
    del doc["responses"]
    session = parse(doc).session
    answer = session.messages[2]

    assert answer.external_id == "msg_01Fixture0000000002"
    assert answer.finish_reason == "end_turn"
    assert answer.tokens.output == 61
    assert session.tokens.output == 61 and session.tokens.source is TokenSource.SUMMED


def test_a_single_message_dump_is_detected_and_parsed():
    doc = load(TRANSCRIPT)["responses"][0]

    detection = registry.detect_format(doc)
    session = parse(doc).session

    assert (detection.format_id, detection.variant) == ("anthropic", "message")
    assert session.format_variant == "message"
    assert session.external_id == "msg_01Fixture0000000001"
    assert [c.call_id for c in session.tool_calls] == ["toolu_01Weather", "toolu_02Hotel"]
    assert session.tokens.input == 412


def test_a_bare_list_parses_when_forced():
    doc = load(STRING_SYSTEM)["messages"]
    _, parsed = registry.parse_document(doc, format_id="anthropic")

    assert parsed.session.format_variant == "bare-list"
    assert len(parsed.session.messages) == 4
    assert parsed.session.tool_calls[0].result_seq == 2


def test_user_metadata_and_other_envelope_keys():
    doc = {
        "id": "conv-1",
        "metadata": {"user_id": "u-7"},
        "max_tokens": 1024,
        "tools": [{"name": "f"}],
        "created_at": "2026-11-21T10:00:00Z",
        "system": "s",
        "messages": [{"role": "user", "content": "hi"}],
    }
    session = parse(doc).session

    assert (session.external_id, session.user_id) == ("conv-1", "u-7")
    assert session.metadata["envelope_extra"] == {"max_tokens": 1024, "tools": [{"name": "f"}]}
    assert session.created_at.isoformat() == "2026-11-21T10:00:00+00:00"


def test_weird_but_valid_things_are_warnings():
    doc = {
        "system": "s",
        "messages": [
            {"role": "system", "content": "inline system"},
            {"role": "critic", "content": "meh"},
            user_message({"type": "hologram", "data": 1}, "a bare string", {"text": "no type"}),
            assistant_message(tool_result("x")),
            {"role": "assistant"},
        ],
    }
    parsed = parse(doc)

    assert codes(parsed) == [
        "system_role_in_messages",
        "unknown_role",
        "unknown_block_type",
        "string_block",
        "untyped_block",
        "tool_result_outside_user_message",
        "missing_content",
        "unmatched_tool_result",
    ]
    assert parsed.session.messages[2].role is Role.OTHER
    assert parsed.session.messages[3].content_parts[0] == {"type": "hologram", "data": 1}


def test_tool_use_without_id_gets_a_synthetic_one():
    parsed = parse({"messages": [assistant_message({"type": "tool_use", "name": "f"})]})

    assert parsed.session.tool_calls[0].call_id == "tool_use:0:0"
    assert codes(parsed) == ["missing_tool_call_id", "tool_call_without_result"]


def test_a_message_over_5_kb_with_markup_is_kept_whole():
    big = ("Größe ✓ 大きい <b>x</b> " * 400)[:6000]
    session = parse({"system": "s", "messages": [{"role": "user", "content": big}]}).session

    assert session.messages[1].content_text == big


def test_parse_does_not_change_the_document():
    doc = load(TRANSCRIPT)
    before = copy.deepcopy(doc)
    parse(doc)
    assert doc == before


# ------------------------------------------------------------------------------- detection


def test_rules_are_numbered_15():
    assert {r.number for r in anthropic.ADAPTER.rules} == {15}
    assert {r.format_id for r in anthropic.ADAPTER.rules} == {"anthropic"}


def _openai_chat_fixtures() -> list[str]:
    return sorted(f"openai_chat/{p.name}" for p in (FIXTURES / "openai_chat").glob("*.json"))


@pytest.mark.parametrize("path", _openai_chat_fixtures())
def test_openai_chat_fixtures_still_detect_as_openai_chat(path):
    doc = load(path)

    assert not any(rule.matches(doc) for rule in anthropic.ADAPTER.rules)
    assert registry.detect_format(doc).format_id == "openai_chat"


@pytest.mark.parametrize("path", sorted(other_format_fixtures("anthropic")))
def test_other_formats_fixtures_are_never_anthropic(path):
    doc = load(path)
    try:
        detected = registry.detect_format(doc).format_id
    except registry.UnknownFormat:
        detected = None
    assert detected != "anthropic"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"system": "s", "messages": [{"role": "user", "content": "hi"}]}, "anthropic"),
        (
            {"system": "s", "messages": [{"role": "system", "content": "x"}, {"role": "user"}]},
            "openai_chat",
        ),
        ({"messages": [{"role": "user", "content": "hi"}]}, "openai_chat"),
        ({"messages": [assistant_message({"type": "thinking", "thinking": "hm"})]}, "anthropic"),
        ({"messages": [user_message(tool_result("x"))]}, "anthropic"),
        (
            {"messages": [assistant_message({"type": "redacted_thinking", "data": "x"})]},
            "anthropic",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
            "openai_chat",
        ),
        ({"system": "s", "messages": []}, None),
        ({"system": None, "messages": [{"role": "user", "content": "x"}]}, "openai_chat"),
    ],
    ids=[
        "top-level-system",
        "system-role-message",
        "plain-chat",
        "thinking",
        "tool-result",
        "redacted-thinking",
        "text-blocks-only",
        "system-no-messages",
        "null-system",
    ],
)
def test_rule_15_and_rule_16_boundary_holds_both_ways(doc, expected):
    try:
        detected = registry.detect_format(doc).format_id
    except registry.UnknownFormat:
        detected = None
    assert detected == expected
    # Exactly one of the two adapters claims every document either claims.
    claims = (anthropic.is_transcript(doc), openai_chat.sniff_variant(doc) is not None)
    assert claims != (True, True)


def test_a_responses_output_message_item_is_not_a_message_dump():
    item = {"type": "message", "role": "assistant", "id": "msg_1", "content": []}
    assert not anthropic.is_message_dump(item)


# ------------------------------------------------------------------------------- bad input


WRONG_TYPES = [
    ("/messages", {"role": "user"}),
    ("/messages/0", "hi"),
    ("/messages/0/role", 1),
    ("/messages/0/content", 5),
    ("/messages/1/content/1", 3),
    ("/messages/1/content/1/text", None),
    ("/messages/1/content/1/type", 7),
    ("/messages/1/content/0/thinking", 1),
    ("/messages/1/content/2/id", 1),
    ("/messages/1/content/2/name", ["get_weather"]),
    ("/messages/1/content/2/input", "city"),
    ("/messages/2/content/0/tool_use_id", 5),
    ("/messages/2/content/1/is_error", "true"),
    ("/messages/2/content/1/content", 404),
    ("/messages/2/content/1/content/0", "x"),
    ("/messages/2/content/1/content/0/text", 1),
    ("/system", 3),
    ("/system/0", "text"),
    ("/system/0/text", 1),
    ("/model", 4),
    ("/session_id", ["s"]),
    ("/metadata", "m"),
    ("/responses", {}),
    ("/responses/0", "r"),
    ("/responses/0/content", "text"),
    ("/responses/0/stop_reason", 1),
]


@pytest.mark.parametrize(("path", "value"), WRONG_TYPES)
def test_wrong_types_are_rejected_with_a_json_pointer(path, value):
    doc = set_path(load(TRANSCRIPT), path, value)

    assert_wrong_type_at(parse, doc, path)


@pytest.mark.parametrize(
    ("doc", "path"),
    [({"system": "s"}, "/messages"), ({"messages": [{"content": "no role"}]}, "/messages/0/role")],
)
def test_missing_required_fields(doc, path):
    assert rejection(parse, doc) == ("missing_field", path)


# Usage is optional data: a shape the adapter cannot read is a warning and no tokens from it
# (never coerced), not a refused document.
@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/responses/0/usage", 1),
        ("/responses/0/usage/input_tokens", "412"),
        ("/responses/0/usage/cache_read_input_tokens", 1.5),
        ("/usage", "many"),
    ],
)
def test_unreadable_usage_is_a_warning(path, value):
    doc = set_path(load(TRANSCRIPT), path, value)

    parsed = parse(doc)

    assert codes(parsed) == ["unreadable_usage"]
    assert parsed.warnings[0].path.startswith(path.split("/usage")[0] + "/usage")


def test_a_list_of_usages_is_summed():
    doc = load(TRANSCRIPT)
    doc["usage"] = [
        {"input_tokens": 1, "output_tokens": 2},
        {"input_tokens": 3, "output_tokens": 4},
    ]

    tokens = parse(doc).session.tokens

    assert (tokens.input, tokens.output, tokens.total) == (4, 6, 10)


def test_a_token_count_beyond_2_pow_53_is_rejected():
    doc = set_path(load(TRANSCRIPT), "/responses/2/usage/output_tokens", 2**53)

    assert rejection(parse, doc) == (
        "out_of_range",
        "/responses/2/usage/output_tokens",
    )


def test_a_negative_token_count_is_clamped_to_zero_and_flagged():
    doc = set_path(load(TRANSCRIPT), "/responses/2/usage/output_tokens", -5)

    parsed = parse(doc)

    assert codes(parsed) == ["impossible_token_count"]
    assert parsed.warnings[0].path == "/responses/2/usage/output_tokens"


@pytest.mark.parametrize("doc", ["x", 1, None, False])
def test_scalar_documents_are_rejected(doc):
    assert rejection(parse, doc) == ("wrong_type", "")


BLOCK_TYPES = st.sampled_from(
    ["text", "tool_use", "tool_result", "thinking", "server_tool_use", "web_search_tool_result"]
)
BLOCK_FIELDS = st.sampled_from(
    ["text", "id", "name", "input", "tool_use_id", "content", "is_error"]
)
BLOCKS = st.builds(
    lambda t, rest: {"type": t, **rest}, BLOCK_TYPES, st.dictionaries(BLOCK_FIELDS, JSON_VALUES)
)
MESSAGES = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "x"])},
    optional={"content": st.lists(BLOCKS, max_size=3) | JSON_VALUES, "usage": JSON_VALUES},
)
DOCUMENTS = JSON_VALUES | st.fixed_dictionaries(
    {"messages": st.lists(MESSAGES, max_size=4)},
    optional={"system": JSON_VALUES, "responses": JSON_VALUES, "usage": JSON_VALUES},
)


@ODD_SHAPE_SETTINGS
@given(DOCUMENTS)
def test_odd_shapes_never_crash_detection_or_parsing(doc):
    assert_odd_shape_is_handled(anthropic.ADAPTER, doc)


# -------------------------------------------------------------------------------- the API


@pytest.mark.django_db
def test_transcript_is_ingested_through_the_api(api):
    expected = ENTRIES[TRANSCRIPT]["expected"]

    answer = ingest(api, (FIXTURES / TRANSCRIPT).read_bytes(), "anthropic")

    summary = answer["summary"]
    assert answer["external_id"] == "anthropic-session-trip-0001"
    # One more message than the manifest: the two tool_result blocks are two tool messages.
    assert summary["message_count"] == expected["messages"] + 1
    assert summary["tool_call_count"] == expected["tool_calls"]
    assert summary["tool_error_count"] == expected["tool_errors"]
    assert (summary["input_tokens"], summary["output_tokens"], summary["total_tokens"]) == (
        expected["tokens"]["input"],
        expected["tokens"]["output"],
        expected["tokens"]["total"],
    )
    assert summary["models"] == ["claude-sonnet-4-5-20250929"]
    assert answer["warnings"] == []


@pytest.mark.django_db
def test_string_system_transcript_is_ingested_through_the_api(api):
    summary = ingest(api, (FIXTURES / STRING_SYSTEM).read_bytes(), "anthropic")["summary"]

    assert summary["message_count"] == ENTRIES[STRING_SYSTEM]["expected"]["messages"]
    assert summary["input_tokens"] is None
