"""The Alerts page: everyone reads rules and notifications; admins create, edit, mute, test
and delete; a refused rule comes back with its error; the Django admin saves through the same
service."""

from __future__ import annotations

import pytest

from sessions_api.lifecycle.alerts import evaluate, rules
from sessions_api.models import AlertNotification, AlertRule

pytestmark = pytest.mark.django_db

NEW_RULE = {
    "name": "Aborted TripFlow",
    "event": "session_ended",
    "status": ["aborted"],
    "agent": "TripFlow",
    "webhook_url": "https://hooks.example.com/T/B/x",
    "emails": "ops@example.com, oncall@example.com",
    "minutes": "30",
    "above_percent": "20",
    "window_minutes": "15",
    "min_calls": "10",
    "above_usd": "5",
}


@pytest.fixture(autouse=True)
def _fresh_rule_events():
    rules.forget_rule_events()
    yield
    rules.forget_rule_events()


def test_an_admin_creates_a_rule_from_the_form(admin_client_):
    response = admin_client_.post("/alerts/", NEW_RULE)
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = AlertRule.objects.get()
    assert rule.params == {"status": ["aborted"]}
    assert rule.filters == {"agent": "TripFlow"}
    assert rule.emails == ["ops@example.com", "oncall@example.com"]
    page = admin_client_.get("/alerts/").content.decode()
    assert "Aborted TripFlow" in page and "agent=TripFlow" in page


def test_a_refused_rule_comes_back_with_its_error(admin_client_):
    response = admin_client_.post("/alerts/", {**NEW_RULE, "webhook_url": "ftp://x/y"})
    assert response.status_code == 400
    assert "http(s) URL" in response.content.decode()
    assert not AlertRule.objects.exists()


def test_a_rate_rule_takes_its_threshold_in_percent(admin_client_):
    admin_client_.post("/alerts/", {**NEW_RULE, "event": "tool_error_rate", "per_tool": "on"})
    assert AlertRule.objects.get().params == {
        "above": 0.2,
        "window_minutes": 15,
        "min_calls": 10,
        "per_tool": True,
    }


def test_edit_mute_test_and_delete(admin_client_):
    rule = rules.create_rule(
        name="stuck", event="session_stuck", params={"minutes": 30}, emails=["a@b.example"]
    )
    edit = admin_client_.get(f"/alerts/{rule.id}/edit/").content.decode()
    assert 'value="stuck"' in edit and "Show the current signing secret" in edit
    saved = admin_client_.post(
        f"/alerts/{rule.id}/edit/",
        {**NEW_RULE, "name": "stuck long", "event": "session_stuck", "minutes": "90"},
    )
    assert saved.status_code == 302
    assert AlertRule.objects.get().params == {"minutes": 90}

    admin_client_.post(f"/alerts/{rule.id}/mute/", {"mute": "4h"})
    assert AlertRule.objects.get().muted_until is not None
    assert "muted until" in admin_client_.get("/alerts/").content.decode()
    admin_client_.post(f"/alerts/{rule.id}/mute/", {"mute": "off"})
    assert AlertRule.objects.get().muted_until is None

    tested = admin_client_.post(f"/alerts/{rule.id}/test/")
    assert tested.status_code == 302
    assert AlertNotification.objects.get().kind == "test"

    admin_client_.post(f"/alerts/{rule.id}/delete/")
    assert not AlertRule.objects.exists()


def test_viewers_read_but_cannot_change(viewer_client):
    rule = rules.create_rule(
        name="stuck", event="session_stuck", params={"minutes": 30}, emails=["a@b.example"]
    )
    page = viewer_client.get("/alerts/")
    assert page.status_code == 200
    assert "Read only" in page.content.decode()
    assert viewer_client.post("/alerts/", NEW_RULE).status_code == 403
    assert viewer_client.post(f"/alerts/{rule.id}/delete/").status_code == 403
    assert viewer_client.get(f"/alerts/{rule.id}/edit/").status_code == 403


def test_notifications_link_to_their_session_and_show_failing_rules(admin_client_, known):
    rule = rules.create_rule(
        name="ended", event="session_ended", params={"status": ["aborted"]},
        webhook_url="http://127.0.0.1:9/down",
    )  # fmt: skip
    from sessions_api.models import Session

    session = Session.objects.get(pk=known.b)
    evaluate.create_notification(
        AlertRule.objects.get(pk=rule.id),
        kind="fired",
        dedupe_key=f"session:{session.pk}",
        session=session,
        text="ended aborted",
        now=known.now,
    )
    from sessions_api.lifecycle.alerts import delivery

    notification = AlertNotification.objects.get()
    delivery.deliver_notification(notification_id=notification.pk)
    AlertNotification.objects.update(status="pending", claimed_at=None)
    delivery.deliver_notification(notification_id=notification.pk)
    page = admin_client_.get("/alerts/").content.decode()
    assert f'href="/sessions/{session.pk}/"' in page
    assert ">failing<" in page


def test_the_django_admin_saves_rules_through_the_service(admin_client_, admin_user):
    admin_user.is_staff = True
    admin_user.save()
    response = admin_client_.post(
        "/admin/sessions_api/alertrule/add/",
        {
            "name": "from admin",
            "event": "session_cost",
            "params": '{"above_usd": 2}',
            "filters": "{}",
            "webhook_url": "",
            "webhook_secret": "",
            "emails": '["ops@example.com"]',
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = AlertRule.objects.get()
    assert rule.params == {"above_usd": 2.0}
    assert rule.webhook_secret  # made up by the service
    refused = admin_client_.post(
        "/admin/sessions_api/alertrule/add/",
        {"name": "bad", "event": "session_stuck", "params": "{}", "filters": "{}",
         "webhook_url": "", "webhook_secret": "", "emails": '["ops@example.com"]'},
    )  # fmt: skip
    assert refused.status_code == 200
    assert "params.minutes" in refused.content.decode()
