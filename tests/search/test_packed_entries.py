"""Search entries are stored packed, consecutive events sharing a row one line each: what goes
in comes back out, a term never matches across two events, and a merged save's cut through a
row keeps the events before it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from sessions_api.ingest import services
from sessions_api.models import SearchEntry
from sessions_api.search import index, matching
from sessions_api.search.entries import SearchEntryRow
from sessions_api.search.query import parse_query
from sessions_api.sessions import selectors
from sessions_api.sessions.selectors import SessionFilters
from tests.support import sample_data
from tests.support.sample_data import Turn

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def entry(event_index: int, seq: int | None, text: str, kind: str = "message") -> SearchEntryRow:
    return SearchEntryRow(event_index=event_index, seq=seq, kind=kind, text=text)


def test_packing_keeps_every_entry_and_cuts_long_runs_and_gaps(monkeypatch):
    monkeypatch.setattr(index, "PACK_CHARS", 10)
    own = SearchEntryRow(event_index=-1, seq=None, kind="session", text="s-1 agent")
    entries = [own, entry(0, 0, "abcd"), entry(1, 0, "", "tool_call"), entry(2, 1, "efgh")]
    entries += [entry(3, 2, "ijklmnop"), entry(7, 5, "after a gap")]
    rows = index.pack(entries)
    assert [(r.event_index, r.seq, r.last_seq) for r in rows] == [
        (-1, None, None),
        (0, 0, 1),  # "abcd", "", "efgh": 11 characters with the separators
        (3, 2, 2),
        (7, 5, 5),
    ]
    assert rows[1].text == "abcd\n\nefgh"
    unpacked = [e for r in rows for e in index.unpack(r.event_index, r.events, r.text)]
    assert unpacked == entries


def ingest_turns(session_id: str, turns: list[Turn]):
    body = sample_data.picoflow_document(
        session_id=session_id,
        flow="PackFlow",
        status="completed",
        model="gpt-4o",
        started=NOW,
        turns=turns,
    )
    return services.ingest_document(body=body, now=NOW)


@pytest.mark.django_db
def test_a_phrase_does_not_match_across_two_events_of_one_row():
    outcome = ingest_turns("s-pack", [Turn(user="ends with alpha", reply="beta begins here")])
    assert SearchEntry.objects.filter(session_id=outcome.id, event_index__gte=0).count() == 1

    def found(q: str) -> int:
        return len(selectors.list_sessions(filters=SessionFilters(q=q), limit=10).items)

    assert found("alpha beta") == 1  # words may sit in different events
    assert found('"alpha beta"') == 0
    assert found('"beta begins"') == 1


@pytest.mark.django_db
def test_a_match_names_the_event_inside_its_row():
    outcome = ingest_turns(
        "s-pack-match", [Turn(user="first question", reply="an answer about kiwis")]
    )
    match = matching.first_matches([outcome.id], parse_query("kiwis"))[outcome.id]
    events = selectors.get_parsed_version(
        record=selectors.get_session(session_id=outcome.id)
    ).events
    assert match.event_index is not None and match.event_index > 0
    assert "kiwis" in events[match.event_index]["text"]
    assert match.snippet.text.startswith("an answer about kiwis")


@pytest.mark.django_db
def test_a_cut_through_a_row_keeps_the_events_before_it():
    outcome = ingest_turns("s-pack-cut", [Turn(user="one", reply="two")])
    entries = [entry(0, 0, "zero"), entry(1, 1, "one"), entry(2, 1, "", "tool_call")]
    entries += [entry(3, 2, "two"), entry(4, 3, "three")]
    index.write_entries(outcome.id, entries, replace=True)
    assert SearchEntry.objects.filter(session_id=outcome.id).count() == 1
    assert index.events_before(outcome.id, 0) == 0
    assert index.events_before(outcome.id, 2) == 3
    assert index.events_before(outcome.id, 9) == 5
    index.remove_from(outcome.id, 3)  # the events of message 2 on
    assert index.stored_entries(outcome.id) == entries[:3]
    assert index.events_before(outcome.id, 2) == 3


def fts_check() -> None:
    """FTS5's own check that its index holds exactly the content table's rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO search_entry_fts(search_entry_fts, rank) VALUES ('integrity-check', 1)"
        )


def pair_rows(token: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM search_pair_fts WHERE search_pair_fts MATCH %s", [f'"{token}"']
        )
        return cursor.fetchone()[0]


def set_waiting_limit(rows: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE search_entry_fts_progress SET waiting_limit = %s", [rows])


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="the FTS5 table is SQLite's")
def test_rows_waiting_for_the_fts_table_are_found_and_indexed_by_the_job():
    def found(q: str) -> list[str]:
        page = selectors.list_sessions(filters=SessionFilters(q=q), limit=100)
        return sorted(record.external_id for record in page.items)

    waiting = ingest_turns("s-waiting", [Turn(user="a pelican order", reply="noted")])
    assert index.waiting_rows() == 2 and found("pelican") == ["s-waiting"]
    for n in range(40):  # two rows each, all left waiting: ingest does not tokenize
        ingest_turns(f"s-batch-{n}", [Turn(user=f"pelican number {n}", reply="ok")])
    assert index.waiting_rows() == 82
    assert len(found("pelican")) == 41
    assert index.index_search(now=timezone.now(), dry_run=True).counts() == {
        "indexed_rows": 0,
        "waiting_rows": 82,
        "transactions": 0,
    }
    run = index.index_search(now=timezone.now(), batch_size=30)
    assert (run.indexed_rows, run.waiting_rows, run.transactions) == (82, 0, 3)
    assert pair_rows("canord") == 1 and pair_rows("cannum") == 40
    assert index.index_search(now=timezone.now()).nothing_to_do == "no entries waiting"
    fts_check()
    assert len(found("pelican")) == 41
    # Deleting rows indexed and rows waiting keeps the index exact.
    ingest_turns("s-late", [Turn(user="pelican late", reply="ok")])
    services.delete_session(session_id=waiting.id)
    services.delete_session(session_id=selectors.get_session(session_id="s-late").id)
    assert found('"pelican order"') == [] and found('"pelican late"') == []
    index.index_search(now=timezone.now())
    fts_check()
    assert len(found("pelican")) == 40
    # The phrase tokens of the rows deleted went with them; those of the others are there.
    assert pair_rows("canord") == 0 and pair_rows("cannum") == 40


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="the FTS5 table is SQLite's")
def test_a_write_past_the_waiting_limit_indexes_the_oldest_quarter_itself():
    set_waiting_limit(8)
    for n in range(4):  # two rows each: 8 waiting, not past the limit
        ingest_turns(f"s-limit-{n}", [Turn(user=f"heron {n}", reply="ok")])
    assert index.waiting_rows() == 8
    ingest_turns("s-limit-4", [Turn(user="heron 4", reply="ok")])
    # The 9th row went past 8: the oldest 2 were indexed, then the 10th row waited.
    assert index.waiting_rows() == 8
    index.index_search(now=timezone.now())
    fts_check()
    assert index.waiting_rows() == 0
    page = selectors.list_sessions(filters=SessionFilters(q="heron"), limit=100)
    assert len(page.items) == 5


@pytest.mark.django_db(transaction=True)
def test_the_migration_packs_the_entries_stored_one_per_event():
    outcome = ingest_turns("s-migrated", [Turn(user="a walrus asks", reply="a kiwi answers")])
    expected = index.stored_entries(outcome.id)
    executor = MigrationExecutor(connection)
    executor.migrate([("sessions_api", "0013_derived_rows_indexed_by_session_and_message")])
    try:
        with connection.cursor() as cursor:  # as that schema stores them: one row per event
            cursor.execute(
                "SELECT event_index, seq, kind, text FROM sessions_api_searchentry "
                "WHERE session_id = %s ORDER BY event_index",
                [uuid.UUID(outcome.id).hex if connection.vendor == "sqlite" else outcome.id],
            )
            assert cursor.fetchall() == [(e.event_index, e.seq, e.kind, e.text) for e in expected]
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert index.stored_entries(outcome.id) == expected
    assert SearchEntry.objects.filter(session_id=outcome.id).count() == 2
    found = selectors.list_sessions(filters=SessionFilters(q='"kiwi answers"'), limit=5).items
    assert [record.external_id for record in found] == ["s-migrated"]
    if connection.vendor == "sqlite":
        fts_check()


@pytest.mark.django_db
def test_a_match_is_in_the_first_row_that_holds_a_term(monkeypatch):
    monkeypatch.setattr(index, "PACK_CHARS", 40)  # about a turn per row
    turns = [Turn(user=f"question {n} about the weather", reply=f"answer {n}") for n in range(6)]
    turns[2] = Turn(user="question 2 about kiwis", reply="answer 2")
    turns[4] = Turn(user="question 4", reply="more kiwis here")
    outcome = ingest_turns("s-pack-first", turns)
    assert SearchEntry.objects.filter(session_id=outcome.id, event_index__gte=0).count() > 4
    events = selectors.get_parsed_version(
        record=selectors.get_session(session_id=outcome.id)
    ).events
    for q, expected in (("kiwis", "question 2 about kiwis"), ("here", "more kiwis here")):
        match = matching.first_matches([outcome.id], parse_query(q))[outcome.id]
        assert events[match.event_index]["text"] == expected, q
    match = matching.first_matches([outcome.id], parse_query("here kiwis"))[outcome.id]
    assert events[match.event_index]["text"] == "question 2 about kiwis"  # the first of any


@pytest.mark.django_db
def test_a_walk_that_finds_no_holder_on_its_first_page_asks_the_index(monkeypatch):
    monkeypatch.setattr(matching, "WALK_IN_PAGES", True)
    monkeypatch.setattr(matching, "worth_walking", lambda query: True)  # SQLite's glance
    for n in range(6):
        ingest_turns(f"s-walk-{n}", [Turn(user=f"hello {n}", reply="the same reply")])
    walked: list[tuple[int, int]] = []
    holding = matching._holding

    def counting(rows, start, stop, query, count):
        walked.append((start, stop))
        return holding(rows, start, stop, query, count)

    monkeypatch.setattr(matching, "_holding", counting)

    def found(q: str) -> list[str]:
        page = selectors.list_sessions(filters=SessionFilters(q=q), limit=2)
        return [record.external_id for record in page.items]

    assert found("no-such-word") == []
    assert walked == [(0, 3)]  # the first page's worth (2 + 1); the index: it is rare
    walked.clear()
    assert found('"hello 0"') == ["s-walk-0"]  # a phrase: the glance is not taken
    assert walked == [(0, 3), (3, 15)]  # then the rest of the window (five pages' worth)
    walked.clear()
    assert len(found("same reply")) == 2
    assert walked == [(0, 3)]  # filled from the first page's worth
