"""The spaces between words, as tokens: what rules out a phrase of common words cheaply (pure).

A trigram index offers every row holding all of a phrase's trigrams: for "order number", every
row that says "order" and "number" anywhere, 37,620 of 4.4M rows at 1M sessions, found in
146 ms before any is read. So each space with three or more non-space characters on both sides
also makes a token, the three before it and the three after, casefolded: ``dernum`` for
"order number". A phrase's own such spaces are in every text that holds it (a match is a run of
the same characters), so the rows holding a phrase are among the few whose tokens include the
phrase's. Shorter words around a space make no token: the phrase "a b" is looked up by its
trigrams alone.

On SQLite the tokens are a contentless FTS5 table (migration 0019_search_pair_index), written
with the trigram table from ``search_pairs(text)``, which every connection registers
(``register``). Changing what a text's tokens are means rebuilding that table: a 'delete' of a
row gives the tokens it was indexed with again. On PostgreSQL ``search_pairs(text)`` is a SQL
function of the same migration, cutting the same tokens from ``UPPER(text)``, with a GIN index
on it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Three non-space characters, a space, and (not consumed: the next word may be exactly three
# characters, the left side of the next space) three more.
_BOUNDARY = re.compile(r"(\S{3}) (?=(\S{3}))")
SQLITE_FUNCTION = "search_pairs"


def boundary_tokens(text: str) -> str:
    """The distinct tokens of ``text``'s spaces, separated by spaces (what the index takes)."""
    return " ".join(set(map("".join, _BOUNDARY.findall(text.casefold()))))


def phrase_tokens(term: str) -> list[str]:
    """The tokens every text holding ``term`` holds, sorted; none for a single word or a phrase
    whose spaces all have a short word beside them. A token with a character the index's
    tokenizer splits at (a control or format character) is left out: the index holds it in
    parts, which a query cannot name."""
    tokens = set(map("".join, _BOUNDARY.findall(term.casefold())))
    return sorted(token for token in tokens if all(_kept(c) for c in token))


def phrase_tokens_upper(term: str) -> list[str]:
    """The same for PostgreSQL's index, whose tokens are cut from ``UPPER(text)`` (what its
    ``icontains`` compares): only the tokens of ASCII characters, where Python's ``upper`` and
    PostgreSQL's agree, uppercased."""
    tokens = {left + right for left, right in _BOUNDARY.findall(term)}
    return sorted(token.upper() for token in tokens if token.isascii())


def _kept(char: str) -> bool:
    return unicodedata.category(char)[0] not in "CZ"


def register(dbapi_connection: Any) -> None:
    """Make ``search_pairs(text)`` callable in this SQLite connection's SQL (the triggers and
    the index job use it)."""
    dbapi_connection.create_function(SQLITE_FUNCTION, 1, _tokens_or_none, deterministic=True)


def _tokens_or_none(text: str | None) -> str | None:
    return None if text is None else boundary_tokens(text)
