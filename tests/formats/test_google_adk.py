"""The google_adk adapter: detection (rules 2-4), mapping and bad input.

Every manifest fixture of the format is checked against the counts the generator took from the
real library (tests/fixtures/manifest.json).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest
from helpers import (
    ODD_SHAPE_ERROR_CODES,
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

from sessions_api.domain import (
    LogLevel,
    Role,
    SessionStatus,
    StatusSource,
    TimestampSource,
    TokenSource,
    ToolStatus,
)
from sessions_api.formats import registry
from sessions_api.formats.base import InvalidDocument
from sessions_api.formats.google_adk import parse as google_adk
from sessions_api.formats.pairing import count_recorded_tool_errors
from sessions_api.sessions.timeline import build_timeline

ENTRIES = manifest_entries("google_adk", json_only=True)

parse = google_adk.ADAPTER.parse


def key_of(expected: dict[str, Any]) -> str:
    return f"{expected['app_name']}/{expected['user_id']}/{expected['external_id']}"


def session_cases() -> list[Any]:
    """(expected, document) per session of every fixture with events; dumps are split."""
    cases = []
    for fixture in ENTRIES:
        doc = load(fixture["path"])
        if "expected" in fixture:
            if "messages" in fixture["expected"]:
                cases.append(pytest.param(fixture["expected"], doc, id=fixture["path"]))
            continue
        by_key = {key_of(s): s for s in fixture["sessions"]}
        for key, part in google_adk.split_sessions(doc) or []:
            cases.append(pytest.param(by_key[key], part, id=f"{fixture['path']}#{key}"))
    return cases


def assert_every_text_in_timeline(session) -> None:
    events = build_timeline(session)
    texts = [e["text"] for e in events if e["kind"] == "message"]
    results = [e["result"] for e in events if e["kind"] == "tool_call"]
    for message in session.messages:
        if message.role is Role.TOOL:
            for part in message.content_parts:
                assert part["function_response"]["response"] in results
        else:
            assert message.content_text in texts


# ------------------------------------------------------------------------ manifest fixtures


RULE_OF_SHAPE = {"rule 2": 2, "rule 3": 3, "rule 4": 4}


@pytest.mark.parametrize("fixture", ENTRIES, ids=[e["path"] for e in ENTRIES])
def test_every_fixture_is_detected_by_the_rule_its_shape_names(fixture):
    detection = registry.detect_format(load(fixture["path"]))

    assert detection.format_id == "google_adk"
    number = next(n for key, n in RULE_OF_SHAPE.items() if key in fixture["shape"])
    assert detection.rule.startswith(f"rule {number}:")


@pytest.mark.parametrize(("expected", "doc"), session_cases())
def test_sessions_match_the_manifest(expected, doc):
    detection, parsed = registry.parse_document(doc)
    session = parsed.session

    assert detection.format_id == session.source_format == "google_adk"
    assert session.external_id == key_of(expected)
    assert (session.agent_name, session.user_id) == (expected["app_name"], expected["user_id"])
    assert len(session.messages) == expected["messages"]
    assert Counter(m.role.value for m in session.messages) == expected["roles"]
    assert len(session.tool_calls) == expected["tool_calls"]
    assert (
        sum(1 for c in session.tool_calls if c.result_seq is not None) == (expected["tool_results"])
    )
    assert count_recorded_tool_errors(session.messages) == expected["tool_errors"]
    assert {c.status_source for c in session.tool_calls} <= {StatusSource.CONVENTION}
    assert sum(1 for m in session.messages if m.is_error) == expected["error_events"]
    assert sum(1 for e in session.logs if e.level is LogLevel.ERROR) == expected["error_events"]
    tokens = session.tokens
    assert (tokens.input, tokens.output, tokens.total) == (
        expected["tokens"]["input"],
        expected["tokens"]["output"],
        expected["tokens"]["total"],
    )
    assert tokens.source is TokenSource.SUMMED
    assert sorted(session.state) == expected["state_keys"]
    assert not any(m.role is Role.SYSTEM for m in session.messages)
    assert all(m.timestamp_source is TimestampSource.EXPLICIT for m in session.messages)
    assert parsed.warnings == ()
    assert_every_text_in_timeline(session)


def test_snake_and_camel_sessions_parse_the_same():
    snake = parse(load("google_adk/session_snake.json")).session
    camel = parse(load("google_adk/session_camel.json")).session

    assert snake.format_variant == "session-snake" and camel.format_variant == "session-camel"
    assert [m.content_text for m in snake.messages] == [m.content_text for m in camel.messages]
    assert snake.tool_calls == camel.tool_calls
    assert snake.tokens == camel.tokens
    assert snake.state == camel.state
    assert snake.steps == camel.steps
    assert snake.logs == camel.logs
    assert [m.content_parts for m in snake.messages] == [m.content_parts for m in camel.messages]


def test_same_session_id_for_two_users_is_two_sessions():
    one = parse(load("google_adk/session_camel.json")).session
    other = parse(load("google_adk/session_other_user_camel.json")).session

    assert one.metadata["session_id"] == other.metadata["session_id"]
    assert one.external_id != other.external_id
    assert other.external_id == "trip_app/user-77/adk-session-trip-0001"


def test_list_sessions_answer_is_one_session_without_messages():
    fixture = manifest_entry("google_adk/list_sessions_camel.json")
    parsed = parse(load(fixture["path"]))
    session = parsed.session

    assert fixture["expected"]["sessions"] == 1
    assert session.format_variant == "list-sessions"
    assert session.external_id == "trip_app/user-42/adk-session-trip-0001"
    assert session.messages == ()
    assert session.updated_at is not None
    assert "no_events" in codes(parsed)


def test_db_dump_with_two_sessions_is_refused_and_split_for_the_importer():
    fixture = manifest_entry("google_adk/sqlite_dump.json")
    doc = load(fixture["path"])

    with pytest.raises(InvalidDocument) as raised:
        parse(doc)
    assert raised.value.code == "multiple_sessions"
    assert "import_sessions" in raised.value.message

    parts = google_adk.split_sessions(doc)
    assert [key for key, _ in parts] == [key_of(s) for s in fixture["sessions"]]
    first = parts[0][1]
    assert len(first["app_states"]) == 1 and len(first["user_states"]) == 1


def test_db_dump_merges_app_and_user_state_and_takes_create_time():
    doc = load("google_adk/sqlite_dump.json")
    part = google_adk.split_sessions(doc)[0][1]
    session = parse(part).session

    assert session.state["app:currency"] == "JPY"
    assert session.state["user:home_city"] == "München"
    assert session.state["last_city"] == "東京"
    assert session.created_at.timestamp() == doc["sessions"][0]["create_time"]
    assert session.updated_at.timestamp() == doc["sessions"][0]["update_time"]


# ------------------------------------------------------------------------ mapping details


@pytest.fixture(scope="module")
def trip():
    return parse(load("google_adk/session_snake.json")).session


def test_tool_status_follows_the_adk_convention(trip):
    calls = {c.name: c for c in trip.tool_calls}

    assert calls["get_weather"].status is ToolStatus.SUCCESS
    assert calls["book_hotel"].status is ToolStatus.ERROR  # status == "error"
    assert calls["convert_currency"].status is ToolStatus.ERROR  # an "error" key
    assert calls["book_hotel"].result_content["error_message"].startswith("No rooms left")
    assert {c.status_source for c in calls.values()} == {StatusSource.CONVENTION}
    # Three calls answered by one event: every call names that event as its result.
    assert {c.result_seq for c in calls.values()} == {2}
    events = [e for e in build_timeline(trip) if e["kind"] == "tool_call"]
    assert [e["status_source"] for e in events] == ["convention"] * 3
    assert not any(e["heuristic"] for e in events)


def test_thoughts_stay_in_parts_and_calls_have_their_arguments(trip):
    message = trip.messages[1]

    assert message.content_text == ""
    assert message.content_parts[0] == {
        "text": "Checking weather, hotel and currency…",
        "thought": True,
    }
    assert message.tool_calls[1].arguments == {"city": "東京", "nights": 7}
    assert message.model == "gemini-2.5-flash-preview-09-2025"
    assert (message.tokens.input, message.tokens.reasoning) == (412, 20)
    timeline = build_timeline(trip)
    assert any(
        e["kind"] == "message" and e["parts"] and e["parts"][0].get("thought") for e in timeline
    )


def test_error_event_is_an_error_message_a_log_entry_and_the_session_status(trip):
    last = trip.messages[-1]

    assert last.is_error and last.error_code == "MALFORMED_FUNCTION_CALL"
    assert last.content_text.startswith("Malformed function call")
    assert trip.logs[0].level is LogLevel.ERROR
    assert trip.logs[0].message.startswith("MALFORMED_FUNCTION_CALL:")
    assert trip.status is SessionStatus.ERROR


def test_state_delta_becomes_a_step_and_authors_are_agents(trip):
    (step,) = trip.steps
    assert step.name == "voyager"
    assert step.state["state_delta"] == {"last_city": "東京", "user:home_city": "München"}
    assert step.saved_at is not None
    assert {m.author for m in trip.messages} == {"user", "voyager"}
    assert trip.messages[2].extra["actions"]["state_delta"]["last_city"] == "東京"


def test_fixture_text_survives_verbatim(trip):
    raw = load("google_adk/session_snake.json")
    long_text = raw["events"][5]["content"]["parts"][0]["text"]
    texts = [m.content_text for m in trip.messages]

    assert len(long_text.encode("utf-8")) > 5000
    assert long_text in texts
    assert any(SCRIPT in t for t in texts)
    assert any("東京" in t and "🚀" in t for t in texts)


# ------------------------------------------------------------------------ odd but survivable


def _session(*events: dict[str, Any]) -> dict[str, Any]:
    return {"id": "s1", "appName": "app", "userId": "u", "state": {}, "events": list(events)}


def test_transfer_and_content_less_events_are_kept_as_log_entries():
    doc = _session(
        {"id": "e1", "author": "user", "content": {"role": "user", "parts": [{"text": "hi"}]}},
        {
            "id": "e2",
            "author": "router",
            "actions": {"transferToAgent": "billing", "stateDelta": {"k": 1}},
        },
        {
            "id": "e3",
            "author": "billing",
            "content": {"role": "model", "parts": [{"executableCode": {"code": "1+1"}}]},
        },
    )
    session = parse(doc).session

    assert len(session.messages) == 2
    # Part structure keys read in snake_case whichever spelling the document used.
    assert session.messages[1].content_parts == [{"executable_code": {"code": "1+1"}}]
    assert [e.level for e in session.logs] == [LogLevel.EVENT, LogLevel.EVENT]
    assert session.logs[0].message == "router transfers to billing"
    assert session.logs[1].extra["event"]["id"] == "e2"
    assert session.steps[0].state["transfer_to_agent"] == "billing"


def test_unmatched_responses_missing_ids_and_unknown_parts_are_warnings():
    doc = _session(
        {
            "id": "e1",
            "author": "a",
            "content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        },
        {
            "id": "e2",
            "author": "a",
            "content": {
                "role": "user",
                "parts": [{"functionResponse": {"id": "nope", "name": "f", "response": {}}}],
            },
        },
        {"id": "e3", "author": "a", "content": {"role": "model", "parts": [{"hologram": 1}]}},
    )
    parsed = parse(doc)

    assert {
        "tool_call_without_id",
        "unmatched_tool_result",
        "tool_call_without_result",
        "unknown_part",
    } <= set(codes(parsed))
    assert parsed.session.tool_calls[0].status is ToolStatus.PENDING


def test_an_empty_session_parses_with_a_warning():
    parsed = parse(_session())
    assert parsed.session.messages == ()
    assert "no_messages" in codes(parsed)


# ------------------------------------------------------------------------ detection boundaries


@pytest.mark.parametrize("path", other_format_fixtures("google_adk"))
def test_no_other_formats_fixture_matches_rules_2_to_4(path):
    doc = load(path)
    assert not any(rule.matches(doc) for rule in google_adk.RULES)


def test_the_hostile_ambiguous_document_is_an_adk_session_by_precedence():
    doc = {
        "id": "amb-0001",
        "app_name": "travel",
        "user_id": "u-1",
        "events": [],
        "messages": [{"role": "user", "content": "hi"}],
        "flows": [],
        "items": [],
    }
    detection = registry.detect_format(doc)
    assert detection.format_id == "google_adk" and detection.rule.startswith("rule 2:")
    assert parse(doc).session.external_id == "travel/u-1/amb-0001"


ODD = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["id", "appName", "userId", "events", "sessions", "event_data", "content", "parts"]
            )
            | st.text(max_size=4),
            children,
            max_size=5,
        )
    ),
    max_leaves=16,
)


@ODD_SHAPE_SETTINGS
@given(ODD)
def test_odd_shapes_never_crash_detection_or_parsing(doc):
    assert_odd_shape_is_handled(
        google_adk.ADAPTER,
        doc,
        {*ODD_SHAPE_ERROR_CODES, "missing_session_id", "multiple_sessions"},
    )


# ------------------------------------------------------------------------ wrong types


def _snake() -> dict[str, Any]:
    return copy.deepcopy(load("google_adk/session_snake.json"))


def _camel() -> dict[str, Any]:
    return copy.deepcopy(load("google_adk/session_camel.json"))


def _dump() -> dict[str, Any]:
    return google_adk.split_sessions(load("google_adk/sqlite_dump.json"))[1][1]


WRONG_TYPES = [
    (_snake, "/id", ["x"]),
    (_snake, "/app_name", 3),
    (_snake, "/user_id", {"u": 1}),
    (_snake, "/state", "s"),
    (_snake, "/events", {"e": 1}),
    (_snake, "/events/0", "event"),
    (_snake, "/events/0/author", 5),
    (_snake, "/events/0/timestamp", [1]),
    (_snake, "/events/0/content", "hi"),
    (_snake, "/events/0/content/parts", {"text": "hi"}),
    (_snake, "/events/0/content/parts/0", "hi"),
    (_snake, "/events/0/content/parts/0/text", 7),
    (_snake, "/events/1/content/parts/1/function_call/name", 1),
    (_snake, "/events/1/content/parts/1/function_call/args", "city"),
    (_snake, "/events/2/content/parts/0/function_response/response", "ok"),
    (_snake, "/events/1/model_version", 2.5),
    (_snake, "/events/2/actions/state_delta", ["x"]),
    (_camel, "/appName", 3),
    (_camel, "/events/1/content/parts/1/functionCall/id", 9),
    (_dump, "/sessions", "x"),
    (_dump, "/sessions/0/state", 5),
    (_dump, "/events/0", 1),
    (_dump, "/events/0/event_data", 3),
    (_dump, "/app_states/0", []),
]


@pytest.mark.parametrize(("make", "path", "value"), WRONG_TYPES)
def test_wrong_types_are_rejected_with_a_json_pointer(make, path, value):
    doc = set_path(make(), path, value)

    assert_wrong_type_at(parse, doc, path)


@pytest.mark.parametrize(
    ("path", "code"), [("/id", "missing_field"), ("/app_name", "missing_field")]
)
def test_missing_ids_are_rejected(path, code):
    doc = _snake()
    del doc[path.strip("/")]
    assert rejection(parse, doc) == (code, path)


# usage_metadata is optional data: a shape the adapter cannot read is a warning and no tokens
# for that event (never coerced), not a refused document.
@pytest.mark.parametrize(
    ("make", "path", "value"),
    [
        (_snake, "/events/1/usage_metadata/prompt_token_count", "412"),
        (_camel, "/events/1/usageMetadata/totalTokenCount", True),
        (_snake, "/events/1/usage_metadata", "lots"),
    ],
)
def test_unreadable_usage_is_a_warning(make, path, value):
    doc = set_path(make(), path, value)

    parsed = parse(doc)

    assert "unreadable_usage" in codes(parsed)
    assert parsed.session.messages[1].tokens is None


def test_negative_token_counts_are_clamped_to_zero_and_flagged():
    doc = set_path(_snake(), "/events/1/usage_metadata/total_token_count", -5)

    parsed = parse(doc)

    assert "impossible_token_count" in codes(parsed)
    assert parsed.session.messages[1].tokens.total == 0


def test_a_token_count_beyond_2_pow_53_is_rejected():
    doc = set_path(_snake(), "/events/1/usage_metadata/total_token_count", 2**53)
    with pytest.raises(InvalidDocument) as raised:
        parse(doc)
    assert raised.value.code == "out_of_range"


def test_unparseable_event_data_is_kept_with_a_warning():
    doc = _dump()
    doc["events"][0]["event_data"] = "{broken"
    parsed = parse(doc)

    assert "unparseable_event_data" in codes(parsed)
    assert len(parsed.session.messages) == 1
    assert parsed.session.logs[0].extra["event"]["event_row"]["event_data"] == "{broken"


# ------------------------------------------------------------------------ through the API


@pytest.mark.django_db
def test_api_ingests_the_camel_session_per_app_and_user(api):
    expected = manifest_entry("google_adk/session_camel.json")["expected"]
    body = ingest(api, load("google_adk/session_camel.json"), "google_adk")
    assert body["external_id"] == key_of(expected)
    assert body["detected_by"].startswith("rule 2:")
    summary = body["summary"]
    assert summary["message_count"] == expected["messages"]
    assert summary["tool_error_count"] == expected["tool_errors"]
    assert summary["total_tokens"] == expected["tokens"]["total"]
    assert summary["status"] == "error"
    assert summary["user"] == "user-42"

    other = api.post("/sessions", load("google_adk/session_other_user_camel.json"))
    assert other.status_code == 201
    assert other.json()["id"] != body["id"]

    timeline = api.get(f"/sessions/{body['id']}/timeline").json()
    assert SCRIPT in json.dumps(timeline, ensure_ascii=False)


@pytest.mark.django_db
def test_api_refuses_a_dump_with_several_sessions_and_says_what_to_do(api):
    assert_refuses_several_sessions(api, load("google_adk/sqlite_dump.json"))
