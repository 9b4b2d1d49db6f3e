"""The Alerts page in headless Chromium: an admin creates a rule with the form (only the chosen
event's fields show), an aborted session notifies the local receiver, and the page lists the
notification with a working link to the session; send a test, mute, edit.

The worker's part (checking the outbox row, delivering) runs in this process when the save
commits, so the page shows what a worker would have done. Screenshots go to
$SCREENSHOT_DIR when it is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from sessions_api.ingest import services
from sessions_api.lifecycle.alerts import delivery, evaluate, rules
from sessions_api.models import AlertNotification
from tests.support import sample_data
from tests.support.chromium import require_playwright, signed_in_page
from tests.support.sample_data import Turn
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.browser]

playwright_sync = require_playwright()
expect = playwright_sync.expect


def shot(page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.fixture
def page(browser, live_server, transactional_db):
    with signed_in_page(
        browser, live_server, username="alerts-admin", group="admin", height=1000
    ) as page:
        yield page


@pytest.fixture
def inline_worker() -> Iterator[None]:
    """What the worker does with a committed save or a test send, done at once in-process."""

    def on_outbox(sender=None, *, outbox_id, **_):
        for notification_id in evaluate.process_outbox(outbox_id=outbox_id):
            delivery.deliver_notification(notification_id=notification_id)

    def on_ready(sender=None, *, notification_ids, **_):
        for notification_id in notification_ids:
            delivery.deliver_notification(notification_id=notification_id)

    rules.forget_rule_events()
    evaluate.outbox_committed.connect(on_outbox, dispatch_uid="inline", weak=False)
    evaluate.notifications_ready.connect(on_ready, dispatch_uid="inline", weak=False)
    yield
    evaluate.outbox_committed.disconnect(dispatch_uid="inline")
    evaluate.notifications_ready.disconnect(dispatch_uid="inline")
    rules.forget_rule_events()


def test_an_operator_creates_a_rule_and_sees_the_aborted_session_notified(page, inline_worker):
    with WebhookReceiver() as receiver:
        page.goto(page.base + "/alerts/")
        expect(page.locator("h1")).to_have_text("Alerts")
        expect(page.locator("nav a[aria-current=page]")).to_have_text("Alerts")
        form = page.locator("#alert-form")
        page.fill("#id_name", "Aborted TripFlow runs")
        page.select_option("#id_event", "tool_error_rate")
        expect(form.locator("fieldset[data-event=tool_error_rate]")).to_be_visible()
        expect(form.locator("fieldset[data-event=session_ended]")).to_be_hidden()
        page.select_option("#id_event", "session_ended")
        expect(form.locator("fieldset[data-event=session_ended]")).to_be_visible()
        form.locator("input[name=status][value=error]").uncheck()
        form.locator("input[name=status][value=aborted]").check()
        page.fill("#id_agent", "TripFlow")
        page.fill("#id_webhook_url", receiver.url)
        shot(page, "alerts-form")
        form.locator("button[type=submit]").click()
        expect(page.locator(".messages, .flash, [role=status]").first).to_contain_text(
            "Created the rule"
        )
        row = page.locator("#alerts-table tbody tr").first
        expect(row).to_contain_text("Aborted TripFlow runs")
        expect(row).to_contain_text("ended aborted")
        expect(row).to_contain_text("agent=TripFlow")
        expect(row).to_contain_text("nothing sent yet")

        aborted = services.ingest_document(
            body=sample_data.picoflow_document(
                session_id="trip-aborted-1",
                flow="TripFlow",
                status="aborted",
                model="gpt-4o",
                started=timezone.now(),
                turns=[Turn(user="Book Lisbon", reply="Gave up.")],
            ),
        )
        assert len(receiver.received) == 1
        body = receiver.bodies()[0]
        assert body["session"]["id"] == aborted.id

        page.goto(page.base + "/alerts/")
        notification = page.locator("#notifications-table tbody tr").first
        expect(notification).to_contain_text("ended aborted")
        expect(notification).to_contain_text("delivered")
        expect(page.locator("#alerts-table tbody tr").first).to_contain_text("ok")
        shot(page, "alerts-notified")

        page.locator(".form-actions-inline button", has_text="Send a test").first.click()
        expect(page.locator("#notifications-table tbody tr").first).to_contain_text("test")
        assert len(receiver.received) == 2

        page.locator(".mute-form select").first.select_option("1d")
        page.locator(".mute-form button").first.click()
        expect(page.locator("#alerts-table tbody tr").first).to_contain_text("muted until")

        page.locator("#alerts-table a", has_text="Edit").first.click()
        page.fill("#id_name", "Aborted TripFlow (edited)")
        page.locator("#alert-form button[type=submit]").click()
        expect(page.locator("#alerts-table tbody tr").first).to_contain_text("(edited)")
        shot(page, "alerts-edited")

        page.locator("#notifications-table a.mono").first.click()
        expect(page).to_have_url(page.base + f"/sessions/{aborted.id}/")
    assert AlertNotification.objects.filter(status="delivered").count() == 2
