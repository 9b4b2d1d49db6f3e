"""Search over every session's whole content: recall, the query language against the
database, combination with filters and keyset paging, where a result matched, and the index
kept in step through new versions, edits, deletes, purges and a rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from sessions_api import db
from sessions_api.demo.load import load_demo
from sessions_api.ingest import services
from sessions_api.models import SearchEntry, Session
from sessions_api.search import index as search_index
from sessions_api.search import matching
from sessions_api.search.finding import find_in_version
from sessions_api.search.query import parse_query
from sessions_api.sessions import selectors
from sessions_api.sessions.selectors import SessionFilters
from tests.support import sample_data
from tests.support.sample_data import ToolSpec, Turn

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def pico(
    session_id: str,
    turns: list[Turn],
    *,
    status: str = "completed",
    hours_ago: float = 1,
    revision: int = 1,
):
    return sample_data.picoflow_document(
        revision=revision,
        session_id=session_id,
        flow="SearchFlow",
        status=status,
        model="gpt-4o",
        started=NOW - timedelta(hours=hours_ago),
        turns=turns,
    )


def ingest(body: bytes, **options) -> str:
    return services.ingest_document(body=body, now=NOW, **options).id


def found(q: str, **filters) -> list[str]:
    page = selectors.list_sessions(filters=SessionFilters(q=q, **filters), limit=200)
    return sorted(record.external_id for record in page.items)


@pytest.fixture
def corpus() -> dict[str, str]:
    return {
        "s-refund": ingest(
            pico(
                "s-refund",
                [
                    Turn(user="Where is my refund for order 4417?", reply="Let me check."),
                    Turn(
                        user="Still nothing",
                        reply="The refund was issued yesterday.",
                        tools=[
                            ToolSpec(
                                "lookup_order",
                                {"order_id": "ord_4417"},
                                "Error: payment gateway timeout after 30s",
                                status="error",
                            )
                        ],
                    ),
                ],
            )
        ),
        "s-cjk": ingest(
            pico(
                "s-cjk",
                [Turn(user="我的订单处理失败了", reply="正在为您查询订单状态")],
                status="running",
                hours_ago=30,
            )
        ),
        "s-weather": ingest(
            pico(
                "s-weather",
                [
                    Turn(
                        user="Weather in Lisbon?",
                        reply="Sunny.",
                        tools=[ToolSpec("get_weather", {"city": "Lisbon"}, "22C")],
                    )
                ],
            )
        ),
    }


@pytest.fixture(params=[False, True], ids=["rows-waiting", "rows-indexed"])
def indexed(request) -> bool:
    """Whether the index job has run: search reads rows it has not indexed yet directly."""
    return request.param


def test_words_phrases_case_ids_tools_and_cjk(corpus, indexed):
    if indexed:
        search_index.index_waiting()
    assert found("REFUND") == ["s-refund"]
    assert found("refund lisbon") == []  # every word must match
    assert found("refund 4417") == ["s-refund"]  # words in different events
    assert found('"payment gateway timeout"') == ["s-refund"]
    assert found('"gateway payment"') == []
    assert found("ord_4417") == ["s-refund"]  # a tool argument, inside an id
    assert found("lookup_order") == ["s-refund"]  # a tool name
    assert found("处理失败") == ["s-cjk"]  # CJK by substring
    assert found("订单") == ["s-cjk"]  # two characters: below the trigram, still found
    assert found("s-weath") == ["s-weather"]  # the session's own id
    assert found("SearchFlow") == ["s-cjk", "s-refund", "s-weather"]  # agent
    assert found("nothing-like-this-anywhere") == []


@pytest.mark.parametrize("few", [0, 5000], ids=["walked-as-common", "filtered-as-rare"])
def test_common_and_rare_terms_select_the_same_sessions(corpus, monkeypatch, few, indexed):
    if indexed:
        search_index.index_waiting()
    monkeypatch.setattr(matching, "FEW_SESSIONS", few)
    assert found("refund 4417") == ["s-refund"]
    assert found('"payment gateway timeout"') == ["s-refund"]
    assert found('"ment gateway tim"') == ["s-refund"]  # a phrase inside longer words
    assert found('"gateway payment"') == []
    assert found('"PAYMENT gateway"', status=["running"]) == []
    assert found("SearchFlow", status=["running"]) == ["s-cjk"]
    assert found("订单") == ["s-cjk"]
    assert found("nothing-like-this-anywhere") == []


def test_a_term_no_session_holds_ends_the_lookup(corpus, monkeypatch):
    asked = []
    holding = matching.sessions_holding

    def recording(term, *, limit):
        asked.append(term)
        return holding(term, limit=limit)

    monkeypatch.setattr(matching, "sessions_holding", recording)
    monkeypatch.setattr(matching, "worth_walking", lambda query: False)  # the index narrows
    assert found("nothing-like-this-anywhere refund lisbon") == []
    assert asked == ["nothing-like-this-anywhere"]
    asked.clear()
    assert found("refund 4417") == ["s-refund"]  # terms that some session holds: all asked
    assert asked == ["refund", "4417"]


def test_percent_and_underscore_are_literal(corpus):
    ingest(pico("s-lookalike", [Turn(user="ordX4417 and 50 percent", reply="ok")]))
    assert found("ord_4417") == ["s-refund"]  # not ordX4417
    assert found("50%") == []


def test_search_combines_with_filters_and_keyset_pages(corpus):
    assert found("SearchFlow", status=["running"]) == ["s-cjk"]
    assert found("SearchFlow", since=NOW - timedelta(hours=5)) == ["s-refund", "s-weather"]
    first = selectors.list_sessions(filters=SessionFilters(q="SearchFlow"), limit=2)
    second = selectors.list_sessions(
        filters=SessionFilters(q="SearchFlow"), limit=2, cursor=first.next_cursor
    )
    assert len(first.items) == 2 and len(second.items) == 1 and second.next_cursor is None
    assert {r.external_id for r in first.items + second.items} == {"s-refund", "s-weather", "s-cjk"}


def test_a_match_names_its_timeline_event_and_carries_a_snippet(corpus):
    record = selectors.get_session(session_id=corpus["s-refund"])
    match = matching.first_matches([record.id], parse_query("gateway timeout"))[record.id]
    events = selectors.get_parsed_version(record=record).events
    event = events[match.event_index]
    assert event["kind"] == "tool_call" and event["name"] == "lookup_order"
    marked = [piece.lower() for piece, hit in match.snippet.parts() if hit]
    assert marked == ["gateway", "timeout"]


def test_every_message_of_a_2000_message_session_is_searchable():
    load_demo(now=NOW, count=2)  # the demo's set pieces: the hostile one, the 2,002-message one
    row = Session.objects.order_by("-message_count").first()
    assert row.message_count > 2000
    record = selectors.get_session(session_id=str(row.id))
    events = selectors.get_parsed_version(record=record).events
    last_text = next(e["text"] for e in reversed(events) if e["kind"] == "message" and e["text"])
    first_user = next(e["text"] for e in events if e["kind"] == "message" and e["role"] == "user")
    for text in (last_text, first_user):
        assert found(f'"{text}"') == [row.external_id], text
    match = matching.first_matches([record.id], parse_query(f'"{last_text}"'))[record.id]
    assert events[match.event_index]["text"] == last_text


def test_a_new_version_replaces_what_the_old_one_said(corpus):
    ingest(pico("s-weather", [Turn(user="Weather in Porto?", reply="Rain.")], revision=2))
    assert found("lisbon") == []
    assert found("porto") == ["s-weather"]
    record = selectors.get_session(session_id=corpus["s-weather"])
    indexed = [e.event_index for e in search_index.stored_entries(record.id) if e.event_index >= 0]
    events = selectors.get_parsed_version(record=record).events
    assert indexed == [e["index"] for e in events]


def test_delete_and_purge_remove_the_entries(corpus):
    services.delete_session(session_id=corpus["s-refund"])
    db.delete_by_ids(Session, [corpus["s-cjk"]])
    assert found("refund") == [] and found("处理失败") == []
    assert set(SearchEntry.objects.values_list("session_id", flat=True)) == {
        Session.objects.get(external_id="s-weather").id
    }
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:  # the FTS table follows its content table
            cursor.execute("SELECT count(*) FROM search_entry_fts WHERE text LIKE '%refund%'")
            assert cursor.fetchone()[0] == 0


def test_reindex_rebuilds_the_entries_from_the_stored_versions(corpus, capsys):
    before = sorted(SearchEntry.objects.values_list("session_id", "event_index", "text"))
    SearchEntry.objects.all().delete()
    assert found("refund") == []
    call_command("reindex")
    assert "reindexed 3 session(s), 0 failed" in capsys.readouterr().out
    assert sorted(SearchEntry.objects.values_list("session_id", "event_index", "text")) == before
    assert found("refund") == ["s-refund"]


def test_the_find_box_searches_the_version_shown(corpus):
    ingest(pico("s-weather", [Turn(user="Weather in Porto?", reply="Rain.")], revision=2))
    record = selectors.get_session(session_id=corpus["s-weather"])
    assert find_in_version(record=record, version=2, text="lisbon").total == 0
    older = find_in_version(record=record, version=1, text="lisbon")
    assert older.total == 2  # the question and the tool call's arguments
    assert [hit.kind for hit in older.hits] == ["message", "tool_call"]


@pytest.mark.parametrize("in_pages", [False, True], ids=["one-query", "a-page-at-a-time"])
@pytest.mark.parametrize("walk_pages", [1, 100])
def test_pages_are_the_same_whether_the_first_sessions_fill_them_or_the_index_narrows(
    corpus, monkeypatch, walk_pages, in_pages
):
    # One page's worth checked first: with pages of one session, two are looked at, so a term
    # the third session holds is left to the index; a hundred pages' worth sees them all.
    monkeypatch.setattr(matching, "WALK_PAGES", walk_pages)
    monkeypatch.setattr(matching, "WALK_IN_PAGES", in_pages)

    def paged(q: str) -> list[str]:
        names, cursor = [], None
        while True:
            page = selectors.list_sessions(filters=SessionFilters(q=q), limit=1, cursor=cursor)
            names += [record.external_id for record in page.items]
            if page.next_cursor is None:
                return names
            cursor = page.next_cursor

    every = paged("SearchFlow")  # newest first: the two of an hour ago (in id order), then
    assert sorted(every[:2]) == ["s-refund", "s-weather"] and every[2:] == ["s-cjk"]
    assert paged("处理失败") == ["s-cjk"]  # the oldest: beyond the first two
    assert paged("refund 4417") == ["s-refund"]
    assert paged("nothing-like-this-anywhere") == []
