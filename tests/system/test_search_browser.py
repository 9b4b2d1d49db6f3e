"""Search in headless Chromium: a phrase from the last turn of the demo's 2,002-message session
is found, and its snippet opens the session at that event (far past the first timeline page);
hostile text in snippets and in the session page's find box stays text.

Skipped with a reason when /usr/bin/chromium or Playwright is absent. No sleeps: Playwright's
auto-waiting and expect() do the synchronisation.
"""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from sessions_api.demo.load import load_demo
from sessions_api.models import Session
from sessions_api.sessions import selectors
from tests.support.chromium import require_playwright, signed_in_page

pytestmark = [pytest.mark.browser]

playwright_sync = require_playwright()
expect = playwright_sync.expect


@pytest.fixture
def page(browser, live_server, transactional_db):
    with signed_in_page(browser, live_server, username="searcher", group="viewer") as page:
        yield page


@pytest.fixture
def demo(transactional_db):
    # The demo's first two set pieces: the hostile support chat and the 2,002-message triage.
    load_demo(now=timezone.now(), count=2)
    long_row = Session.objects.order_by("-message_count").first()
    record = selectors.get_session(session_id=str(long_row.id))
    events = selectors.get_parsed_version(record=record).events
    last = next(e for e in reversed(events) if e["kind"] == "message" and e["text"])
    xss_row = Session.objects.order_by("message_count").first()
    return {"long": record, "last": last, "xss": str(xss_row.id), "total": len(events)}


def test_a_phrase_from_the_last_turn_opens_the_session_at_that_event(page, demo):
    assert demo["long"].summary.message_count >= 2000
    phrase = demo["last"]["text"]
    page.goto(page.base + "/sessions/")
    page.fill("#f-q", f'"{phrase}"')
    page.keyboard.press("Enter")
    hit = page.locator(".search-hit .snippet")
    expect(hit).to_have_count(1)
    expect(hit.locator("mark")).to_have_text(phrase)
    hit.click()
    index = demo["last"]["index"]
    expect(page).to_have_url(
        re.compile(rf"/sessions/{demo['long'].id}/\?event={index}#ev-{index}$")
    )
    target = page.locator(f"#ev-{index}")
    expect(target).to_be_attached()
    event = page.locator(f'#events > li[data-index="{index}"]')
    expect(event).to_contain_text(phrase)
    expect(event).to_be_in_viewport()
    # The page holding the event was loaded, not the first one.
    assert int(page.locator("#timeline").get_attribute("data-start")) > 0


def test_hostile_text_stays_text_in_snippets_and_the_find_box(page, demo):
    page.goto(page.base + "/sessions/?q=onerror")
    snippet = page.locator(".search-hit .snippet").first
    expect(snippet).to_contain_text("<img")
    expect(page.locator(".search-hit img")).to_have_count(0)
    page.goto(page.base + f"/sessions/{demo['xss']}/")
    page.fill("#find", "onerror")
    page.keyboard.press("Enter")
    hits = page.locator(".find-hits .snippet")
    expect(hits.first).to_contain_text("onerror")
    expect(page.locator(".find-hits img, .find-hits script")).to_have_count(0)
    hits.first.click()
    expect(page).to_have_url(re.compile(r"find=onerror&event=\d+#ev-\d+$"))
