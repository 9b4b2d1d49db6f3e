"""The Picoflow adapter: all three generations, real documents, bad input and detection."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import helpers
import pytest
from helpers import codes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions_api.domain import (
    LogLevel,
    ParsedSession,
    Role,
    SessionStatus,
    StatusSource,
    TimestampSource,
    TokenSource,
    ToolStatus,
)
from sessions_api.formats import registry
from sessions_api.formats.base import InvalidDocument
from sessions_api.formats.openai_chat import parse as openai_chat
from sessions_api.formats.picoflow import parse as picoflow

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SEED = SHARED / "seeds" / "000_fa963f3effebf444.txt"
REAL = SHARED / "formats" / "picoflow-real"


def load(name: str) -> dict[str, Any]:
    """A fixture of tests/fixtures/picoflow by its file name."""
    return helpers.load(f"picoflow/{name}")


def parse(doc: Any) -> ParsedSession:
    return picoflow.ADAPTER.parse(doc)


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(UTC)


def set_at(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``doc`` with the JSON pointer ``path`` set to ``value``."""
    doc = copy.deepcopy(doc)
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if key not in keys}


# --- the tutorial seed (v1-ext) -------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_doc() -> dict[str, Any]:
    if not SEED.exists():
        pytest.skip(f"shared seed document not available at {SEED}")
    text = SEED.read_text(encoding="utf-8")
    chunk = text[text.index("session document from previous run:") : text.index("Wrapping up")]
    return json.loads(chunk[chunk.index("{") : chunk.rindex("}") + 1])


def test_seed_document_maps_to_the_canonical_session(seed_doc: dict[str, Any]) -> None:
    parsed = parse(seed_doc)
    session = parsed.session

    assert session.format_variant == "v1-ext"
    assert session.external_id == "6917ad4ac3d31db001ec2393"
    assert session.agent_name == "TutorialFlow"
    assert session.status is SessionStatus.COMPLETED
    assert len(session.messages) == 12
    assert [m.seq for m in session.messages] == list(range(12))
    assert (session.tokens.input, session.tokens.output, session.tokens.total) == (451, 47, 617)
    assert session.tokens.source is TokenSource.REPORTED
    assert {"gemini-2.0-flash", "gemini-2.5-flash"} <= set(session.models)
    assert session.expires_at == at("2025-11-14T22:29:45.799Z") + timedelta(seconds=50_000)
    assert session.expire_after_s == 50_000
    assert parsed.warnings == ()


def test_seed_tool_calls_pair_with_explicit_status(seed_doc: dict[str, Any]) -> None:
    calls = parse(seed_doc).session.tool_calls

    assert len(calls) == 2
    errors = [c for c in calls if c.status is ToolStatus.ERROR]
    assert len(errors) == 1
    assert errors[0].status_source is StatusSource.EXPLICIT
    assert errors[0].result_content == "Cannot accept John Doe, please choose a different name."
    assert all(c.result_seq is not None for c in calls)


def test_seed_messages_take_step_model_and_time_from_id(seed_doc: dict[str, Any]) -> None:
    messages = parse(seed_doc).session.messages

    first_ai = messages[2]
    assert first_ai.role is Role.ASSISTANT
    assert first_ai.step == "HelloStep"
    assert first_ai.model == "gemini-2.0-flash"
    assert first_ai.timestamp == at("2025-11-14T22:29:31.215Z")
    assert first_ai.timestamp_source is TimestampSource.DERIVED_FROM_ID
    assert messages[-1].model == "gemini-2.5-flash"
    assert messages[1].extra == {"additional_kwargs": {"direct": False}}


# --- own v1-ext fixture: two flows, a transition inside a tool ------------------------------


def test_v1_ext_concatenates_flows_and_namespaces_in_document_order() -> None:
    session = parse(load("v1_ext_two_flows.json")).session

    assert session.status is SessionStatus.ABORTED
    assert session.agent_name == "ReturnsFlow"
    assert [(m.flow, m.namespace) for m in session.messages] == [
        *[("ReturnsFlow", "default")] * 5,
        *[("ReturnsFlow", "refund")] * 2,
        ("SurveyFlow", "survey"),
    ]
    assert session.flows[0]["namespaces"] == ["default", "refund"]
    assert session.flows[0]["current_step"] == "RefundStep"
    assert session.flows[0]["temperature"] == -1
    assert session.context == {
        "ReturnsFlow": {"config": {"shop": "north"}},
        "SurveyFlow": {"config": None},
    }


def test_v1_ext_tool_result_belongs_to_the_calling_step() -> None:
    session = parse(load("v1_ext_two_flows.json")).session

    # The warranty result's id names RefundStep: the transition happened inside the tool.
    result = session.messages[4]
    assert result.step == "LookupStep"
    assert result.extra["id_step"] == "RefundStep"
    assert result.tool_status is ToolStatus.ERROR
    assert result.tool_status_source is StatusSource.EXPLICIT
    statuses = {c.call_id: c.status for c in session.tool_calls}
    assert statuses == {"call-find-77": ToolStatus.SUCCESS, "call-warranty-77": ToolStatus.ERROR}


def test_v1_ext_steps_models_and_mongo_dates() -> None:
    session = parse(load("v1_ext_two_flows.json")).session

    lookup, refund, ask = session.steps
    assert lookup.state == {"order": 77}
    assert lookup.saved_at == at("2026-01-10T08:00:12.600Z")
    assert lookup.model_params == {"temperature": 0.2}
    assert (refund.is_active, refund.model, refund.flow) == (True, "gemini-2.5-pro", "ReturnsFlow")
    # Legacy {"$date": <epoch ms>} is milliseconds, not seconds.
    assert ask.saved_at == at("2026-01-10T08:04:00Z")
    assert [s.order for s in session.steps] == [0, 1, 2]
    assert session.messages[5].model == "gemini-2.5-pro"
    assert session.expires_at == at("2026-01-10T08:05:00Z") + timedelta(hours=1)


def test_v1_ext_string_logs_become_entries_of_their_array_level() -> None:
    logs = parse(load("v1_ext_two_flows.json")).session.logs

    assert [(e.level, e.message, e.seq) for e in logs] == [
        (LogLevel.ERROR, "engine error: refund gateway timed out", 0),
        (LogLevel.WARN, "hallucinated tool: issue_coupon", 1),
    ]


# --- own v1-plain fixture ---------------------------------------------------------------------


def test_v1_plain_structured_output_and_model_params() -> None:
    parsed = parse(load("v1_plain_structured.json"))
    session = parsed.session

    assert session.format_variant == "v1-plain"
    idea = session.messages[2]
    assert idea.content_parts == {"title": "Lentil soup", "minutes": 35, "tags": ["vegan"]}
    assert idea.content_text == ""
    assert idea.model == "gpt-5"
    steps = {s.name: s for s in session.steps}
    assert steps["IdeaStep"].model_params == {
        "preset": "gpt-5",
        "params": {"reasoning": {"effort": "low"}},
    }
    assert steps["EndStep"].state == {"_prompt": "say goodbye"}
    assert session.created_at == at("2026-02-01T10:00:00Z")
    assert parsed.warnings == ()


def test_v1_plain_steps_follow_the_sequence_then_the_rest() -> None:
    session = parse(load("v1_plain_structured.json")).session

    assert [(s.order, s.name) for s in session.steps] == [
        (0, "IdeaStep"),
        (1, "EndStep"),
        (2, "UnusedStep"),
    ]
    assert session.flows[0]["sequence"] == [
        {"step": "IdeaStep", "level": 1},
        {"step": "EndStep", "level": 1},
        {"step": "IdeaStep", "level": 1},
        {"step": "EndStep", "level": 1},
    ]


# --- own v1.5 fixture -------------------------------------------------------------------------


def test_v1_5_session_fields() -> None:
    parsed = parse(load("v1_5_trip.json"))
    session = parsed.session

    assert session.format_variant == "v1.5"
    assert session.external_id == "5b0c7f0e-3d1a-4f7e-9a57-1f1d2b0c9e11"
    assert session.agent_name == "TripFlow"
    assert session.status is SessionStatus.RUNNING
    assert session.revision == 7
    assert session.expires_at is None and session.expire_after_s is None
    assert session.tokens.reasoning == 120
    assert session.tokens.cached == 800
    assert session.tokens.cache_write == 64
    assert session.metadata["visible_output_tokens"] == 220
    assert session.metadata["version"] == 1.5
    assert session.context == {"config": {"locale": "en-GB"}}
    assert parsed.warnings == ()


def test_v1_5_memory_namespaces_timestamps_and_models() -> None:
    session = parse(load("v1_5_trip.json")).session

    assert [m.namespace for m in session.messages] == ["planner"] * 3 + ["booking/hotels"] * 3
    assert session.messages[1].timestamp_source is TimestampSource.EXPLICIT
    assert session.messages[1].author == "ana"
    # No `timestamp`: falls back to the id's time segment.
    assert session.messages[5].timestamp == at("2026-05-02T09:02:03Z")
    assert session.messages[5].timestamp_source is TimestampSource.DERIVED_FROM_ID
    assert session.messages[2].model == "gpt-4.1-mini"  # flow model
    assert session.messages[3].model == "claude-sonnet-4"  # step override
    assert session.models == ["gpt-4.1-mini", "claude-sonnet-4"]
    (call,) = session.tool_calls
    assert (call.status, call.status_source) == (ToolStatus.ERROR, StatusSource.EXPLICIT)


def test_v1_5_steps_sequence_and_current_step() -> None:
    session = parse(load("v1_5_trip.json")).session

    plan, book = session.steps
    assert (plan.name, plan.order, plan.level, plan.is_active) == ("PlanStep", 0, 1, False)
    assert (book.name, book.order, book.level, book.is_active) == ("BookStep", 1, 2, True)
    assert plan.model_params == {
        "provider": "openai",
        "params": {"temperature": 0.3},
        "retryAttempts": 2,
    }
    assert book.model_params == {"provider": "anthropic", "params": {"max_tokens": 1024}}
    assert book.state == {"_prompt": "book a hotel"}
    flow = session.flows[0]
    assert flow["current_step"] == "BookStep"
    assert flow["namespaces"] == ["planner", "booking/hotels"]
    assert flow["summaries"]["planner"]["summary"] == "User wants Lisbon in June."


def test_v1_5_object_log_entries_keep_their_extra_fields() -> None:
    logs = parse(load("v1_5_trip.json")).session.logs

    log, error, warn = logs
    assert (log.level, log.message) == (LogLevel.LOG, "batch 1/1 done")
    assert error.level is LogLevel.ERROR
    assert error.message == "tool search_hotels failed"
    assert error.timestamp == at("2026-05-02T09:02:01.100Z")
    assert error.extra == {"tool": "search_hotels"}
    assert (warn.level, warn.extra) == (LogLevel.WARN, {"attempt": 1})


# --- the real pico-demo documents (v1-plain) ------------------------------------------------

REAL_EXPECTED = [
    ("session-69c03d430daed53aceb358de.json", "HotelFlow", 38, (31108, 10918, 42026)),
    ("session-69c043c3bbbd4f8f919333c2.json", "MedicalFlow", 17, (1019, 154, 1173)),
    ("session-69c0462631d9158caa1f8351.json", "BasicFlow", 36, (2933, 262, 3195)),
    ("session-69c04a40caeefce0902534be.json", "TravelFlow", 27, (10041, 4916, 14957)),
]


def load_real(name: str) -> dict[str, Any]:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"shared real Picoflow document not available at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("name", "flow", "count", "tokens"), REAL_EXPECTED)
def test_real_documents_match_the_readme(
    name: str, flow: str, count: int, tokens: tuple[int, int, int]
) -> None:
    doc = load_real(name)
    parsed = parse(doc)
    session = parsed.session

    assert registry.detect_format(doc).variant == "v1-plain"
    assert session.agent_name == flow
    assert session.status is SessionStatus.COMPLETED
    assert len(session.messages) == count
    assert (session.tokens.input, session.tokens.output, session.tokens.total) == tokens
    assert all(m.timestamp_source is TimestampSource.DERIVED_FROM_ID for m in session.messages)
    assert all(c.status_source is StatusSource.EXPLICIT for c in session.tool_calls)
    assert parsed.warnings == ()


def test_real_basic_flow_has_a_structured_ai_message() -> None:
    session = parse(load_real("session-69c0462631d9158caa1f8351.json")).session

    structured = [m for m in session.messages if isinstance(m.content_parts, dict)]
    assert len(structured) == 1
    assert structured[0].role is Role.ASSISTANT
    assert structured[0].content_parts["title"] == "Galactic High"


def test_real_medical_flow_tool_result_with_next_step_id() -> None:
    session = parse(load_real("session-69c043c3bbbd4f8f919333c2.json")).session

    moved = [m for m in session.messages if "id_step" in m.extra]
    assert [(m.step, m.extra["id_step"]) for m in moved] == [("BookingStep", "EndStep")]


# --- bad input ----------------------------------------------------------------------------

EXT = "v1_ext_two_flows.json"
V15 = "v1_5_trip.json"

WRONG_TYPES = [
    (EXT, "/id", ["665f1c2ab7e4d90012a3c4d5"], "/id"),
    (EXT, "/id", {"$ne": None}, "/id"),
    (EXT, "/runStatus", 2, "/runStatus"),
    (EXT, "/flows", {"name": "ReturnsFlow"}, "/flows"),
    (EXT, "/tokens", "451", "/tokens"),
    (EXT, "/tokens/inputTokens", "451", "/tokens/inputTokens"),
    (EXT, "/tokens/totalTokens", 617.0, "/tokens/totalTokens"),
    (EXT, "/_id/$oid", 12345, "/_id/$oid"),
    (EXT, "/_id", ["x"], "/_id"),
    (EXT, "/createdOn", [2026], "/createdOn"),
    (EXT, "/saveOn/$date", True, "/saveOn/$date"),
    (EXT, "/expireAfter", "50000", "/expireAfter"),
    (EXT, "/expireAfter", 1.5, "/expireAfter"),
    (EXT, "/version", "1", "/version"),
    (EXT, "/flows/0", "ReturnsFlow", "/flows/0"),
    (EXT, "/flows/0/name", 7, "/flows/0/name"),
    (EXT, "/flows/0/memory", {"default": []}, "/flows/0/memory"),
    (EXT, "/flows/0/memory/1", "refund", "/flows/0/memory/1"),
    (EXT, "/flows/0/memory/1/nameSpace", 1, "/flows/0/memory/1/nameSpace"),
    (EXT, "/flows/0/memory/1/history", {"0": {}}, "/flows/0/memory/1/history"),
    (EXT, "/flows/0/memory/0/history/3", "tool says hi", "/flows/0/memory/0/history/3"),
    (EXT, "/flows/0/memory/0/history/3/content", 42, "/flows/0/memory/0/history/3/content"),
    (EXT, "/flows/0/memory/0/history/1/type", ["human"], "/flows/0/memory/0/history/1/type"),
    (EXT, "/flows/0/memory/0/history/1/id", 5, "/flows/0/memory/0/history/1/id"),
    (
        EXT,
        "/flows/0/memory/0/history/2/tool_calls",
        {"id": "x"},
        "/flows/0/memory/0/history/2/tool_calls",
    ),
    (
        EXT,
        "/flows/0/memory/0/history/2/tool_calls/1",
        "call",
        "/flows/0/memory/0/history/2/tool_calls/1",
    ),
    (
        EXT,
        "/flows/0/memory/0/history/2/tool_calls/0/id",
        9,
        "/flows/0/memory/0/history/2/tool_calls/0/id",
    ),
    (
        EXT,
        "/flows/0/memory/0/history/3/tool_call_id",
        1,
        "/flows/0/memory/0/history/3/tool_call_id",
    ),
    (EXT, "/flows/0/memory/0/history/3/status", False, "/flows/0/memory/0/history/3/status"),
    (
        EXT,
        "/flows/0/memory/0/history/1/additional_kwargs",
        [],
        "/flows/0/memory/0/history/1/additional_kwargs",
    ),
    (EXT, "/flows/0/steps", {}, "/flows/0/steps"),
    (EXT, "/flows/0/steps/0/name", None, "/flows/0/steps/0/name"),
    (EXT, "/flows/0/steps/0/isActive", "no", "/flows/0/steps/0/isActive"),
    (EXT, "/flows/0/steps/0/state", ["order"], "/flows/0/steps/0/state"),
    (EXT, "/flows/0/steps/0/modelName", {"name": "x"}, "/flows/0/steps/0/modelName"),
    (EXT, "/flows/0/steps/0/temperature", "0.2", "/flows/0/steps/0/temperature"),
    (EXT, "/flows/0/context", "none", "/flows/0/context"),
    (EXT, "/log", "nothing", "/log"),
    (V15, "/revision", "7", "/revision"),
    (V15, "/flow/memory", [], "/flow/memory"),
    (V15, "/flow/memory/planner", [], "/flow/memory/planner"),
    (V15, "/flow/memory/booking~1hotels/messages", "m", "/flow/memory/booking~1hotels/messages"),
    (
        V15,
        "/flow/memory/planner/messages/0/timestamp",
        17,
        "/flow/memory/planner/messages/0/timestamp",
    ),
    (V15, "/flow/sequence/1", 2, "/flow/sequence/1"),
    (V15, "/flow/sequence/0/stepName", None, "/flow/sequence/0/stepName"),
    (V15, "/flow/model", 3, "/flow/model"),
    (V15, "/flow/steps/0/model/params", "fast", "/flow/steps/0/model/params"),
    (V15, "/flow/currentStep", 1, "/flow/currentStep"),
    (V15, "/tokens/reasoningTokens", "120", "/tokens/reasoningTokens"),
]


@pytest.mark.parametrize(("fixture", "target", "value", "path"), WRONG_TYPES)
def test_wrong_types_are_rejected_with_a_json_pointer(
    fixture: str, target: str, value: Any, path: str
) -> None:
    doc = set_at(load(fixture), target, value)

    with pytest.raises(InvalidDocument) as caught:
        parse(doc)
    assert (caught.value.code, caught.value.path) == ("wrong_type", path)


@pytest.mark.parametrize("doc", [[], "session", 3, None])
def test_a_document_that_is_not_an_object_is_rejected(doc: Any) -> None:
    with pytest.raises(InvalidDocument) as caught:
        parse(doc)
    assert (caught.value.code, caught.value.path) == ("wrong_type", "")


def test_a_flow_that_is_not_an_object_is_reported_at_flow() -> None:
    doc = {"id": "s1", "runStatus": "running", "flow": [], "log": [], "error": [], "warn": []}

    with pytest.raises(InvalidDocument) as caught:
        parse(doc)
    assert caught.value.path == "/flow"


@pytest.mark.parametrize(
    ("target", "value", "path"),
    [
        ("/tokens/outputTokens", -1, "/tokens/outputTokens"),
        ("/tokens/totalTokens", 2**53, "/tokens/totalTokens"),
        ("/expireAfter", -5, "/expireAfter"),
    ],
)
def test_out_of_range_numbers_are_rejected(target: str, value: int, path: str) -> None:
    with pytest.raises(InvalidDocument) as caught:
        parse(set_at(load(EXT), target, value))
    assert (caught.value.code, caught.value.path) == ("out_of_range", path)


@pytest.mark.parametrize("fixture", [EXT, V15])
def test_missing_id_is_rejected(fixture: str) -> None:
    doc = without(load(fixture), "id", "_id")

    with pytest.raises(InvalidDocument) as caught:
        parse(doc)
    assert (caught.value.code, caught.value.path) == ("missing_session_id", "/id")


def test_empty_id_without_mongo_id_counts_as_missing() -> None:
    doc = without(load(EXT), "_id") | {"id": ""}

    with pytest.raises(InvalidDocument) as caught:
        parse(doc)
    assert caught.value.code == "missing_session_id"


@pytest.mark.parametrize(
    "mongo_id", ["665f1c2ab7e4d90012a3c4d5", {"$oid": "665f1c2ab7e4d90012a3c4d5"}]
)
def test_mongo_id_is_the_fallback_id(mongo_id: Any) -> None:
    doc = without(load(EXT), "id") | {"_id": mongo_id}

    assert parse(doc).session.external_id == "665f1c2ab7e4d90012a3c4d5"


def test_id_and_mongo_id_disagreeing_is_a_warning() -> None:
    parsed = parse(load(EXT) | {"id": "other"})

    assert parsed.session.external_id == "other"
    assert "id_mismatch" in codes(parsed)


def test_unknown_run_status_is_kept_raw_with_a_warning() -> None:
    parsed = parse(load(EXT) | {"runStatus": "paused"})

    assert parsed.session.status is SessionStatus.UNKNOWN
    assert parsed.session.raw_status == "paused"
    assert "unknown_status" in codes(parsed)


@pytest.mark.parametrize(
    ("message_id", "warning"),
    [
        ("LookupStep|not-a-time|1000000002", "bad_timestamp"),
        ("LookupStep|+275760-09-13T00:00:00Z|1", "bad_timestamp"),
        ("LookupStep||1", "bad_timestamp"),
        ("plain-uuid-without-segments", "no_message_time"),
    ],
)
def test_bad_message_id_times_are_warnings_not_errors(message_id: str, warning: str) -> None:
    doc = set_at(load(EXT), "/flows/0/memory/0/history/1/id", message_id)

    parsed = parse(doc)
    message = parsed.session.messages[1]
    assert message.timestamp is None
    assert message.timestamp_source is TimestampSource.NONE
    assert message.seq == 1
    assert [(w.code, w.path) for w in parsed.warnings] == [
        (warning, "/flows/0/memory/0/history/1/id")
    ]


def test_message_without_id_has_no_step_and_a_warning() -> None:
    doc = load(EXT)
    del doc["flows"][0]["memory"][0]["history"][1]["id"]

    parsed = parse(doc)
    assert parsed.session.messages[1].step is None
    assert codes(parsed) == ["no_message_time"]


def test_unknown_role_becomes_other() -> None:
    doc = set_at(load(EXT), "/flows/0/memory/1/history/1/type", "generic")

    parsed = parse(doc)
    message = parsed.session.messages[6]
    assert (message.role, message.raw_role) == (Role.OTHER, "generic")
    assert codes(parsed) == ["unknown_role"]


def test_duplicate_call_ids_and_orphan_results_are_warnings() -> None:
    doc = load(EXT)
    doc = set_at(doc, "/flows/0/memory/0/history/2/tool_calls/1/id", "call-find-77")
    doc = set_at(doc, "/flows/0/memory/0/history/4/tool_call_id", "call-nobody-made")

    parsed = parse(doc)
    assert {"duplicate_tool_call_id", "unmatched_tool_result", "tool_call_without_result"} <= set(
        codes(parsed)
    )
    first, second = parsed.session.tool_calls
    assert first.status is ToolStatus.SUCCESS
    assert second.status is ToolStatus.PENDING
    orphan = parsed.session.messages[4]
    assert orphan.tool_call_id == "call-nobody-made"
    assert orphan.step == "RefundStep"  # unpaired: keeps the step its id names


def test_unknown_or_missing_tool_status_is_not_guessed() -> None:
    doc = set_at(load(EXT), "/flows/0/memory/0/history/3/status", "cancelled")
    del doc["flows"][0]["memory"][0]["history"][4]["status"]

    parsed = parse(doc)
    assert "unknown_tool_status" in codes(parsed)
    assert [(c.status, c.status_source) for c in parsed.session.tool_calls] == [
        (ToolStatus.UNKNOWN, StatusSource.NONE),
        (ToolStatus.UNKNOWN, StatusSource.NONE),
    ]


def test_string_arguments_are_parsed_or_kept_verbatim() -> None:
    doc = set_at(load(EXT), "/flows/0/memory/0/history/2/tool_calls/0/args", '{"order": 77}')
    doc = set_at(doc, "/flows/0/memory/0/history/2/tool_calls/1/args", "{order: 77")

    parsed = parse(doc)
    good, bad = parsed.session.tool_calls
    assert (good.arguments, good.arguments_error) == ({"order": 77}, None)
    assert bad.arguments == "{order: 77"
    assert bad.arguments_error
    assert [(w.code, w.path) for w in parsed.warnings] == [
        ("unparseable_tool_arguments", "/flows/0/memory/0/history/2/tool_calls/1/args")
    ]


def test_nan_in_string_arguments_is_refused_with_the_warning_every_format_gives() -> None:
    arguments = '{"order": NaN}'
    doc = set_at(load(EXT), "/flows/0/memory/0/history/2/tool_calls/0/args", arguments)
    chat_call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    chat = openai_chat.ADAPTER.parse([{"role": "assistant", "tool_calls": [chat_call]}])

    parsed = parse(doc)
    call = parsed.session.tool_calls[0]
    assert call.arguments == arguments
    assert call.arguments_error == chat.session.tool_calls[0].arguments_error
    (warning,) = parsed.warnings
    (chat_warning,) = (w for w in chat.warnings if w.code == "unparseable_tool_arguments")
    assert (warning.code, warning.message) == (chat_warning.code, chat_warning.message)
    assert warning.path == "/flows/0/memory/0/history/2/tool_calls/0/args"


def test_odd_log_entries_are_kept_with_warnings() -> None:
    doc = load(V15) | {
        "debug": [17, None, ["a"]],
        "verbose": [{"message": {"k": 1}, "timestamp": "nope"}],
    }

    parsed = parse(doc)
    debug = [e for e in parsed.session.logs if e.level is LogLevel.DEBUG]
    assert [e.message for e in debug] == ["17", "null", '["a"]']
    verbose = [e for e in parsed.session.logs if e.level is LogLevel.VERBOSE]
    assert verbose[0].message == '{"k": 1}'
    assert verbose[0].timestamp is None
    assert codes(parsed).count("odd_log_entry") == 3
    assert "bad_timestamp" in codes(parsed)


def test_implausible_expiry_is_a_warning() -> None:
    parsed = parse(load(EXT) | {"expireAfter": 2**53 - 1})

    assert parsed.session.expires_at is None
    assert parsed.session.expire_after_s == 2**53 - 1
    assert "implausible_expiry" in codes(parsed)


def test_unknown_top_level_keys_are_not_errors() -> None:
    parsed = parse(load(V15) | {"$where": "1", "a.b": {"__proto__": 1}, "expireAfter": "x"})

    assert parsed.session.status is SessionStatus.RUNNING


# --- detection --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "variant"),
    [(EXT, "v1-ext"), ("v1_plain_structured.json", "v1-plain"), (V15, "v1.5")],
)
def test_detection_names_the_generation(fixture: str, variant: str) -> None:
    doc = load(fixture)

    detection = registry.detect_format(doc)
    assert (detection.format_id, detection.variant) == ("picoflow", variant)
    assert detection.rule.startswith("rule 1: Picoflow")
    assert parse(doc).session.format_variant == variant


def test_detection_ignores_plain_message_documents() -> None:
    doc = {"messages": [{"role": "user", "content": "hi"}]}

    assert not any(rule.matches(doc) for rule in picoflow.ADAPTER.rules)
    try:
        detection = registry.detect_format(doc)
    except registry.UnknownFormat:
        return
    assert detection.format_id != "picoflow"


def test_detection_needs_the_log_arrays() -> None:
    doc = without(load(EXT), "warn")

    assert not any(rule.matches(doc) for rule in picoflow.ADAPTER.rules)


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        "runStatus",
        1.5,
        {"runStatus": 1, "flows": 2, "log": 3, "error": 4, "warn": 5},
        {"runStatus": "x", "flow": None, "_id": [], "log": [], "error": [], "warn": []},
    ],
)
def test_rules_answer_bool_on_any_shape(doc: Any) -> None:
    answers = [rule.matches(doc) for rule in picoflow.ADAPTER.rules]

    assert all(isinstance(answer, bool) for answer in answers)
    assert sum(answers) <= 1


def test_exactly_one_rule_matches_each_generation() -> None:
    for fixture in (EXT, "v1_plain_structured.json", V15):
        assert sum(rule.matches(load(fixture)) for rule in picoflow.ADAPTER.rules) == 1
    assert {rule.number for rule in picoflow.ADAPTER.rules} == {1}


# --- robustness: any single-node mutation either parses or raises InvalidDocument -----------


def json_paths(value: Any, path: str = "") -> list[str]:
    paths = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            child = path + "/" + str(key).replace("~", "~0").replace("/", "~1")
            paths += json_paths(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += json_paths(item, f"{path}/{index}")
    return paths


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["a|b|c", "S|2026-01-01T00:00:00Z|1", "tool", "ai"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["$date", "$oid", "name", "messages", "id", "x"]), children, max_size=3
        )
    ),
    max_leaves=6,
)


@pytest.mark.parametrize("fixture", [EXT, "v1_plain_structured.json", V15])
@settings(max_examples=150, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_documents_never_crash(fixture: str, data: st.DataObject) -> None:
    doc = load(fixture)
    target = data.draw(st.sampled_from(json_paths(doc)))
    mutated = set_at(doc, target, data.draw(JSON_VALUES))

    try:
        parsed = parse(mutated)
    except InvalidDocument as error:
        assert error.path.startswith("/") or error.path == ""
    else:
        assert [m.seq for m in parsed.session.messages] == list(range(len(parsed.session.messages)))
