"""The praisonai adapter: detection (rule 11), mapping against the fixtures the
real praisonaiagents library wrote (tests/fixtures/manifest.json), and bad input."""

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

from sessions_api.domain import Role, SessionStatus, StatusSource, TokenSource, ToolStatus
from sessions_api.formats import registry
from sessions_api.formats.base import InvalidDocument
from sessions_api.formats.pairing import count_recorded_tool_errors
from sessions_api.formats.praisonai import parse as praisonai
from sessions_api.sessions.timeline import build_timeline

ENTRIES = manifest_entries("praisonai")


def entry(name: str) -> dict[str, Any]:
    return next(e for e in ENTRIES if e["path"] == f"praisonai/{name}")


def test_every_praisonai_fixture_is_in_the_manifest():
    on_disk = {f"praisonai/{p.name}" for p in (FIXTURES / "praisonai").glob("*.json")}
    assert on_disk == {e["path"] for e in ENTRIES}
    assert len(ENTRIES) == 5


# ------------------------------------------------------------------------ manifest fixtures


@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_fixture_detects_and_parses_as_praisonai(item):
    doc = load(item["path"])
    detection, parsed = registry.parse_document(doc)

    assert detection.format_id == "praisonai"
    assert detection.rule.startswith("rule 11:")
    hierarchical = "HierarchicalSessionStore" in item["shape"]
    assert detection.variant == ("hierarchical" if hierarchical else "default")
    assert parsed.session.format_variant == detection.variant


@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_fixture_counts_match_the_manifest(item):
    expected = item["expected"]
    session = praisonai.ADAPTER.parse(load(item["path"])).session
    messages = session.messages

    assert session.external_id == expected["external_id"]
    assert session.user_id == expected["user_id"]
    assert session.agent_name == expected["agent_name"]
    assert session.parent_external_id == expected["parent_id"]
    assert len(messages) == expected["messages"]
    assert sum(1 for m in messages if m.extra.get("archived")) == expected["archived_messages"]
    assert sum(1 for m in messages if not m.extra.get("archived")) == expected["active_messages"]
    assert (
        sum(1 for m in messages if m.extra.get("compaction_summary"))
        == expected["compaction_summaries"]
    )
    assert sum(1 for m in messages if m.extra.get("partial")) == expected["partial_messages"]
    assert dict(Counter(m.raw_role or m.role.value for m in messages)) == expected["roles"]
    assert len(session.tool_calls) == expected["tool_calls"]
    assert sum(1 for m in messages if m.role is Role.TOOL) == expected["tool_results"]
    pending = [c for c in session.tool_calls if c.status is ToolStatus.PENDING]
    assert len(pending) == expected["unpaired_tool_calls"]
    assert count_recorded_tool_errors(messages) == expected["tool_errors"]
    heuristic_errors = [
        c
        for c in session.tool_calls
        if c.status is ToolStatus.ERROR and c.status_source is StatusSource.HEURISTIC
    ]
    assert len(heuristic_errors) == expected["tool_errors_heuristic"]
    assert ("last_compaction" in session.metadata) == expected["has_last_compaction"]
    assert not any(
        m.role is Role.SYSTEM and not m.extra.get("compaction_summary") for m in messages
    )


@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_tokens_are_the_session_total_and_a_recorded_zero_is_not_reported(item):
    expected = item["expected"]["tokens"]
    parsed = praisonai.ADAPTER.parse(load(item["path"]))
    tokens = parsed.session.tokens

    assert tokens.input is None and tokens.output is None
    if expected["total"]:
        assert tokens.total == expected["total"]
        assert tokens.source is TokenSource.REPORTED
        assert "tokens_not_reported" not in codes(parsed)
    else:
        # Streaming runs record total_tokens: 0 whatever they used: unknown, never a claimed 0.
        assert tokens.total is None
        assert "tokens_not_reported" in codes(parsed)
        assert parsed.session.metadata["recorded_usage"]["total_tokens"] == 0
        assert parsed.session.metadata.get("cost") is None


@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_every_message_text_is_in_the_timeline(item):
    session = praisonai.ADAPTER.parse(load(item["path"])).session

    assert_message_texts_in_timeline(session, item["coverage"])


@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_messages_keep_explicit_epoch_timestamps_and_the_model(item):
    doc = load(item["path"])
    session = praisonai.ADAPTER.parse(doc).session

    raw = [*doc["archived_messages"], *doc["messages"]]
    for message, source in zip(session.messages, raw, strict=True):
        assert message.timestamp is not None
        assert message.timestamp.timestamp() == pytest.approx(source["timestamp"])
        assert message.timestamp_source.value == "explicit"
    assert session.models == [doc["model"]]


# ------------------------------------------------------------------------- specific shapes


def test_compaction_moves_turns_to_archived_and_the_summary_is_flagged():
    session = praisonai.ADAPTER.parse(load("praisonai/praison-session-trip-0001.json")).session
    messages = session.messages

    assert [m.extra.get("archived", False) for m in messages[:5]] == [True] * 4 + [False]
    summary = messages[4]
    assert summary.role is Role.SYSTEM
    assert summary.content_text.startswith("[Session Summary]")
    assert summary.extra["compaction_summary"] is True
    assert summary.extra["metadata"]["compaction"] is True
    assert session.metadata["last_compaction"]["tokens_before"] == 5800
    assert session.title == "Tokyo trip Grüße, 東京, émoji 🚀"
    assert session.metadata["cost"] == 0.0021


def test_tool_calls_pair_by_id_with_heuristic_status():
    session = praisonai.ADAPTER.parse(load("praisonai/praison-session-trip-0001.json")).session
    calls = {call.call_id: call for call in session.tool_calls}

    weather = calls["call_weather_01"]
    assert weather.name == "get_weather"
    assert weather.arguments == {"city": "東京"}
    assert weather.status is ToolStatus.SUCCESS
    assert weather.status_source is StatusSource.HEURISTIC
    hotel = calls["call_hotel_02"]
    assert hotel.status is ToolStatus.ERROR
    assert hotel.status_source is StatusSource.HEURISTIC
    assert hotel.result_content == "Error: No rooms left in 東京 for 7 nights"
    assert hotel.result_seq == 3
    currency = calls["call_currency_03"]
    assert currency.status is ToolStatus.PENDING
    assert currency.result_seq is None


def test_timeline_marks_the_heuristic_status():
    session = praisonai.ADAPTER.parse(load("praisonai/praison-session-trip-0001.json")).session
    calls = [e for e in build_timeline(session) if e["kind"] == "tool_call"]

    assert {c["call_id"]: c["heuristic"] for c in calls} == {
        "call_weather_01": True,
        "call_hotel_02": True,
        "call_currency_03": False,
    }


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("praison-session-trip-0001.json", SessionStatus.ABORTED),
        ("agent_streaming_run.json", SessionStatus.ABORTED),
        ("agent_chat_run.json", SessionStatus.RUNNING),
        ("fork.json", SessionStatus.RUNNING),
        ("praison-parent-0002.json", SessionStatus.RUNNING),
    ],
)
def test_an_unpaired_final_tool_call_means_aborted(name, status):
    parsed = praisonai.ADAPTER.parse(load(f"praisonai/{name}"))

    assert parsed.session.status is status
    assert parsed.session.raw_status is None
    assert parsed.session.metadata["status_derived_from"]
    if status is SessionStatus.ABORTED:
        assert "tool_call_without_result" in codes(parsed)
        assert entry(name)["expected"]["unpaired_tool_calls"] == 1


def test_fork_links_to_its_parent_and_keeps_the_partial_message():
    fork = praisonai.ADAPTER.parse(load("praisonai/fork.json")).session
    parent = praisonai.ADAPTER.parse(load("praisonai/praison-parent-0002.json")).session

    assert fork.parent_external_id == parent.external_id == "praison-parent-0002"
    assert fork.metadata["forked_from_message_id"] == "0"
    assert parent.metadata["children_ids"] == [fork.external_id]
    partial = fork.messages[-1]
    assert partial.extra["partial"] is True
    assert partial.content_text == "…and in the evening, Pontochō al"
    assert fork.title == "Kyoto — rainy-day variant"


def test_snapshots_are_kept_and_the_snapshot_pool_is_summarised():
    session = praisonai.ADAPTER.parse(load("praisonai/praison-parent-0002.json")).session

    assert session.metadata["snapshots"][0]["label"] == "before-fork"
    assert session.metadata["snapshot_storage"] == {"version": 1, "records": 5}


def test_unknown_keys_are_kept_not_dropped():
    doc = load("praisonai/agent_chat_run.json")
    doc["plugin_state"] = {"x": 1}
    doc["messages"][0]["mood"] = "curious"

    session = praisonai.ADAPTER.parse(doc).session

    assert session.metadata["envelope_extra"] == {"plugin_state": {"x": 1}}
    assert session.messages[0].extra["mood"] == "curious"


def test_an_app_set_tool_status_is_a_convention():
    doc = load("praisonai/praison-parent-0002.json")
    doc["messages"][2]["metadata"] = {"status": "error"}

    session = praisonai.ADAPTER.parse(doc).session
    call = session.tool_calls[0]

    assert call.status is ToolStatus.ERROR
    assert call.status_source is StatusSource.CONVENTION
    assert count_recorded_tool_errors(session.messages) == 1


def test_unparseable_arguments_are_kept_verbatim_with_a_warning():
    doc = load("praisonai/praison-parent-0002.json")
    doc["messages"][1]["tool_calls"][0]["function"]["arguments"] = "{not json"

    parsed = praisonai.ADAPTER.parse(doc)
    call = parsed.session.tool_calls[0]

    assert call.arguments == "{not json"
    assert call.arguments_error
    assert "unparseable_tool_arguments" in codes(parsed)


def test_unknown_role_is_other_with_a_warning():
    doc = load("praisonai/agent_chat_run.json")
    doc["messages"][1]["role"] = "critic"

    parsed = praisonai.ADAPTER.parse(doc)

    assert parsed.session.messages[1].role is Role.OTHER
    assert parsed.session.messages[1].raw_role == "critic"
    assert "unknown_role" in codes(parsed)


# ------------------------------------------------------------------------------- detection


def test_no_other_fixture_detects_as_praisonai():
    assert_no_other_fixture_detects_as("praisonai")


@pytest.mark.parametrize(
    "doc",
    [
        {"session_id": "s", "messages": [{"role": "user", "content": "hi"}]},
        {"session_id": "s", "messages": {}, "archived_messages": []},
        {"messages": [], "archived_messages": []},
    ],
    ids=["no-archive-or-runtime-state", "messages-not-a-list", "no-session-id"],
)
def test_rule_11_needs_its_keys(doc):
    assert not any(rule.matches(doc) for rule in praisonai.ADAPTER.rules)


@pytest.mark.parametrize("doc", [None, 0, "x", [], [1], {"session_id": None, "messages": None}])
def test_matches_never_raises(doc):
    for rule in praisonai.ADAPTER.rules:
        assert rule.matches(doc) in (True, False)


# ---------------------------------------------------------------------------- invalid input


def _broken(mutate) -> dict[str, Any]:
    doc = copy.deepcopy(load("praisonai/praison-session-trip-0001.json"))
    mutate(doc)
    return doc


@pytest.mark.parametrize(
    ("mutate", "path", "code"),
    [
        (lambda d: d.update(session_id=["x"]), "/session_id", "wrong_type"),
        (lambda d: d.pop("session_id"), "/session_id", "missing_session_id"),
        (lambda d: d.update(messages={"role": "user"}), "/messages", "wrong_type"),
        (lambda d: d.update(archived_messages="none"), "/archived_messages", "wrong_type"),
        (lambda d: d["messages"].__setitem__(1, "hi"), "/messages/1", "wrong_type"),
        (lambda d: d["messages"][1].update(role=5), "/messages/1/role", "wrong_type"),
        (lambda d: d["messages"][1].update(timestamp=[1]), "/messages/1/timestamp", "wrong_type"),
        (lambda d: d["messages"][1].update(content=7), "/messages/1/content", "wrong_type"),
        (
            lambda d: d["messages"][5]["tool_calls"][0]["function"].update(arguments=3),
            "/messages/5/tool_calls/0/function/arguments",
            "wrong_type",
        ),
        (
            lambda d: d["archived_messages"][2].update(tool_call_id=9),
            "/archived_messages/2/tool_call_id",
            "wrong_type",
        ),
        (lambda d: d.update(metadata=[]), "/metadata", "wrong_type"),
        (lambda d: d.update(created_at=["2026"]), "/created_at", "wrong_type"),
        (lambda d: d.update(parent_id=3), "/parent_id", "wrong_type"),
    ],
)
def test_wrong_types_are_invalid_with_their_path(mutate, path, code):
    with pytest.raises(InvalidDocument) as error:
        praisonai.ADAPTER.parse(_broken(mutate))

    assert error.value.path == path
    assert error.value.code == code


@pytest.mark.parametrize(
    ("total", "code"), [("6113", "unreadable_usage"), (-1, "impossible_token_count")]
)
def test_an_unreadable_or_impossible_total_is_a_warning_not_an_error(total, code):
    # total_tokens is optional data: never coerced ("6113"); a negative count is clamped to 0,
    # which PraisonAI writes when it did not count (so the tokens are unknown).
    doc = _broken(lambda d: d.update(total_tokens=total))
    doc.get("metadata", {}).pop("total_tokens", None)

    parsed = praisonai.ADAPTER.parse(doc)

    assert code in codes(parsed)
    assert parsed.session.tokens.total is None


def test_a_bad_timestamp_is_a_warning_not_an_error():
    doc = _broken(lambda d: d["messages"][1].update(timestamp=1e15))

    parsed = praisonai.ADAPTER.parse(doc)

    assert parsed.session.messages[5].timestamp is None
    assert "bad_timestamp" in codes(parsed)


# ------------------------------------------------------------------------------------- API


@pytest.mark.django_db
@pytest.mark.parametrize("item", ENTRIES, ids=lambda e: e["path"])
def test_api_ingests_the_fixture(api, item):
    answer = ingest(api, (FIXTURES / item["path"]).read_bytes(), "praisonai")

    assert answer["external_id"] == item["expected"]["external_id"]
    assert answer["summary"]["message_count"] == item["expected"]["messages"]
    assert answer["summary"]["tool_error_count"] == item["expected"]["tool_errors"]
    total = item["expected"]["tokens"]["total"] or None
    assert answer["summary"]["total_tokens"] == total
