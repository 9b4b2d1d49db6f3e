"""The timeline is cached in pages (selectors): a warm request reads only the
pages it shows and never the whole parsed session, paging across page boundaries gives exactly
the timeline of a fresh parse, and a lost page is rebuilt."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.cache import cache

from sessions_api.formats import parse_document
from sessions_api.formats.decoding import decode_document
from sessions_api.sessions import selectors
from sessions_api.sessions.timeline import build_timeline
from tests.support import sample_data

CHUNK = selectors.TIMELINE_CHUNK


@pytest.fixture(autouse=True)
def _empty_cache(empty_cache):
    """Each test starts and ends with an empty cache (tests/conftest.py)."""


@pytest.fixture
def forbid_parsing(monkeypatch) -> Callable[[], None]:
    """Call it to make any parse of a stored body fail the test."""

    def forbid() -> None:
        def parse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the stored body was parsed again")

        monkeypatch.setattr(selectors, "parse_document", parse)

    return forbid


@pytest.fixture
def long_session(api) -> str:
    """A session of a little over three pages of events."""
    body = sample_data.big_picoflow_document(
        session_id="paged", messages=3 * CHUNK + 40, started=datetime(2026, 1, 5, tzinfo=UTC)
    )
    response = api.post("/sessions", body)
    assert response.status_code == 201, response.content[:300]
    return response.json()["id"]


def fresh_timeline(session_id: str, version: int = 1) -> list[dict[str, Any]]:
    """The timeline of a stored version, parsed here without any cache."""
    record = selectors.get_session(session_id=session_id)
    body = selectors.get_raw_body(session_id=session_id, version=version)
    _, parsed = parse_document(decode_document(body), format_id=record.format)
    return json.loads(json.dumps(build_timeline(parsed.session)))


def version_reads(keys: list[str]) -> list[str]:
    """The per-version keys among ``keys``, by their last parts (``head``, ``events200:1``...)."""
    return [key.split(":", 4)[4] for key in keys if key.startswith("version:")]


def cursor(version: int, start: int) -> str:
    raw = json.dumps([version, start], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_warm_page_reads_the_length_and_the_pages_it_shows_only(
    api, long_session, cache_reads, forbid_parsing
):
    url = f"/sessions/{long_session}/timeline"
    cold = api.get(url, limit=200).json()
    assert cold["total"] > 3 * CHUNK
    forbid_parsing()
    cache_reads.clear()

    warm = api.get(url, limit=200).json()

    assert warm == cold
    assert version_reads(cache_reads) == ["head", f"events{CHUNK}:0"]
    cache_reads.clear()
    middle = api.get(url, limit=200, cursor=cursor(1, CHUNK + 50)).json()
    assert [event["index"] for event in middle["events"]] == list(range(CHUNK + 50, 2 * CHUNK + 50))
    assert version_reads(cache_reads) == ["head", f"events{CHUNK}:1", f"events{CHUNK}:2"]


def test_paging_across_page_boundaries_gives_the_whole_timeline(api, long_session):
    expected = fresh_timeline(long_session)
    for limit in (7, CHUNK, 500):
        events, next_cursor = [], None
        while True:
            page = api.get(
                f"/sessions/{long_session}/timeline", limit=limit, cursor=next_cursor
            ).json()
            assert page["total"] == len(expected)
            events += page["events"]
            next_cursor = page["next_cursor"]
            if next_cursor is None:
                break
        assert events == expected, limit


def test_a_cursor_past_the_end_is_an_empty_last_page(api, long_session):
    total = api.get(f"/sessions/{long_session}/timeline", limit=1).json()["total"]
    for start in (total, total + 1, total + 10 * CHUNK):
        page = api.get(f"/sessions/{long_session}/timeline", cursor=cursor(1, start)).json()
        assert page["events"] == [] and page["next_cursor"] is None and page["total"] == total


def test_a_page_lost_from_the_cache_is_rebuilt(api, long_session):
    url = f"/sessions/{long_session}/timeline"
    api.get(url, limit=10)
    page_key = f"version:v2:{long_session}:1:events{CHUNK}:1"
    assert cache.get(page_key) is not None
    cache.delete(page_key)

    page = api.get(url, limit=10, cursor=cursor(1, CHUNK + 3)).json()

    assert page["events"] == fresh_timeline(long_session)[CHUNK + 3 : CHUNK + 13]
    assert cache.get(page_key) is not None


def test_parsed_version_loads_each_part_only_when_used(api, long_session, cache_reads):
    record = selectors.get_session(session_id=long_session)
    selectors.get_timeline_page(record=record, limit=1)  # cold: caches the pages
    cache_reads.clear()

    parsed = selectors.get_parsed_version(record=record)
    events = parsed.events
    assert "session" not in version_reads(cache_reads)
    assert json.loads(json.dumps(events)) == fresh_timeline(long_session)

    cache_reads.clear()
    again = selectors.get_parsed_version(record=record)
    session = again.session
    assert version_reads(cache_reads) == ["head", "session"]  # no timeline page
    body = selectors.get_raw_body(session_id=long_session, version=1)
    assert session == parse_document(decode_document(body), format_id=record.format)[1].session


def test_each_version_has_its_own_pages(api, seed_document):
    session_id = api.post("/sessions", seed_document).json()["id"]
    first = api.get(f"/sessions/{session_id}/timeline", limit=500).json()
    changed = seed_document.replace(b'"content": "Hi"', b'"content": "Hi there"', 1)
    assert api.post("/sessions", changed).json()["version"] == 2
    latest = api.get(f"/sessions/{session_id}/timeline", limit=500).json()
    old = api.get(f"/sessions/{session_id}/timeline", limit=500, version=1).json()
    assert old["events"] == first["events"]
    assert latest["events"] == fresh_timeline(session_id, version=2)
    assert latest["events"] != old["events"]
