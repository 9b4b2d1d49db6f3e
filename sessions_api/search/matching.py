"""Which sessions a query matches, and where: one place for both databases.

A term (word or phrase) matches a session when it occurs, case-insensitively, inside the text
of any of the session's entries; a query matches when every term does (terms may sit in
different events). Each term narrows the list one of two ways, chosen by asking the index for
the sessions that hold it, at most ``FEW_SESSIONS + 1`` of them:

- few sessions hold it (a rare word, a phrase, an id, a miss): the list is filtered to exactly
  those sessions, then ordered and paged as usual;
- many do (a common word): the list is walked in its own order and each session is checked
  for the term among its own entries, so a page costs about ``limit`` / (share of sessions
  that match) checks, never a pass over every match.

The index: on SQLite an FTS5 table with the trigram tokenizer (``LIKE '%term%'`` is answered
from it for a term of 3 or more characters; a shorter term reads the entries themselves); on
PostgreSQL a trigram GIN index on ``UPPER(text)``, which is what ``icontains`` compares. A
phrase whose spaces make tokens (search/pairs.py) is looked up by those instead: the rows
holding all of a phrase's trigrams are many when its words are common, the rows holding its
tokens few.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value, Window
from django.db.models.functions import RowNumber, StrIndex, Upper
from django.db.models.lookups import GreaterThan

from sessions_api.models import SearchEntry, Session
from sessions_api.search.entries import SESSION_FIELDS
from sessions_api.search.index import EVENT_SEPARATOR, WAITING, event_at
from sessions_api.search.pairs import phrase_tokens, phrase_tokens_upper
from sessions_api.search.query import SearchQuery, term_pattern
from sessions_api.search.snippets import Snippet, make_snippet

# The trigram tokenizer answers a pattern from its index only with 3 or more characters.
TRIGRAM_CHARS = 3
# Up to this many sessions a term counts as rare: the list is filtered to them by id. Asking
# the index costs about this many matches, a walk about 50 / (share of sessions matching)
# sessions: at 20,000 sessions 5,000 made a common word's page 0.8 s (B10), 500 about 0.1 s.
FEW_SESSIONS = 500
# A list page first checks the list's first sessions itself, this many pages' worth: a word
# one session in five holds fills the page there, and asking the index whether more than
# FEW_SESSIONS sessions hold it would have cost more (3.4 of a common word's 8.3 ms at 5,000
# sessions). A rarer query then costs these checks more than before.
WALK_PAGES = 5
# Whether those first sessions are checked by holding_in_order (the first page's worth, then
# the rest, each stopping at the page's last holder) rather than as one filtered query (None:
# on PostgreSQL, whose planner checked all of them before sorting).
WALK_IN_PAGES: bool | None = None


@dataclass(frozen=True)
class SearchMatch:
    """Where a session matched: the first matching timeline event and a snippet of it."""

    event_index: int | None  # None: the session's own fields (ids, title, agent, user)
    seq: int | None
    kind: str
    snippet: Snippet


def walks_in_pages() -> bool:
    return connection.vendor == "postgresql" if WALK_IN_PAGES is None else WALK_IN_PAGES


def holding_in_order(
    rows: QuerySet[Session], query: SearchQuery, count: int, window: int
) -> list[Session] | None:
    """The first ``count`` of the first ``window`` of ``rows`` (ordered) whose entries hold
    every term, in their order; None when they do not fill the page there and the index is to
    narrow the list instead.

    Each session's entries are read up to the first that holds the term, and the walk stops at
    the ``count``-th holder. The first page's worth is checked first: should none of them hold
    the query, the index is asked at a glance whether a term is rare (``_rare_term``), and if
    so the list is narrowed by it rather than checking the rest of the window (what a miss
    cost most)."""
    found = _holding(rows, 0, count, query, count)
    if len(found) >= count:
        return found
    if not found and _rare_term(query):
        return None
    found += _holding(rows, count, window, query, count - len(found))
    if len(found) < count and rows[window - 1 : window].exists():
        return None  # the window is full and does not fill the page
    return found


def _holding(
    rows: QuerySet[Session], start: int, stop: int, query: SearchQuery, count: int
) -> list[Session]:
    """Up to ``count`` of ``rows[start:stop]``, in their order, whose entries hold every term.
    On PostgreSQL one query: the rows, then per row and term a LATERAL read of its entries up
    to the first that holds the term; a nested loop keeps the rows' order, so the LIMIT stops
    the walk at the ``count``-th holder (given the check as a filter, the planner checked every
    session before sorting: 7.5 ms for 255 at 5,000 sessions)."""
    if stop <= start or count <= 0:
        return []
    window = rows[start:stop]
    if connection.vendor != "postgresql":
        ids = list(window.values_list("id", flat=True))
        for term in query.terms:
            holding = set(
                SearchEntry.objects.filter(_in_text(term), session_id__in=ids)
                .values_list("session_id", flat=True)
                .distinct()
            )
            ids = [pk for pk in ids if pk in holding]
        return list(rows.filter(pk__in=ids[:count]))
    table = connection.ops.quote_name(SearchEntry._meta.db_table)
    holds = " ".join(
        f"CROSS JOIN LATERAL (SELECT 1 FROM {table} e WHERE e.session_id = w.id "
        f"AND strpos(UPPER(e.text), UPPER(%s)) > 0 LIMIT 1) t{i}"
        for i in range(len(query.terms))
    )
    try:
        sql, params = window.query.sql_with_params()
    except EmptyResultSet:  # a filter that selects nothing (an empty list of values)
        return []
    return list(
        rows.model.objects.raw(
            f"SELECT w.* FROM ({sql}) w {holds} LIMIT %s", [*params, *query.terms, count]
        )
    )


def _rare_term(query: SearchQuery) -> bool:
    """Whether the index says at a glance that a term is held by at most ``FEW_SESSIONS``
    entries: a missing word costs a fraction of a millisecond (its trigrams are in few rows).
    For a term of 3 characters or more; a phrase by the tokens of its spaces (search/pairs.py),
    without them not at all: a phrase's trigrams are each in many rows (14 ms for "order
    number" at 5,000 sessions)."""
    table = connection.ops.quote_name(SearchEntry._meta.db_table)
    for term in query.terms:
        if len(term) < TRIGRAM_CHARS:
            continue
        if " " in term:
            tokens = phrase_tokens_upper(term)
            if not tokens:
                continue
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM {table} "
                    "WHERE search_pairs(text) @> %s::text[] LIMIT %s) candidates",
                    [tokens, FEW_SESSIONS + 1],
                )
                if cursor.fetchone()[0] <= FEW_SESSIONS:
                    return True
            continue
        rows = SearchEntry.objects.filter(text__icontains=term).values("pk")[: FEW_SESSIONS + 1]
        if rows.count() <= FEW_SESSIONS:
            return True
    return False


def filter_walking(rows: QuerySet[Session], query: SearchQuery) -> QuerySet[Session]:
    """``rows`` narrowed by checking each session's own entries for every term, in the list's
    order: what a page of a common word costs least (``WALK_PAGES``)."""
    for term in query.terms:
        rows = rows.filter(_holds(term))
    return rows


def worth_walking(query: SearchQuery) -> bool:
    """Whether a page is likely to fill from the list's first sessions: not when the index
    says at a glance that a term is rare. On SQLite that glance counts the rows holding all of
    the term's trigrams, without reading any text (a superset of the rows holding the term:
    0.1 to 0.3 ms, where reading the text to be exact cost 3 ms for a common word)."""
    if connection.vendor != "sqlite":
        return True
    for term in query.terms:
        if len(term) < TRIGRAM_CHARS:
            continue
        tokens = phrase_tokens(term)
        if tokens:  # a phrase: the rows holding its spaces' tokens (search/pairs.py)
            table, expression = "search_pair_fts", _fts_all(tokens)
        else:
            trigrams = {term[i : i + TRIGRAM_CHARS] for i in range(len(term) - TRIGRAM_CHARS + 1)}
            table, expression = "search_entry_fts", _fts_all(trigrams)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {table} MATCH %s LIMIT %s)",
                [expression, FEW_SESSIONS + 1],
            )
            if cursor.fetchone()[0] <= FEW_SESSIONS:
                return False
    return True


def _fts_all(tokens: Iterable[str]) -> str:
    """An FTS5 query for rows holding every one of ``tokens``, each quoted as a string."""
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in sorted(tokens))


def _holds(term: str) -> Exists:
    return Exists(SearchEntry.objects.filter(_in_text(term), session_id=OuterRef("pk")))


def _in_text(term: str) -> Q | GreaterThan:
    """An entry's text holds ``term``, as checked among one session's entries. On PostgreSQL
    as ``strpos`` on ``UPPER(text)`` (what ``icontains`` compares), which the trigram index
    cannot answer: given ``LIKE``, the planner read every entry holding a common word's
    trigrams through that index instead of the few sessions' own (seconds at 20,000
    sessions)."""
    if connection.vendor == "postgresql":
        return GreaterThan(StrIndex(Upper("text"), Upper(Value(term))), 0)
    return Q(text__icontains=term)


def filter_matching(rows: QuerySet[Session], query: SearchQuery) -> QuerySet[Session]:
    """``rows`` narrowed to the sessions that hold every term of ``query``. A term no session
    holds settles it: the index is not asked about the others (at 100,000 sessions on
    PostgreSQL, "nowhere" alone cost 20 ms of the miss "zebra quantum nowhere")."""
    for term in query.terms:
        few = sessions_holding(term, limit=FEW_SESSIONS)
        if few == []:
            return rows.none()  # no session holds it: the other terms need not be asked
        rows = rows.filter(pk__in=few) if few is not None else rows.filter(_holds(term))
    return rows


def sessions_holding(term: str, *, limit: int) -> list[Any] | None:
    """The ids of every session holding ``term`` when there are at most ``limit``; else None."""
    if connection.vendor == "sqlite" and len(term) >= TRIGRAM_CHARS:
        ids = _sqlite_sessions_holding(term, limit + 1)
    elif connection.vendor == "postgresql" and (tokens := phrase_tokens_upper(term)):
        ids = _postgresql_phrase_holders(term, tokens, limit + 1)
    else:
        ids = list(
            SearchEntry.objects.filter(text__icontains=term)
            .values_list("session_id", flat=True)
            .distinct()[: limit + 1]
        )
    return ids if len(ids) <= limit else None


def _postgresql_phrase_holders(term: str, tokens: list[str], limit: int) -> list[Any]:
    """A phrase, on PostgreSQL: the rows whose ``search_pairs(text)`` (GIN index, migration
    0019_search_pair_index) hold its spaces' ``tokens``, then the phrase itself."""
    table = connection.ops.quote_name(SearchEntry._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT session_id FROM {table} WHERE search_pairs(text) @> %s::text[] "
            "AND strpos(UPPER(text), UPPER(%s)) > 0 LIMIT %s",
            [tokens, term, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def _sqlite_sessions_holding(term: str, limit: int) -> list[Any]:
    """Read from the FTS5 trigram table and, directly, from the few rows written since it last
    caught up (search/index.py). The table answers ``LIKE`` from its index only without an
    ESCAPE clause: ``%`` and ``_`` in the term then act as wildcards there, so such a term is
    checked again, escaped, against the entry itself."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    tokens = phrase_tokens(term)
    if tokens:
        # A phrase: the rows holding the tokens of its spaces, then the phrase itself.
        indexed = (
            "SELECT e.session_id FROM search_pair_fts p "
            "JOIN sessions_api_searchentry e ON e.id = p.rowid "
            "WHERE search_pair_fts MATCH %s AND e.text LIKE %s ESCAPE '\\'"
        )
        params: list[Any] = [_fts_all(tokens), f"%{escaped}%"]
    else:
        indexed = (
            "SELECT e.session_id FROM search_entry_fts f "
            "JOIN sessions_api_searchentry e ON e.id = f.rowid WHERE f.text LIKE %s"
        )
        params = [f"%{term}%"]
        if "%" in term or "_" in term:
            indexed += " AND e.text LIKE %s ESCAPE '\\'"
            params.append(f"%{escaped}%")
    waiting = (
        f"SELECT session_id FROM sessions_api_searchentry WHERE {WAITING} "
        "AND text LIKE %s ESCAPE '\\'"
    )
    params.append(f"%{escaped}%")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT session_id FROM ({indexed} UNION ALL {waiting}) LIMIT %s",
            [*params, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def first_matches(session_ids: Sequence[Any], query: SearchQuery) -> dict[str, SearchMatch]:
    """For the sessions of one page, the first event holding any term, as a match (by session
    id as a string). Looked up among those sessions' entries only, whatever the data size:
    the first stored row holding a term, then the first of its events that does."""
    if not query or not session_ids:
        return {}
    found: dict[str, SearchMatch] = {}
    pattern = term_pattern(query)
    for session_id, first, events, text in _first_rows(session_ids, query):
        # The line (event) of the first occurrence; should the database's case folding have
        # matched where Python's does not (a letter PostgreSQL's UPPER folds), the first line.
        at = pattern.search(text)
        line = text.count(EVENT_SEPARATOR, 0, at.start()) if at else 0
        seq, kind = event_at(events, line)
        found[str(session_id)] = SearchMatch(
            event_index=None if first == SESSION_FIELDS else first + line,
            seq=seq,
            kind=kind,
            snippet=make_snippet(text.split(EVENT_SEPARATOR)[line], query),
        )
    return found


def _first_rows(session_ids: Sequence[Any], query: SearchQuery) -> list[tuple[Any, int, str, str]]:
    """Per session, its first stored row holding any term: (session id, event_index, events,
    text). On PostgreSQL each session's rows are read in event order up to that row (a
    window over all of them read every row of the page's sessions: 8 of a common word's 25 ms
    at 5,000 sessions)."""
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(SearchEntry._meta.db_table)
        any_term = " OR ".join(["strpos(UPPER(e.text), UPPER(%s)) > 0"] * len(query.terms))
        with connection.cursor() as cursor:
            # The rows in event order apart (OFFSET 0 keeps the planner from pushing the test
            # below the sort), so the test stops at the first row that passes.
            cursor.execute(
                "SELECT s.id, f.event_index, f.events, f.text FROM unnest(%s::uuid[]) AS s(id) "
                "CROSS JOIN LATERAL (SELECT * FROM (SELECT e.event_index, e.events, e.text "
                f"FROM {table} e WHERE e.session_id = s.id ORDER BY e.event_index OFFSET 0) e "
                f"WHERE {any_term} LIMIT 1) f",
                [list(session_ids), *query.terms],
            )
            return cursor.fetchall()
    any_term = Q()
    for term in query.terms:
        any_term |= Q(_in_text(term))
    firsts = (
        SearchEntry.objects.filter(session_id__in=list(session_ids))
        .filter(any_term)
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("session_id")], order_by=[F("event_index")])
        )
        .filter(rank=1)
    )
    return list(firsts.values_list("session_id", "event_index", "events", "text"))
