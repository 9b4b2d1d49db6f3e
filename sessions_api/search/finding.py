"""The find box of one session's page: every event of the version shown that holds a query."""

from __future__ import annotations

from dataclasses import dataclass

from sessions_api.search.entries import SESSION_FIELDS, build_entries
from sessions_api.search.matching import SearchMatch
from sessions_api.search.query import SearchQuery, matches, parse_query
from sessions_api.search.snippets import make_snippet
from sessions_api.sessions import selectors
from sessions_api.sessions.records import SessionRecord


@dataclass(frozen=True)
class FindResult:
    query: SearchQuery
    hits: list[SearchMatch]  # the first ``limit``, in timeline order
    total: int


def find_in_version(
    *, record: SessionRecord, version: int, text: str, limit: int = 200
) -> FindResult:
    """The in-session find: the events of one stored version that hold every term of ``text``
    (the same entries and the same matching as ``q``, read from the parsed version, so it works
    for any version, not only the indexed latest)."""
    query = parse_query(text)
    if not query:
        return FindResult(query=query, hits=[], total=0)
    parsed = selectors.get_parsed_version(record=record, version=version)
    found = [e for e in build_entries(parsed.session, parsed.events) if matches(e.text, query)]
    hits = [
        SearchMatch(
            event_index=None if e.event_index == SESSION_FIELDS else e.event_index,
            seq=e.seq,
            kind=e.kind,
            snippet=make_snippet(e.text, query),
        )
        for e in found[:limit]
    ]
    return FindResult(query=query, hits=hits, total=len(found))
