"""Which sessions a query matches, and where: one place for both databases.

A term (word or phrase) matches a session when it occurs, case-insensitively, inside the text
of any of the session's entries; a query matches when every term does (terms may sit in
different events). The session filter is one ``IN (entries matching the term)`` per term,
composed with every other filter and the keyset paging by the ORM:

- SQLite: the entries' FTS5 table with the trigram tokenizer answers a term of 3 or more
  characters from the index (a trigram query is a substring match). FTS5 cannot answer a
  shorter term from a trigram index, so such a term falls back to ``LIKE`` over the entries
  (correct, a scan: its cost grows with the data).
- PostgreSQL: ``icontains`` (``UPPER(text) LIKE UPPER('%term%')``), which the trigram GIN
  index on ``UPPER(text)`` answers for terms of 3 or more characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Min, Q, QuerySet
from django.db.models.expressions import RawSQL

from sessions_api.models import SearchEntry, Session
from sessions_api.search.entries import SESSION_FIELDS
from sessions_api.search.query import SearchQuery
from sessions_api.search.snippets import Snippet, make_snippet

# FTS5 with the trigram tokenizer matches a term from its index only from this length on.
TRIGRAM_CHARS = 3


@dataclass(frozen=True)
class SearchMatch:
    """Where a session matched: the first matching timeline event and a snippet of it."""

    event_index: int | None  # None: the session's own fields (ids, title, agent, user)
    seq: int | None
    kind: str
    snippet: Snippet


def filter_matching(rows: QuerySet[Session], query: SearchQuery) -> QuerySet[Session]:
    """``rows`` narrowed to the sessions that hold every term of ``query``."""
    for term in query.terms:
        rows = rows.filter(pk__in=entries_with(term).values("session_id"))
    return rows


def entries_with(term: str) -> QuerySet[SearchEntry]:
    """The entries whose text holds ``term`` (case-insensitive substring)."""
    if connection.vendor == "sqlite" and len(term) >= TRIGRAM_CHARS:
        phrase = '"' + term.replace('"', '""') + '"'
        return SearchEntry.objects.filter(
            id__in=RawSQL(
                "SELECT rowid FROM search_entry_fts WHERE search_entry_fts MATCH %s", (phrase,)
            )
        )
    return SearchEntry.objects.filter(text__icontains=term)


def first_matches(session_ids: Sequence[Any], query: SearchQuery) -> dict[str, SearchMatch]:
    """For the sessions of one page, the first entry holding any term, as a match (by session
    id as a string). Looked up among those sessions' entries only, whatever the data size."""
    if not query or not session_ids:
        return {}
    any_term = Q()
    for term in query.terms:
        any_term |= Q(text__icontains=term)
    firsts = (
        SearchEntry.objects.filter(session_id__in=list(session_ids))
        .filter(any_term)
        .values("session_id")
        .annotate(first=Min("event_index"))
    )
    wanted = Q(pk__in=[])
    for item in firsts:
        wanted |= Q(session_id=item["session_id"], event_index=item["first"])
    found: dict[str, SearchMatch] = {}
    for entry in SearchEntry.objects.filter(wanted).values(
        "session_id", "event_index", "seq", "kind", "text"
    ):
        found[str(entry["session_id"])] = SearchMatch(
            event_index=None if entry["event_index"] == SESSION_FIELDS else entry["event_index"],
            seq=entry["seq"],
            kind=entry["kind"],
            snippet=make_snippet(entry["text"], query),
        )
    return found
