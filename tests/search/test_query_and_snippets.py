"""The query language, entry text and snippets: pure, no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sessions_api.errors import DomainError
from sessions_api.formats import parse_document
from sessions_api.search.entries import build_entries, event_text
from sessions_api.search.query import matches, parse_query
from sessions_api.search.snippets import make_snippet
from sessions_api.sessions.timeline import build_timeline

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_words_and_quoted_phrases_are_terms():
    query = parse_query('refund  "order 4417  failed" Refund 订单')
    assert query.terms == ("refund", "order 4417 failed", "订单")


def test_an_unclosed_quote_runs_to_the_end_and_empty_phrases_are_dropped():
    assert parse_query('"" find "the rest of it').terms == ("find", "the rest of it")
    assert not parse_query('  ""  ')


def test_every_term_must_match_case_insensitively_anywhere_in_the_text():
    text = "The Payment-Gateway returned HTTP 502 for order ord_8842 (订单处理失败)"
    assert matches(text, parse_query("payment 502"))
    assert matches(text, parse_query('"gateway returned http"'))
    assert matches(text, parse_query("8842 处理失"))  # inside an id; CJK by substring
    assert not matches(text, parse_query("payment 503"))
    assert not matches(text, parse_query('"returned 502"'))  # a phrase is contiguous


def test_event_text_holds_every_field_a_user_may_search_for():
    call = {
        "kind": "tool_call",
        "name": "query_logs",
        "call_id": "call_Z9",
        "arguments": {"service": "billing", "since": "30m"},
        "result": "Error: log query exceeded 30s budget",
    }
    text = event_text(call)
    for part in ("query_logs", "call_Z9", "service", "billing", "30m", "exceeded 30s budget"):
        assert part in text
    assert event_text({"kind": "message", "text": "line one\n\n  line two"}) == "line one line two"


def test_a_snippet_is_plain_text_around_the_first_match_with_every_match_marked():
    text = "x" * 300 + " the <b>Refund</b> was refused; refund again " + "y" * 300
    snippet = make_snippet(text, parse_query("refund"))
    assert snippet.text.startswith("…") and snippet.text.endswith("…")
    marked = [piece for piece, hit in snippet.parts() if hit]
    assert marked == ["Refund", "refund"]
    assert "<b>" in snippet.text  # plain text: escaping is the renderer's job
    assert "".join(piece for piece, _ in snippet.parts()) == snippet.text


def test_a_snippet_of_a_short_text_is_the_whole_text():
    snippet = make_snippet("timeout calling get_weather", parse_query("GET_WEATHER"))
    assert snippet.text == "timeout calling get_weather"
    assert snippet.highlights == ((16, 27),)


def fixture_sessions():
    """Every format's fixture documents that parse, and the demo's sessions."""
    from sessions_api.demo.dataset import generate_documents

    bodies = []
    for path in sorted(FIXTURES.rglob("*.json")):
        try:
            bodies.append((path.name, json.loads(path.read_bytes())))
        except ValueError:
            continue
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    bodies += [(doc.key, json.loads(doc.body)) for doc in generate_documents(now=now, count=40)]
    for name, doc in bodies:
        try:
            _, parsed = parse_document(doc)
        except DomainError:  # a fixture of a list, a dump, a refused document
            continue
        yield name, parsed.session


def test_entries_read_from_the_session_are_those_of_its_laid_out_timeline():
    # Ingest reads the entries' texts from the session's objects in timeline order; the find
    # box reads them from the timeline it shows: both must number and say the same.
    checked = 0
    for name, session in fixture_sessions():
        assert build_entries(session) == build_entries(session, build_timeline(session)), name
        checked += 1
    assert checked > 40
