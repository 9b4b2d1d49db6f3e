"""In headless Chromium: an editor fixes a step's state with a reason, hits a conflict with a
concurrent save, reads the diff, resolves it, and finds the change in the audit log.

Skipped when /usr/bin/chromium or Playwright is absent (the pattern of tests/dashboard). The
page fails the test on any dialog, page error, console error or CSP report.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from sessions_api.editing import document
from sessions_api.editing import selectors as editing_selectors
from sessions_api.editing.values import EditRequest
from sessions_api.ingest import services
from tests.editing.conftest import EDITOR, make_user, picoflow_body
from tests.support.chromium import require_playwright, watched_page

pytestmark = [pytest.mark.browser]

playwright_sync = require_playwright()
expect = playwright_sync.expect


@pytest.fixture
def page(browser, live_server, transactional_db):
    """A page signed in as an editor that fails the test on any dialog or script problem."""
    client = Client()
    client.force_login(make_user("browser-editor", "editor"))
    with watched_page(
        browser,
        base_url=live_server.url,
        session_cookie=client.cookies["sessionid"].value,
        viewport={"width": 1440, "height": 1000},
        # The conflict page is answered 409 on purpose, not a script problem.
        expected_console_errors=("status of 409 (Conflict)",),
    ) as page:
        yield page


def test_edit_conflict_diff_resolve_and_audit(page):
    now = timezone.now()
    session_id = services.ingest_document(body=picoflow_body("browser-edit", now=now), now=now).id

    # The editor opens the Book step's state.
    page.goto(f"{page.base}/sessions/{session_id}/")
    page.get_by_role("link", name="Edit state").click()
    page.select_option("#part-select", "step:0:1")
    expect(page.locator("h2", has_text="Edit Step state: Book")).to_be_visible()
    editor = page.locator("#json-value")
    status = page.locator("#json-status")
    save = page.locator("[data-json-submit]")
    expect(status).to_have_text("Valid JSON.")

    # It validates as you type.
    editor.fill('{"turns": 1, "stuck": false,')
    expect(status).to_contain_text("Invalid JSON")
    expect(save).to_be_disabled()
    editor.fill('{"turns": 1, "stuck": false, "fixed_by": "browser"}')
    expect(status).to_have_text("Valid JSON.")
    expect(save).to_be_enabled()
    page.fill("#edit-reason", "clear the stuck flag")

    # Meanwhile someone else saves the same step.
    document.edit_state(
        edit=EditRequest(
            session_id=session_id,
            actor=EDITOR,
            reason="concurrent fix",
            now=timezone.now(),
            expected_version=1,
        ),
        part="step:0:1",
        value={"turns": 1, "note_from_other": "added meanwhile"},
    )

    # Our stale save is refused with a conflict page and a diff of their change.
    save.click()
    expect(page.locator("h1", has_text="Not saved: this session changed")).to_be_visible()
    theirs = page.locator("#their-change .diff")
    expect(theirs).to_contain_text('+  "note_from_other": "added meanwhile"')
    mine = page.locator("#your-change .diff")
    expect(mine).to_contain_text('+  "fixed_by": "browser"')
    merged = json.loads(page.locator("#reapply textarea").input_value())
    assert merged == {
        "turns": 1,
        "note_from_other": "added meanwhile",
        "stuck": False,
        "fixed_by": "browser",
    }
    expect(page.locator("#reapply-reason")).to_have_value("clear the stuck flag")

    # Resolve: re-apply on top of the latest version.
    page.locator("#reapply [data-json-submit]").click()
    expect(page.locator(".flash")).to_contain_text("Saved as version 3")
    latest = editing_selectors.get_latest_document(session_id=session_id)
    assert latest.version == 3
    state = json.loads(latest.body)["flow"]["steps"][1]["state"]
    assert state["fixed_by"] == "browser" and state["note_from_other"] == "added meanwhile"

    # The audit log shows who, why and the diff.
    page.goto(f"{page.base}/audit/?session={session_id}")
    row = page.locator("#audit-table tbody tr").first
    expect(row).to_contain_text("user:browser-editor")
    expect(row).to_contain_text("clear the stuck flag")
    row.locator("summary").click()
    expect(row.locator(".op-list")).to_contain_text("/flow/steps/1/state/fixed_by")
    expect(page.locator("#audit-table tbody tr")).to_have_count(2)
