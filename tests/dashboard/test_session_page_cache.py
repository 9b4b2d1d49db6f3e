"""The session page reads the timeline from its cached pages: a warm view
neither parses the stored body nor reads the whole parsed session, and the cached rendering of
a window is exactly what rendering it afresh gives, per version."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.template.loader import render_to_string

from sessions_api.ingest import services
from sessions_api.sessions import selectors
from tests.dashboard.conftest import ingest_two_versions
from tests.support import sample_data

EVENTS = re.compile(r'<ol class="events" id="events">(.*?)</ol>', re.S)


@pytest.fixture(autouse=True)
def _empty_cache(empty_cache):
    """Each test starts and ends with an empty cache (tests/conftest.py)."""


def events_block(html: str) -> str:
    found = EVENTS.search(html)
    assert found, "no timeline on the page"
    return found.group(1)


def test_a_warm_session_page_reads_one_page_of_events_and_parses_nothing(
    viewer_client, now, cache_reads, monkeypatch
):
    body = sample_data.big_picoflow_document(session_id="long-page", messages=900, started=now)
    sid = services.ingest_document(body=body, now=now + timedelta(hours=1)).id
    cold = viewer_client.get(f"/sessions/{sid}/")
    assert cold.status_code == 200

    def parse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the stored body was parsed again")

    monkeypatch.setattr(selectors, "parse_document", parse)
    cache_reads.clear()
    warm = viewer_client.get(f"/sessions/{sid}/")

    assert warm.status_code == 200
    version_parts = [key.split(":", 4)[4] for key in cache_reads if key.startswith("version:")]
    assert version_parts == ["head", f"events{selectors.TIMELINE_CHUNK}:0"]
    assert events_block(warm.content.decode()) == events_block(cold.content.decode())
    assert len(warm.context["window"].events) == 200


def test_cached_rendering_is_what_a_fresh_render_gives(viewer_client, now):
    body = sample_data.big_picoflow_document(session_id="long-fresh", messages=500, started=now)
    sid = services.ingest_document(body=body, now=now + timedelta(hours=1)).id
    record = selectors.get_session(session_id=sid)
    for start in (0, 200):
        window = selectors.get_timeline_window(record=record, start=start, limit=200)
        fresh = render_to_string(
            "dashboard/partials/timeline_events.html", {"events": window.events}
        )
        for _ in range(2):  # the first renders and caches, the second reads the cache
            page = viewer_client.get(f"/sessions/{sid}/?start={start}").content.decode()
            fragment = viewer_client.get(f"/sessions/{sid}/timeline/?start={start}").json()
            assert events_block(page).strip() == fresh.strip()
            assert fragment["html"] == fresh
            assert (fragment["start"], fragment["end"]) == (window.start, window.end)


def test_each_version_shows_its_own_events(viewer_client, now):
    for sid in ingest_two_versions("page-versions", now):
        viewer_client.get(f"/sessions/{sid}/")  # cache this version's rendering
    latest = events_block(viewer_client.get(f"/sessions/{sid}/").content.decode())
    first = events_block(viewer_client.get(f"/sessions/{sid}/?version=1").content.decode())
    assert "second question" in latest
    assert "first question" in first and "second question" not in first
