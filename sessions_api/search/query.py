"""The query language of ``q``: every word must match, "quoted phrases" match as phrases,
case-insensitive, and a word matches anywhere inside the text (so text without spaces, CJK or an
id, is found by any part of it). One parse for every backend and for the in-session find.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sessions_api.search.entries import normalise

MAX_QUERY_CHARS = 200
MAX_TERMS = 8

_TERM = re.compile(r'"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class SearchQuery:
    #: Each term must occur in the session (a word or a phrase: a run of text, spaces folded).
    terms: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.terms)

    @property
    def folded(self) -> tuple[str, ...]:
        return tuple(term.casefold() for term in self.terms)


def parse_query(text: str | None) -> SearchQuery:
    """Words and "quoted phrases"; an unclosed quote runs to the end. Duplicates and empty
    phrases are dropped; at most ``MAX_TERMS`` terms of a query of ``MAX_QUERY_CHARS``."""
    terms: list[str] = []
    seen: set[str] = set()
    for match in _TERM.finditer((text or "")[:MAX_QUERY_CHARS]):
        phrase, word = match.groups()
        term = normalise(phrase if phrase is not None else word.replace('"', ""))
        if term and term.casefold() not in seen:
            seen.add(term.casefold())
            terms.append(term)
    return SearchQuery(terms=tuple(terms[:MAX_TERMS]))


def matches(text: str, query: SearchQuery) -> bool:
    """Whether one text holds every term (the in-session find; the database does the same)."""
    folded = text.casefold()
    return all(term in folded for term in query.folded)


def term_pattern(query: SearchQuery) -> re.Pattern[str]:
    """Any term, case-insensitively, as a pattern whose match offsets are the original text's
    (casefolding can change a text's length; a pattern never does)."""
    alternatives = sorted(query.terms, key=len, reverse=True)
    return re.compile("|".join(re.escape(term) for term in alternatives), re.IGNORECASE)
