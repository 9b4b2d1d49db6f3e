"""Every dashboard page in headless Chromium (Debian's), driven by Playwright for Python.

Skipped with a reason when /usr/bin/chromium or Playwright is absent. No sleeps: Playwright's
auto-waiting and expect() do the synchronisation.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from sessions_api.ingest import services
from tests.support import sample_data
from tests.support.chromium import require_playwright, signed_in_page
from tests.support.sample_data import XSS_TEXT, ToolSpec, Turn

pytestmark = [pytest.mark.browser]

playwright_sync = require_playwright()
expect = playwright_sync.expect


@pytest.fixture
def page(browser, live_server, transactional_db):
    """A logged-in page (a viewer) that fails the test on any dialog or page error."""
    with signed_in_page(browser, live_server, username="browser", group="viewer") as page:
        yield page


@pytest.fixture
def data(transactional_db):
    now = timezone.now()
    sample_data.load_varied(now=now, count=24, seed=3)
    xss = services.ingest_document(
        body=sample_data.picoflow_document(
            session_id="xss-session",
            flow="XssFlow",
            status="completed",
            model="gpt-4o",
            started=now - timedelta(minutes=10),
            turns=[
                Turn(
                    user=XSS_TEXT,
                    reply=XSS_TEXT,
                    tools=[ToolSpec("lookup", {"q": XSS_TEXT}, XSS_TEXT, status="error")],
                )
            ],
            errors=[XSS_TEXT],
        ),
        now=now,
    )
    return {"now": now, "xss": xss.id}


def test_every_page_loads(page, data):
    for path, heading in (
        ("/", "Overview"),
        ("/sessions/", "Sessions"),
        ("/errors/", "Errors"),
        ("/prices/", "Model prices"),
        (f"/sessions/{data['xss']}/", "Timeline"),
        (f"/sessions/{data['xss']}/raw/", "Document v1"),
        (f"/sessions/{data['xss']}/versions/", "Versions"),
    ):
        response = page.goto(page.base + path)
        assert response.status == 200, path
        expect(page.get_by_role("heading", name=heading).first).to_be_visible()


def test_login_form_logs_in(browser, live_server, transactional_db):
    User.objects.create_user("alice", "a@example.com", "pw-for-tests-123")
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_server.url + "/sessions/")
    expect(page).to_have_url(live_server.url + "/accounts/login/?next=/sessions/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-for-tests-123")
    page.click("button[type=submit]")
    expect(page).to_have_url(live_server.url + "/sessions/")
    context.close()


def test_charts_render_as_svg_and_link_to_sessions(page, data):
    page.goto(page.base + "/?range=7d")
    expect(page.locator("#chart-sessions.js-plotly-plot svg.main-svg").first).to_be_attached()
    charts = page.locator(".chart.is-drawn")
    expect(charts.first).to_be_visible()
    assert page.locator(".js-plotly-plot svg").count() >= 8
    # A click on a bar opens the sessions behind it (plotly listens on its drag layer, so
    # click where a visible bar is).
    page.locator("#chart-top_agent").scroll_into_view_if_needed()
    box = page.evaluate(
        """() => {
            const bars = [...document.querySelectorAll('#chart-top_agent .bars .point path')];
            const bar = bars.map(b => b.getBoundingClientRect()).find(r => r.width > 4);
            bar.element = null;
            return {x: bar.x + bar.width / 2, y: bar.y + bar.height / 2};
        }"""
    )
    page.mouse.click(box["x"], box["y"])
    expect(page).to_have_url(re.compile(r"/sessions/\?.*agent="))
    expect(page.locator("#sessions-table tbody tr").first).to_be_visible()


def test_filters_narrow_the_list(page, data):
    page.goto(page.base + "/sessions/")
    rows = page.locator("#sessions-table tbody tr[data-href]")
    expect(rows.first).to_be_visible()
    total = rows.count()
    page.fill("#f-agent", "XssFlow")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"agent=XssFlow"))
    expect(rows).to_have_count(1)
    assert total > 1
    # The chip removes the filter again.
    page.locator(".chip", has_text="XssFlow").click()
    expect(rows).to_have_count(total)
    page.select_option("#f-format", "openai_chat")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#sessions-table tbody .sub", has_text="picoflow")).to_have_count(0)


def test_navigation_between_pages(page, data):
    page.goto(page.base + "/")
    page.get_by_role("link", name="Sessions", exact=True).click()
    expect(page).to_have_url(page.base + "/sessions/")
    page.locator("#sessions-table a.session-link").first.click()
    expect(page.locator("#events .ev").first).to_be_visible()
    page.get_by_role("link", name="Raw JSON").click()
    expect(page.locator("#raw-json")).to_contain_text('"id"')
    page.get_by_role("link", name="Errors", exact=True).click()
    expect(page).to_have_url(page.base + "/errors/")
    page.select_option("#e-kind", "tool_error")
    page.get_by_role("button", name="Apply").click()
    page.locator("#errors-table a", has_text="Open →").first.click()
    # The link lands on the failed call's turn in the timeline (highlighted as :target).
    expect(page.locator(".ev:target")).to_be_visible()
    page.get_by_role("link", name="Prices", exact=True).click()
    expect(page).to_have_url(page.base + "/prices/")


def test_payloads_show_as_text_and_never_run(page, data):
    page.goto(page.base + f"/sessions/{data['xss']}/")
    expect(
        page.locator("#events .msg-text", has_text="<script>alert(1)</script>").first
    ).to_be_visible()
    expect(page.locator("#events img")).to_have_count(0)
    expect(page.locator("body script:not([src]):not([type='application/json'])")).to_have_count(0)
    page.goto(page.base + "/errors/")
    expect(page.locator("#errors-table", has_text="<img src=x onerror=alert(1)>")).to_be_visible()
    expect(page.locator("#errors-table img")).to_have_count(0)
    page.goto(page.base + "/sessions/?q=xss")
    page.goto(page.base + "/?range=24h")
    expect(page.locator(".js-plotly-plot svg").first).to_be_attached()
    assert page.locator("img[src='x']").count() == 0
    # The fixture fails the test if any alert() dialog opened.


def test_timeline_pages_through_a_big_session(page, transactional_db):
    now = timezone.now()
    sid = services.ingest_document(
        body=sample_data.big_picoflow_document(session_id="big", messages=3000, started=now),
        now=now + timedelta(hours=2),
    ).id
    page.goto(page.base + f"/sessions/{sid}/")
    events = page.locator("#events > li")
    expect(events).to_have_count(200)
    more = page.locator("[data-load=more]")
    for expected in range(400, 2001, 200):
        more.click()
        expect(events).to_have_count(expected)
    # Past 2,000 rows the page drops the oldest rows instead of growing.
    more.click()
    expect(page.locator("#events > li").last).to_have_attribute("data-index", "2199")
    expect(events).to_have_count(2000)
    expect(page.locator("[data-load=earlier]")).to_be_visible()
    expect(page.locator("#events > li").first).to_have_attribute("data-index", "200")
    # Jump straight to a late message and load what came before it.
    page.goto(page.base + f"/sessions/{sid}/?around=2900#m-2900")
    expect(page.locator("#m-2900")).to_be_visible()
    first_index = int(page.locator("#events > li").first.get_attribute("data-index"))
    page.locator("[data-load=earlier]").click()
    expect(page.locator("#events > li").first).to_have_attribute(
        "data-index", str(max(0, first_index - 200))
    )
