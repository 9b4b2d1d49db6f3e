"""Incremental derivation gives what a whole parse gives: after every save of every sequence
below (fixtures, the demo data, random edits), the stored index row, derived rows, search
entries and warnings equal build_index over a whole parse of the stored version, and the stored
bytes come back byte for byte (the timeline is built from them when read)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions_api.demo.dataset import generate_documents
from sessions_api.errors import InvalidDocument
from sessions_api.formats import parse_document
from sessions_api.formats.decoding import decode_document
from sessions_api.ingest import incremental, services
from sessions_api.ingest.indexing import build_index
from sessions_api.models import ModelUsage, SearchEntry, Session, SessionError, ToolCallRecord
from sessions_api.search import index as search_index
from sessions_api.sessions.timeline import build_timeline
from sessions_api.storage import get_document_store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def merges(monkeypatch):
    """How many saves the merge derived (not the whole parse)."""
    count = {"merged": 0}
    real = incremental.merge

    def counting(*args, **kwargs):
        result = real(*args, **kwargs)
        count["merged"] += result is not None
        return result

    monkeypatch.setattr(incremental, "merge", counting)
    return count


def assert_matches_whole_parse(session_id: str, body: bytes) -> None:
    row = Session.objects.get(id=session_id)
    stored = get_document_store().get(session_id=session_id, version=row.latest_version)
    assert stored == body
    doc = decode_document(stored, services.decode_limits())
    _, parsed = parse_document(doc, format_id=row.format)
    warnings = list(parsed.warnings)
    if row.external_id.startswith("sha256:"):
        services._session_key(None, None, stored, warnings)
    index = build_index(
        parsed.session,
        warnings,
        first_received_at=row.first_received_at,
        received_at=row.last_received_at,
    )
    for column, value in index.columns.items():
        assert getattr(row, column) == value, column
    tool_calls = ToolCallRecord.objects.filter(session=row).order_by("id")
    names = list(index.tool_calls[0].__dataclass_fields__) if index.tool_calls else []
    assert [tuple(getattr(r, n) for n in names) for r in tool_calls] == [
        tuple(getattr(r, n) for n in names) for r in index.tool_calls
    ]
    errors = SessionError.objects.filter(session=row).order_by("id")
    names = list(index.errors[0].__dataclass_fields__) if index.errors else []
    assert len(errors) == len(index.errors)
    assert [tuple(getattr(r, n) for n in names) for r in errors] == [
        tuple(getattr(r, n) for n in names) for r in index.errors
    ]
    usage = {
        u.model: (
            u.message_count,
            u.input_tokens,
            u.output_tokens,
            u.total_tokens,
            u.cached_input_tokens,
        )
        for u in ModelUsage.objects.filter(session=row)
    }
    assert usage == {
        u.model: (
            u.message_count,
            u.input_tokens,
            u.output_tokens,
            u.total_tokens,
            u.cached_input_tokens,
        )
        for u in index.model_usage
    }
    assert search_index.stored_entries(row.pk) == index.search_entries
    assert build_timeline(parsed.session) is not None


def save(
    body: bytes, *, at: datetime, external_id: str | None = None, format_id: str | None = None
):
    return services.ingest_document(body=body, now=at, external_id=external_id, format_id=format_id)


def growing_versions(doc: Any) -> list[Any]:
    """Versions of a chat document that grow by its messages: a third, two thirds, all."""
    messages = doc if isinstance(doc, list) else doc["messages"]
    cuts = sorted({max(1, len(messages) * n // 3) for n in (1, 2, 3)})
    versions = []
    for cut in cuts:
        if isinstance(doc, list):
            versions.append(messages[:cut])
        else:
            versions.append({**doc, "messages": messages[:cut]})
    return versions


def is_session_document(path: Path) -> bool:
    """Fixtures also hold framework stores and artifacts: only documents ingest accepts whole."""
    try:
        parse_document(json.loads(path.read_bytes()))
    except Exception:
        return False
    return True


FIXTURE_FILES = sorted(p for p in FIXTURES.rglob("*.json") if is_session_document(p))


@pytest.mark.django_db
@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_fixture_derives_as_a_whole_parse_when_saved_growing(path):
    doc = json.loads(path.read_bytes())
    bodies = [path.read_bytes()]
    if isinstance(doc, list) or isinstance(doc.get("messages"), list):
        bodies = [json.dumps(v).encode() for v in growing_versions(doc)] + bodies
    session_id = None
    for step, body in enumerate(bodies):
        try:
            outcome = save(
                body, at=T0 + timedelta(minutes=step), external_id=f"fixture-{path.stem}"
            )
        except Exception as exc:  # a cut the format refuses, or an id the document contradicts
            if step < len(bodies) - 1:
                continue
            outcome = save(body, at=T0 + timedelta(minutes=step))
            del exc
        session_id = outcome.id
        assert_matches_whole_parse(session_id, body)


@pytest.mark.django_db
def test_the_demo_data_derives_as_a_whole_parse(merges):
    for document in generate_documents(now=T0, count=24):
        outcome = save(document.body, at=document.received_at, format_id=document.format_id)
        assert_matches_whole_parse(outcome.id, document.body)
    assert merges["merged"] > 0


def chat(session_id: str, messages: list[dict[str, Any]], **envelope: Any) -> bytes:
    return json.dumps(
        {"id": session_id, "model": "gpt-4.1", **envelope, "messages": messages}
    ).encode()


def turn(
    number: int, *, calls: int, failing: bool = False, answered: bool = True
) -> list[dict[str, Any]]:
    ids = [f"call_{number}_{n}" for n in range(calls)]
    out: list[dict[str, Any]] = [{"role": "user", "content": f"question {number}"}]
    if calls:
        out.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
                    for i in ids
                ],
            }
        )
        if answered:
            out += [
                {"role": "tool", "tool_call_id": i, "content": "Error: down" if failing else "{}"}
                for i in ids
            ]
    out.append({"role": "assistant", "content": f"answer {number} " * 40})
    return out


@pytest.mark.django_db
def test_a_growing_chat_is_merged_and_matches_a_whole_parse_after_every_save(merges):
    messages: list[dict[str, Any]] = [{"role": "system", "content": "be brief"}]
    for number in range(12):
        messages += turn(number, calls=number % 3, failing=number % 4 == 1)
        body = chat(
            "grow-1", messages, usage={"prompt_tokens": 10 * number, "completion_tokens": 1}
        )
        outcome = save(body, at=T0 + timedelta(minutes=number))
        assert_matches_whole_parse(outcome.id, body)
    assert merges["merged"] == 11


@pytest.mark.django_db
def test_a_save_cut_between_a_call_and_its_result_is_merged_from_that_call_on(merges):
    messages = turn(0, calls=1)
    body = chat("grow-pending", messages)
    outcome = save(body, at=T0)
    pending = turn(1, calls=2, answered=False)[:2]  # the user, the assistant's calls
    body = chat("grow-pending", messages + pending)
    save(body, at=T0 + timedelta(minutes=1))
    assert_matches_whole_parse(outcome.id, body)
    answers = [
        {"role": "tool", "tool_call_id": "call_1_0", "content": "Error: no"},
        {"role": "tool", "tool_call_id": "call_1_1", "content": "{}"},
    ]
    body = chat("grow-pending", messages + pending + answers)
    save(body, at=T0 + timedelta(minutes=2))
    assert_matches_whole_parse(outcome.id, body)
    assert merges["merged"] == 2


# --- random save sequences -------------------------------------------------------------------

MESSAGE_KINDS = st.sampled_from(
    [
        "user",
        "assistant",
        "calls",
        "answer",
        "orphan",
        "timed",
        "usage",
        "model",
        "function_call",
        "agent",
    ]
)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(MESSAGE_KINDS, min_size=0, max_size=6)),
        st.tuples(st.just("edit"), st.integers(0, 40)),
        st.tuples(st.just("truncate"), st.integers(0, 40)),
        st.tuples(
            st.just("envelope"),
            st.sampled_from(
                ["title", "usage", "created", "updated", "model", "no-model", "variables"]
            ),
        ),
    ),
    min_size=1,
    max_size=8,
)


def random_message(kind: str, state: dict[str, Any]) -> dict[str, Any]:
    state["n"] += 1
    n = state["n"]
    if kind == "user":
        return {"role": "user", "content": f"user {n} " * (n % 7)}
    if kind == "assistant":
        return {"role": "assistant", "content": f"reply {n}"}
    if kind == "calls":
        call_id = f"c{n % 5}"  # ids repeat now and then
        state["pending"].append(call_id)
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": f"t{n % 3}", "arguments": "{}"},
                }
            ],
        }
    if kind == "answer" and state["pending"]:
        call_id = state["pending"].pop(0)
        return {"role": "tool", "tool_call_id": call_id, "content": "Error: x" if n % 2 else "ok"}
    if kind in ("answer", "orphan"):
        return {"role": "tool", "tool_call_id": f"unknown{n}", "content": "ok"}
    if kind == "timed":
        return {
            "role": "assistant",
            "content": "t",
            "timestamp": (T0 + timedelta(seconds=n)).isoformat(),
        }
    if kind == "usage":
        return {
            "role": "assistant",
            "content": "u",
            "usage": {"prompt_tokens": n, "completion_tokens": 1},
        }
    if kind == "agent":
        return {"role": "agent", "content": f"agent {n}"}
    if kind == "model":
        return {"role": "assistant", "content": "m", "model": f"model-{n % 2}"}
    return {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}}


@pytest.mark.django_db
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=OPERATIONS)
def test_random_save_sequences_derive_as_a_whole_parse(operations):
    session_key = f"random-{abs(hash(repr(operations)))}"
    existing = Session.objects.filter(external_id=session_key).first()
    if existing is not None:
        services.delete_session(session_id=str(existing.id))
    state: dict[str, Any] = {"n": 0, "pending": []}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "start"}]
    envelope: dict[str, Any] = {}
    at = T0
    for operation, argument in [("append", ["assistant"]), *operations]:
        if operation == "append":
            messages = messages + [random_message(kind, state) for kind in argument]
        elif operation == "edit" and messages:
            messages = copy.deepcopy(messages)
            messages[argument % len(messages)]["content"] = f"edited {argument}"
        elif operation == "truncate":
            messages = messages[: max(1, argument % (len(messages) + 1))]
        elif operation == "envelope":
            if argument == "title":
                envelope["title"] = f"title {len(messages)}"
            elif argument == "usage":
                envelope["usage"] = {"prompt_tokens": len(messages), "completion_tokens": 2}
            elif argument == "created":
                envelope["created"] = 1767225600 + len(messages)
            elif argument == "updated":
                envelope["updated_at"] = (T0 + timedelta(hours=len(messages))).isoformat()
            elif argument == "model":
                envelope["model"] = f"gpt-{len(messages) % 3}"
            elif argument == "variables":
                envelope["variables"] = {"step": len(messages)}
            else:
                envelope["model"] = None
        body = json.dumps(
            {"id": session_key, "model": "gpt-4.1", **envelope, "messages": messages}
        ).encode()
        at += timedelta(minutes=1)
        try:
            outcome = save(body, at=at)
        except Exception as exc:
            pytest.fail(f"a valid document was refused: {exc!r}")
        assert_matches_whole_parse(outcome.id, body)


@pytest.mark.django_db
def test_an_invalid_appended_message_is_refused_as_a_whole_parse_refuses_it():
    messages = turn(0, calls=1)
    outcome = save(chat("grow-invalid", messages), at=T0)
    bad = chat("grow-invalid", [*messages, {"role": "user", "content": 7}])
    with pytest.raises(InvalidDocument) as refused:
        save(bad, at=T0 + timedelta(minutes=1))
    with pytest.raises(InvalidDocument) as whole:
        parse_document(json.loads(bad))
    assert refused.value.path == whole.value.path
    assert Session.objects.get(id=outcome.id).latest_version == 1


@pytest.mark.django_db
def test_a_batch_item_that_extends_a_session_is_refused_alone_when_invalid():
    messages = turn(0, calls=1)
    save(chat("grow-batch", messages), at=T0)
    good = chat("grow-batch", [*messages, *turn(1, calls=0)])
    bad = chat("grow-batch", [*messages, {"role": "user", "content": 7}])
    batch = services.ingest_batch(body=b'{"documents": [' + bad + b"," + good + b"]}")
    assert batch.results[0].error is not None and batch.results[1].outcome is not None
    assert_matches_whole_parse(batch.results[1].outcome.id, good)


@pytest.mark.django_db
def test_a_growth_read_before_another_save_is_parsed_whole(merges):
    messages = turn(0, calls=1)
    outcome = save(chat("grow-race", messages), at=T0)
    late = chat("grow-race", [*messages, *turn(1, calls=1)])
    prepared = services._prepare_document(
        body=late, format_id=None, external_id=None, received_at=T0 + timedelta(minutes=2)
    )
    assert prepared.growth is not None and prepared.growth.version == 1
    save(chat("grow-race", [*messages, *turn(2, calls=2)]), at=T0 + timedelta(minutes=1))
    merged_before = merges["merged"]

    with transaction.atomic():
        stored = services._store_prepared(prepared, source="api", now=T0 + timedelta(minutes=2))

    assert stored.version == 3 and merges["merged"] == merged_before
    assert_matches_whole_parse(outcome.id, late)


# --- search entries ----------------------------------------------------------------------------


def entry_ids(session_id: str) -> dict[int, int]:
    return dict(SearchEntry.objects.filter(session_id=session_id).values_list("event_index", "id"))


@pytest.mark.django_db
def test_a_merged_save_keeps_the_earlier_entries_and_adds_those_of_its_events(merges):
    messages = turn(0, calls=1)
    outcome = save(chat("grow-search", messages), at=T0)
    before = entry_ids(outcome.id)
    body = chat("grow-search", [*messages, *turn(1, calls=2)])
    save(body, at=T0 + timedelta(minutes=1))
    assert merges["merged"] == 1
    assert_matches_whole_parse(outcome.id, body)
    after = entry_ids(outcome.id)
    kept = {index: pk for index, pk in before.items() if index >= 0}
    assert {index: after[index] for index in kept} == kept  # the same rows, not rewritten
    assert len(after) > len(before)


@pytest.mark.django_db
def test_an_event_that_says_nothing_keeps_its_place_in_the_numbering(merges):
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": ""},  # no text, no model: an event saying nothing
    ]
    body = json.dumps({"id": "grow-quiet", "messages": messages}).encode()
    outcome = save(body, at=T0)
    assert [e.text for e in search_index.stored_entries(outcome.id)][1:] == ["first", ""]
    body = json.dumps(
        {"id": "grow-quiet", "messages": [*messages, {"role": "user", "content": "second"}]}
    ).encode()
    save(body, at=T0 + timedelta(minutes=1))
    assert merges["merged"] == 1
    assert_matches_whole_parse(outcome.id, body)
    stored = search_index.stored_entries(outcome.id)
    assert [(e.event_index, e.text) for e in stored][1:] == [(0, "first"), (1, ""), (2, "second")]


@pytest.mark.django_db
def test_a_session_without_search_entries_is_parsed_whole_when_it_grows(merges):
    messages = turn(0, calls=1)
    outcome = save(chat("grow-unindexed", messages), at=T0)
    SearchEntry.objects.filter(session_id=outcome.id).delete()  # stored before search existed
    body = chat("grow-unindexed", [*messages, *turn(1, calls=1)])
    save(body, at=T0 + timedelta(minutes=1))
    assert merges["merged"] == 0
    assert_matches_whole_parse(outcome.id, body)


# --- times of rows whose message has none ----------------------------------------------------


@pytest.mark.django_db
def test_rows_without_a_time_of_their_own_follow_the_session_end_over_merged_saves(merges):
    transcript: list[dict[str, Any]] = []
    for number in range(5):
        transcript += turn(number, calls=2, failing=number == 1)
    # Each turn is a user message, the calls, two results and an answer: every other cut
    # falls between the calls and their results.
    cuts = [5, 7, 12, 15, 17, 22, 25]
    first_ids: set[int] = set()
    for step, cut in enumerate(cuts):
        body = chat("grow-times", transcript[:cut])
        outcome = save(body, at=T0 + timedelta(minutes=3 * step))
        assert_matches_whole_parse(outcome.id, body)
        row = Session.objects.get(id=outcome.id)
        assert row.updated_at == T0 + timedelta(minutes=3 * step)
        times = {r.occurred_at for r in ToolCallRecord.objects.filter(session=row)}
        times |= {r.occurred_at for r in SessionError.objects.filter(session=row)}
        assert times == {row.updated_at}
        if step == 0:
            first_ids = set(ToolCallRecord.objects.filter(session=row).values_list("id", flat=True))
    assert merges["merged"] == len(cuts) - 1
    # The first turn's calls were moved in place, not deleted and written again.
    assert len(first_ids) == 2
    assert ToolCallRecord.objects.filter(id__in=first_ids).count() == 2
