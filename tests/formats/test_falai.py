"""The falai adapter: detection (rule 10), mapping against the hand-made
@falai/agent fixtures (tests/fixtures/manifest.json), and bad input."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter

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

from sessions_api.domain import Role, SessionStatus, StatusSource, ToolStatus
from sessions_api.formats import registry
from sessions_api.formats.base import InvalidDocument
from sessions_api.formats.falai import parse as falai
from sessions_api.formats.pairing import count_recorded_tool_errors
from sessions_api.sessions.timeline import build_timeline

ENTRIES = manifest_entries("falai")
VARIANTS = {
    "falai/session_state_v2.json": "session-state-2.x",
    "falai/session_state_v1.json": "session-state-1.x",
    "falai/session_state_v0_9.json": "session-state-0.9",
    "falai/prisma_agent_session_row.json": "agent-session-row",
    "falai/export_session_messages.json": "export",
    "falai/agent_message_rows.json": "message-rows",
}
STATUS = {
    "active": SessionStatus.RUNNING,
    "completed": SessionStatus.COMPLETED,
    "abandoned": SessionStatus.ABANDONED,
    None: SessionStatus.UNKNOWN,
}


parse = falai.ADAPTER.parse


def test_every_falai_fixture_is_in_the_manifest():
    on_disk = {f"falai/{p.name}" for p in (FIXTURES / "falai").glob("*.json")}
    assert on_disk == {e["path"] for e in ENTRIES} == set(VARIANTS)


# ------------------------------------------------------------------------ manifest fixtures


@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_fixture_detects_and_parses_as_falai(item):
    detection, parsed = registry.parse_document(load(item["path"]))

    assert detection.format_id == "falai"
    assert detection.rule.startswith("rule 10:")
    assert detection.variant == VARIANTS[item["path"]]
    assert parsed.session.format_variant == detection.variant


@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_fixture_counts_match_the_manifest(item):
    expected = item["expected"]
    parsed = parse(load(item["path"]))
    session = parsed.session

    assert session.external_id == expected["external_id"]
    assert len(session.messages) == expected["messages"]
    assert len(session.tool_calls) == expected["tool_calls"]
    assert count_recorded_tool_errors(session.messages) == expected["tool_errors"] == 0
    assert session.tokens.is_empty
    if "roles" in expected:
        roles = Counter(m.raw_role or m.role.value for m in session.messages)
        assert dict(roles) == expected["roles"]
        assert sum(1 for m in session.messages if m.role is Role.TOOL) == expected["tool_results"]
        heuristic = [
            c
            for c in session.tool_calls
            if c.status is ToolStatus.ERROR and c.status_source is StatusSource.HEURISTIC
        ]
        assert len(heuristic) == expected["tool_errors_heuristic"]
        has_system = any(m.role is Role.SYSTEM for m in session.messages)
        assert has_system == expected["has_system_prompt"]
    if "status" in expected:
        assert session.status is STATUS[expected["status"]]
        assert session.raw_status == expected["status"]
    if "user_id" in expected:
        assert session.user_id == expected["user_id"]
        assert session.agent_name == expected["agent"]
    if "collected_history_messages" in expected:
        assert (
            session.metadata["collected_history_messages"] == expected["collected_history_messages"]
        )
    assert "unmatched_tool_result" not in codes(parsed)


@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_every_message_text_is_in_the_timeline(item):
    session = parse(load(item["path"])).session
    has_messages = bool(item["expected"]["messages"])

    assert_message_texts_in_timeline(
        session, item["coverage"], check_markup=has_messages, check_non_ascii=has_messages
    )


# ------------------------------------------------------------------ SessionState and history


def test_session_state_v2_maps_onto_the_session():
    doc = load("falai/session_state_v2.json")
    session = parse(doc).session

    assert session.status is SessionStatus.UNKNOWN
    assert session.created_at.isoformat() == "2026-11-21T09:00:00+00:00"
    assert session.updated_at.isoformat() == "2026-11-21T09:05:00+00:00"
    assert session.state == doc["data"]
    assert session.metadata["pending_directive"] == {
        "targetFlowId": "payment",
        "reason": "booking confirmed",
    }
    assert session.metadata["version"] == 7
    assert session.revision is None  # a CAS counter shared by the state, row and export
    assert session.metadata["app_metadata"] == {"channel": "web"}
    assert session.messages[1].author == "Anna"


def test_history_tool_calls_pair_by_id_with_heuristic_status():
    session = parse(load("falai/session_state_v2.json")).session
    calls = {c.call_id: c for c in session.tool_calls}

    weather = calls["tc_weather_01"]
    assert weather.arguments == {"city": "東京"}
    assert weather.result_content == {"forecast": "sunny ☀", "high_c": 21}
    assert (weather.status, weather.status_source) == (ToolStatus.SUCCESS, StatusSource.HEURISTIC)
    hotel = calls["tc_hotel_02"]
    assert (hotel.status, hotel.status_source) == (ToolStatus.ERROR, StatusSource.HEURISTIC)


def test_steps_are_the_flow_history_and_the_current_step():
    steps = parse(load("falai/session_state_v2.json")).session.steps

    assert [(s.name, s.level, s.is_active, s.flow) for s in steps] == [
        ("greeting", 1, False, "greeting"),
        ("booking", 1, True, "booking"),
        ("confirm", 2, True, "booking"),
    ]
    assert steps[0].state["completed"] is True
    assert steps[0].saved_at.isoformat() == "2026-11-21T09:01:10+00:00"
    assert steps[1].state["current"]["title"] == "Hotel booking"
    assert steps[2].state["description"] == "Confirm the booking details"


def test_v1_uses_routes_and_keeps_the_pending_transition():
    session = parse(load("falai/session_state_v1.json")).session

    assert [(s.name, s.level) for s in session.steps] == [("booking", 1), ("ask_dates", 2)]
    assert session.metadata["pending_transition"]["targetRouteId"] == "payment"
    assert session.state == {"destination": "Zürich"}


def test_v0_9_has_no_messages_and_data_by_route_goes_on_the_steps():
    session = parse(load("falai/session_state_v0_9.json")).session

    assert session.messages == ()
    steps = {s.name: s for s in session.steps}
    assert steps["greeting"].state["data"] == {"name": "Jürgen"}
    assert steps["faq"].state["data"] == {"question": "Öffnungszeiten?"}
    assert steps["faq"].is_active is True
    assert session.metadata["data_by_route"]["greeting"] == {"name": "Jürgen"}


def test_prisma_row_reads_collected_data_and_row_columns():
    session = parse(load("falai/prisma_agent_session_row.json")).session

    assert session.status is SessionStatus.COMPLETED
    assert session.updated_at.isoformat() == "2026-11-21T09:05:30+00:00"
    assert session.metadata["completed_at"] == "2026-11-21T09:05:30.000Z"
    assert session.metadata["message_count"] == 9
    assert [s.name for s in session.steps] == ["greeting", "booking", "confirm"]
    assert session.steps[2].state == {"description": "Confirm the booking details"}


def test_sqlite_snake_case_row_with_json_text_reads_the_same():
    row = load("falai/prisma_agent_session_row.json")
    snake = {
        "id": row["id"],
        "user_id": row["userId"],
        "agent_name": row["agentName"],
        "status": row["status"],
        "current_flow": row["currentFlow"],
        "current_step": row["currentStep"],
        "collected_data": json.dumps(row["collectedData"]),
        "message_count": row["messageCount"],
        "created_at": row["createdAt"],
        "updated_at": row["updatedAt"],
    }

    detection, parsed = registry.parse_document(snake)
    session, camel = parsed.session, parse(row).session

    assert detection.format_id == "falai"
    assert session.user_id == "user-42"
    assert len(session.messages) == len(camel.messages)
    assert session.steps == camel.steps
    assert session.state == camel.state


@pytest.mark.parametrize("status", ["active", "completed", "abandoned"])
def test_row_status_mapping(status):
    row = load("falai/prisma_agent_session_row.json")
    row["status"] = status

    assert parse(row).session.status is STATUS[status]


# -------------------------------------------------------------------------------------- rows


def test_row_tool_calls_pair_heuristically_by_tool_name():
    session = parse(load("falai/agent_message_rows.json")).session
    calls = {c.call_id: c for c in session.tool_calls}

    weather = calls["falai-msg-0003/0"]
    assert weather.name == "get_weather"
    assert weather.result_seq == 3
    assert weather.result_content == {"data": {"forecast": "sunny ☀"}}
    assert (weather.status, weather.status_source) == (ToolStatus.SUCCESS, StatusSource.HEURISTIC)
    hotel = calls["falai-msg-0003/1"]
    assert hotel.result_seq == 4
    assert (hotel.status, hotel.status_source) == (ToolStatus.ERROR, StatusSource.HEURISTIC)
    result_message = session.messages[4]
    assert result_message.raw_role == "agent"
    assert result_message.extra["tool_pairing"] == "heuristic"
    assert result_message.timestamp.isoformat() == "2026-11-21T09:00:09+00:00"
    assert result_message.flow == "booking" and result_message.step == "confirm"


def test_status_event_rows_are_other_messages_with_their_event():
    message = parse(load("falai/agent_message_rows.json")).session.messages[-1]

    assert message.role is Role.OTHER
    assert message.raw_role == "agent"
    assert message.extra["event"]["data"] == {"status": "completed"}


def test_rows_out_of_order_are_sorted_by_created_at():
    rows = load("falai/agent_message_rows.json")
    shuffled = copy.deepcopy(rows)
    random.Random(4).shuffle(shuffled)

    parsed = parse(shuffled)

    assert [m.external_id for m in parsed.session.messages] == [r["id"] for r in rows]
    assert "rows_reordered" in codes(parsed)
    assert len([c for c in parsed.session.tool_calls if c.result_seq is not None]) == 2


def test_a_tool_row_without_a_matching_call_is_a_call_of_its_own():
    rows = [r for r in load("falai/agent_message_rows.json") if r["id"] != "falai-msg-0003"]

    parsed = parse(rows)
    events = build_timeline(parsed.session)

    assert codes(parsed).count("tool_execution_without_call") == 2
    assert [e["kind"] for e in events].count("tool_result") == 0
    calls = [e for e in events if e["kind"] == "tool_call"]
    assert [(c["name"], c["status"]) for c in calls] == [
        ("get_weather", "success"),
        ("book_hotel", "error"),
    ]
    assert calls[1]["call_id"] == "falai-msg-0005/call"


def test_a_row_with_several_executions_becomes_several_tool_messages():
    rows = load("falai/agent_message_rows.json")
    first = rows[3]["event"]["data"]["tool_calls"][0]
    second = rows[4]["event"]["data"]["tool_calls"][0]
    rows[3]["event"]["data"]["tool_calls"] = [first, second]
    del rows[4]

    session = parse(rows).session
    tools = [m for m in session.messages if m.role is Role.TOOL]

    assert [m.external_id for m in tools] == ["falai-msg-0004#0", "falai-msg-0004#1"]
    assert all(c.result_seq is not None for c in session.tool_calls)


def test_rows_of_several_sessions_warn():
    rows = load("falai/agent_message_rows.json")
    rows[-1]["sessionId"] = "another"

    parsed = parse(rows)

    assert parsed.session.external_id == "falai-session-trip-0001"
    assert "several_session_ids" in codes(parsed)


# ------------------------------------------------------------------------------- detection


def test_no_other_fixture_detects_as_falai():
    assert_no_other_fixture_detects_as("falai")


@pytest.mark.parametrize(
    "doc",
    [
        {"data": {}, "status": "active"},
        {"collectedData": {}},
        {"session": {"id": "x"}, "messages": []},
        [{"sessionId": "s", "role": "user"}],
        [],
        {"messages": [{"role": "agent", "content": "hi"}]},
    ],
    ids=["data-only", "no-status", "export-without-collected", "row-no-created", "empty", "chat"],
)
def test_rule_10_needs_its_keys(doc):
    assert not any(rule.matches(doc) for rule in falai.ADAPTER.rules)


@pytest.mark.parametrize("doc", [None, 0, "x", [1], [None], {"session": None, "messages": 1}])
def test_matches_never_raises(doc):
    for rule in falai.ADAPTER.rules:
        assert rule.matches(doc) in (True, False)


# ---------------------------------------------------------------------------- invalid input


@pytest.mark.parametrize(
    ("name", "mutate", "path", "code"),
    [
        ("session_state_v2.json", lambda d: d.update(id=["x"]), "/id", "wrong_type"),
        ("session_state_v2.json", lambda d: d.pop("id"), "/id", "missing_session_id"),
        ("session_state_v2.json", lambda d: d.update(data=[]), "/data", "wrong_type"),
        ("session_state_v2.json", lambda d: d.update(history={}), "/history", "wrong_type"),
        (
            "session_state_v2.json",
            lambda d: d["history"][2]["tool_calls"][0].update(id=1),
            "/history/2/tool_calls/0/id",
            "wrong_type",
        ),
        (
            "session_state_v2.json",
            lambda d: d["flowHistory"][0].update(flowId=3),
            "/flowHistory/0/flowId",
            "wrong_type",
        ),
        ("session_state_v2.json", lambda d: d.update(currentStep=4), "/currentStep", "wrong_type"),
        (
            "session_state_v2.json",
            lambda d: d["metadata"].update(createdAt=[1]),
            "/metadata/createdAt",
            "wrong_type",
        ),
        ("prisma_agent_session_row.json", lambda d: d.update(status=1), "/status", "wrong_type"),
        (
            "prisma_agent_session_row.json",
            lambda d: d.update(collectedData=[]),
            "/collectedData",
            "wrong_type",
        ),
        (
            "prisma_agent_session_row.json",
            lambda d: d["collectedData"].update(history="x"),
            "/collectedData/history",
            "wrong_type",
        ),
        ("prisma_agent_session_row.json", lambda d: d.update(userId=5), "/userId", "wrong_type"),
        (
            "export_session_messages.json",
            lambda d: d.update(messages={}),
            "/messages",
            "wrong_type",
        ),
        (
            "export_session_messages.json",
            lambda d: d["messages"][2].update(toolCalls={}),
            "/messages/2/toolCalls",
            "wrong_type",
        ),
        (
            "export_session_messages.json",
            lambda d: d["messages"][3]["event"]["data"].update(tool_calls={}),
            "/messages/3/event/data/tool_calls",
            "wrong_type",
        ),
        ("agent_message_rows.json", lambda d: d[0].update(role=2), "/0/role", "wrong_type"),
        ("agent_message_rows.json", lambda d: d[1].update(content=2), "/1/content", "wrong_type"),
        (
            "agent_message_rows.json",
            lambda d: d[1].update(createdAt=[]),
            "/1/createdAt",
            "wrong_type",
        ),
        ("agent_message_rows.json", lambda d: d.__setitem__(2, "row"), "/2", "wrong_type"),
    ],
)
def test_wrong_types_are_invalid_with_their_path(name, mutate, path, code):
    doc = load(f"falai/{name}")
    mutate(doc)

    with pytest.raises(InvalidDocument) as error:
        parse(doc)

    assert error.value.path == path
    assert error.value.code == code


def test_rows_without_a_session_id_are_invalid():
    rows = load("falai/agent_message_rows.json")
    for row in rows:
        row["sessionId"] = None

    with pytest.raises(InvalidDocument) as error:
        registry.parse_document(rows, format_id="falai")

    assert error.value.code == "missing_session_id"


def test_bad_collected_data_text_is_a_warning():
    row = load("falai/prisma_agent_session_row.json")
    row["collectedData"] = "{not json"

    parsed = parse(row)

    assert parsed.session.messages == ()
    assert {"unparseable_json_column", "no_collected_data"} <= set(codes(parsed))


# ------------------------------------------------------------------------------------- API


@pytest.mark.django_db
@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_api_ingests_the_fixture(api, item):
    answer = ingest(api, (FIXTURES / item["path"]).read_bytes(), "falai")

    assert answer["external_id"] == item["expected"]["external_id"]
    assert answer["summary"]["message_count"] == item["expected"]["messages"]
    assert answer["summary"]["tool_error_count"] == 0
    assert answer["summary"]["total_tokens"] is None
