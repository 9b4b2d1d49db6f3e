"""A short excerpt of an entry's text around where a query matched, with the matched spans.

Plain text plus offsets: the API returns them as they are, and the dashboard escapes the text
and marks the spans (never HTML built from stored text).
"""

from __future__ import annotations

from dataclasses import dataclass

from sessions_api.search.query import SearchQuery, term_pattern

SNIPPET_CHARS = 160
_LEAD_CHARS = 50


@dataclass(frozen=True)
class Snippet:
    text: str
    #: (start, end) offsets into ``text`` of each matched span, in order.
    highlights: tuple[tuple[int, int], ...]

    def parts(self) -> list[tuple[str, bool]]:
        """The text cut at the highlights: (piece, highlighted) in order."""
        pieces: list[tuple[str, bool]] = []
        at = 0
        for start, end in self.highlights:
            if start > at:
                pieces.append((self.text[at:start], False))
            pieces.append((self.text[start:end], True))
            at = end
        if at < len(self.text):
            pieces.append((self.text[at:], False))
        return pieces


def make_snippet(text: str, query: SearchQuery) -> Snippet:
    pattern = term_pattern(query)
    first = pattern.search(text)
    start = 0 if first is None else max(0, first.start() - _LEAD_CHARS)
    end = min(len(text), start + SNIPPET_CHARS)
    if first is not None and first.end() > end:  # a phrase longer than the window
        end = first.end()
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    excerpt = prefix + text[start:end] + suffix
    highlights = tuple(
        (m.start(), m.end())
        for m in pattern.finditer(excerpt, len(prefix), len(excerpt) - len(suffix))
    )
    return Snippet(text=excerpt, highlights=highlights)
