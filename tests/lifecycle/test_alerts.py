"""Alert rules, their evaluation and delivery, in process: a save that ends a session writes
an outbox row in its transaction and notifies once; windows fire and resolve; deliveries are
signed, retried with backoff and recorded. (tests/system/test_live_alerts.py runs the same
with a real worker on Redis.)"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.core import mail

from sessions_api.errors import InvalidAlertRule
from sessions_api.lifecycle.alerts import delivery, evaluate, rules, selectors
from sessions_api.models import AlertDeliveryAttempt, AlertNotification, AlertOutbox, AlertRule
from tests.support.job_sessions import T0, ingest, picoflow_doc
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(minutes=10)


@pytest.fixture(autouse=True)
def _fresh_rule_events():
    """Saves cache which session rules exist; no test may see another's."""
    rules.forget_rule_events()
    yield
    rules.forget_rule_events()


def ended_rule(url: str = "http://127.0.0.1:9/hook", **extra) -> rules.RuleRecord:
    return rules.create_rule(
        name="aborted runs",
        event="session_ended",
        params={"status": ["aborted", "error"]},
        webhook_url=url,
        webhook_secret="s3cret",
        now=T0 - timedelta(days=1),
        **extra,
    )


def save(doc, *, at=NOW, capture, format_id="picoflow") -> tuple[object, list[int]]:
    """Ingest ``doc`` and run what its commit enqueues, as the worker would."""
    outbox_ids: list[int] = []

    def receiver(sender=None, *, outbox_id, **_):
        outbox_ids.append(outbox_id)

    evaluate.outbox_committed.connect(receiver, dispatch_uid="test-capture")
    try:
        with capture(execute=True):
            session = ingest(doc, now=at, format_id=format_id)
    finally:
        evaluate.outbox_committed.disconnect(dispatch_uid="test-capture")
    created = [n for o in outbox_ids for n in evaluate.process_outbox(outbox_id=o, now=at)]
    return session, created


# --- rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "params", "path"),
    [
        ("session_ended", {"status": ["running"]}, "params.status"),
        ("session_ended", {}, "params.status"),
        ("session_stuck", {"minutes": 0}, "params.minutes"),
        ("tool_error_rate", {"above": 1.5, "window_minutes": 5, "min_calls": 1}, "params.above"),
        ("tool_error_rate", {"above": 0.2, "window_minutes": 5}, "params.min_calls"),
        ("session_cost", {"above_usd": "lots"}, "params.above_usd"),
        ("session_paused", {}, "event"),
    ],
)
def test_a_rule_with_params_that_do_not_fit_its_event_is_refused(event, params, path):
    with pytest.raises(InvalidAlertRule) as refused:
        rules.create_rule(name="r", event=event, params=params, webhook_url="https://x.test/h")
    assert refused.value.path == path


@pytest.mark.parametrize("url", ["ftp://x.test/h", "file:///etc/passwd", "javascript:alert(1)"])
def test_webhook_urls_must_be_http(url):
    with pytest.raises(InvalidAlertRule, match="http"):
        rules.create_rule(name="r", event="session_stuck", params={"minutes": 5}, webhook_url=url)


def test_an_operator_restricts_webhook_hosts(settings):
    settings.ALERT_WEBHOOK_ALLOWED_HOSTS = "hooks.slack.com,.example.com"
    for url in ("https://hooks.slack.com/x", "https://chat.example.com/hooks/1"):
        rules.create_rule(name="ok", event="session_stuck", params={"minutes": 5}, webhook_url=url)
    with pytest.raises(InvalidAlertRule, match="ALERT_WEBHOOK_ALLOWED_HOSTS"):
        rules.create_rule(
            name="no", event="session_stuck", params={"minutes": 5}, webhook_url="http://10.0.0.1/"
        )


def test_a_rule_needs_somewhere_to_send_to():
    with pytest.raises(InvalidAlertRule, match="webhook_url or emails"):
        rules.create_rule(name="r", event="session_stuck", params={"minutes": 5})


def test_update_changes_only_what_is_given():
    rule = ended_rule(filters={"agent": "TripFlow"})
    changed = rules.update_rule(rule_id=rule.id, muted_until=NOW)
    assert changed.muted_until == NOW
    assert changed.filters == {"agent": "TripFlow"}
    assert changed.params == {"status": ["aborted", "error"]}


# --- session events -----------------------------------------------------------------------------


def test_the_save_that_aborts_a_session_notifies_once(django_capture_on_commit_callbacks):
    rule = ended_rule()
    doc = picoflow_doc(status="running")
    session, created = save(doc, at=NOW, capture=django_capture_on_commit_callbacks)
    assert created == []
    doc["runStatus"] = "aborted"
    session, created = save(doc, at=NOW, capture=django_capture_on_commit_callbacks)
    assert len(created) == 1
    notification = AlertNotification.objects.get(pk=created[0])
    assert notification.rule_id == rule.id
    assert notification.payload["session"]["id"] == str(session.id)
    assert notification.payload["session"]["status"] == "aborted"
    assert notification.payload["session"]["url"].endswith(f"/sessions/{session.id}/")
    assert notification.payload["alert"] == {
        "id": rule.id,
        "name": "aborted runs",
        "event": "session_ended",
    }
    assert "ended aborted" in notification.payload["text"]

    # The same bytes again store nothing and notify nothing; new bytes still aborted: the rule
    # already notified for this session.
    _, again = save(doc, at=NOW, capture=django_capture_on_commit_callbacks)
    assert again == []
    doc["log"] = [{"level": "info", "message": "late line"}]
    _, later = save(doc, at=NOW + timedelta(seconds=5), capture=django_capture_on_commit_callbacks)
    assert later == []
    assert AlertNotification.objects.filter(rule_id=rule.id).count() == 1


def test_the_outbox_row_is_written_in_the_saves_transaction_and_processed_once(
    django_capture_on_commit_callbacks,
):
    ended_rule()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ingest(picoflow_doc(status="aborted"), now=NOW)
    (outbox,) = AlertOutbox.objects.all()
    assert outbox.processed_at is None
    assert len(callbacks) == 1  # the enqueue waits for the commit
    first = evaluate.process_outbox(outbox_id=outbox.pk, now=NOW)
    assert len(first) == 1
    assert evaluate.process_outbox(outbox_id=outbox.pk, now=NOW) == []


def test_no_rule_no_outbox_row():
    ingest(picoflow_doc(status="aborted"), now=NOW)
    assert not AlertOutbox.objects.exists()


def test_the_sweep_picks_up_an_outbox_row_whose_enqueue_was_lost():
    ended_rule()
    ingest(picoflow_doc(status="aborted"), now=NOW)  # its on_commit never ran: a crash
    early = evaluate.evaluate_alerts(now=NOW + timedelta(seconds=5))
    assert early.outbox_recovered == 0  # still in the fast path's hands
    result = evaluate.evaluate_alerts(now=NOW + evaluate.OUTBOX_GRACE + timedelta(seconds=1))
    assert result.outbox_recovered == 1
    assert result.fired == 1
    assert AlertNotification.objects.count() == 1
    assert evaluate.evaluate_alerts(now=NOW + timedelta(hours=1)).outbox_cleared == 0
    assert evaluate.evaluate_alerts(now=NOW + timedelta(days=2)).outbox_cleared == 1
    assert not AlertOutbox.objects.exists()


def test_filters_and_mutes_hold_back_a_rule(django_capture_on_commit_callbacks):
    ended_rule(filters={"agent": "OtherFlow"})
    muted = ended_rule()
    rules.update_rule(rule_id=muted.id, muted_until=NOW + timedelta(hours=1))
    _, created = save(
        picoflow_doc(status="aborted"), at=NOW, capture=django_capture_on_commit_callbacks
    )
    assert created == []


def test_a_tool_filter_matches_sessions_that_called_the_tool(django_capture_on_commit_callbacks):
    ended_rule(filters={"tool": "book_flight"})
    _, skipped = save(
        picoflow_doc(status="aborted"), at=NOW, capture=django_capture_on_commit_callbacks
    )
    _, matched = save(
        picoflow_doc(status="aborted", tools=[("book_flight", "error")]),
        at=NOW,
        capture=django_capture_on_commit_callbacks,
    )
    assert (len(skipped), len(matched)) == (0, 1)


def test_cost_above_an_amount_notifies(django_capture_on_commit_callbacks):
    from sessions_api.models import ModelPrice

    ModelPrice.objects.create(
        model="gpt-4o-mini", input_per_mtok=1000, output_per_mtok=1000, effective_from=T0.date()
    )
    rules.create_rule(
        name="pricey",
        event="session_cost",
        params={"above_usd": 0.05},
        emails=["ops@example.com"],
        now=T0,
    )
    _, cheap = save(
        picoflow_doc(tokens=(10, 5)), at=NOW, capture=django_capture_on_commit_callbacks
    )
    _, dear = save(
        picoflow_doc(tokens=(100, 20)), at=NOW, capture=django_capture_on_commit_callbacks
    )
    assert (len(cheap), len(dear)) == (0, 1)
    notification = AlertNotification.objects.get(pk=dear[0])
    assert notification.payload["details"]["estimated_cost_usd"] == pytest.approx(0.12)


# --- clock rules --------------------------------------------------------------------------------


def test_a_stuck_session_fires_once_and_resolves_when_it_moves_again():
    rules.create_rule(
        name="stalled", event="session_stuck", params={"minutes": 30}, emails=["a@b.example"]
    )
    doc = picoflow_doc(status="running")
    session = ingest(doc, now=NOW)
    updated = session.updated_at
    assert evaluate.evaluate_alerts(now=updated + timedelta(minutes=29)).fired == 0
    first = evaluate.evaluate_alerts(now=updated + timedelta(minutes=31))
    again = evaluate.evaluate_alerts(now=updated + timedelta(minutes=40))
    assert (first.fired, again.fired) == (1, 0)
    (notification,) = AlertNotification.objects.all()
    assert notification.session_id == session.id
    assert "no update for 31 min" in notification.text

    later = updated + timedelta(minutes=41)
    moved = picoflow_doc(
        session_id=doc["id"], status="running", saved=later, extra_message="back again"
    )
    ingest(moved, now=later)
    resolved = evaluate.evaluate_alerts(now=later + timedelta(minutes=1))
    assert (resolved.fired, resolved.resolved) == (0, 1)
    assert evaluate.evaluate_alerts(now=later + timedelta(minutes=2)).resolved == 0
    kinds = list(AlertNotification.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["fired", "resolved"]


def test_a_tool_error_rate_window_fires_once_and_resolves_once():
    rule = rules.create_rule(
        name="flaky tools",
        event="tool_error_rate",
        params={"above": 0.3, "window_minutes": 15, "min_calls": 4},
        webhook_url="https://hooks.example.com/x",
    )
    call_time = T0 + timedelta(minutes=1)  # picoflow_doc's tool calls happen then
    tools = [("search", "error")] * 3 + [("search", "success")] * 2
    ingest(picoflow_doc(tools=tools), now=NOW)
    during = call_time + timedelta(minutes=5)
    first = evaluate.evaluate_alerts(now=during)
    still = evaluate.evaluate_alerts(now=during + timedelta(minutes=1))
    assert (first.fired, still.fired) == (1, 0)
    after = evaluate.evaluate_alerts(now=call_time + timedelta(minutes=20))  # window moved on
    assert after.resolved == 1
    kinds = list(
        AlertNotification.objects.filter(rule_id=rule.id).order_by("id").values_list("kind", "text")
    )
    assert [k for k, _ in kinds] == ["fired", "resolved"]
    assert "60% (3 of 5 calls)" in kinds[0][1]
    assert "resolved" in kinds[1][1]
    assert AlertRule.objects.get(pk=rule.id).state["firing"] == {}


def test_too_few_calls_do_not_fire_a_rate_rule():
    rules.create_rule(
        name="flaky tools",
        event="tool_error_rate",
        params={"above": 0.3, "window_minutes": 15, "min_calls": 10, "per_tool": True},
        webhook_url="https://hooks.example.com/x",
    )
    ingest(picoflow_doc(tools=[("search", "error")] * 3), now=NOW)
    assert evaluate.evaluate_alerts(now=T0 + timedelta(minutes=5)).fired == 0


# --- delivery -----------------------------------------------------------------------------------


def test_a_webhook_is_signed_readable_and_recorded(django_capture_on_commit_callbacks):
    with WebhookReceiver() as receiver:
        ended_rule(url=receiver.url)
        _, created = save(
            picoflow_doc(status="aborted"), at=NOW, capture=django_capture_on_commit_callbacks
        )
        outcome = delivery.deliver_notification(notification_id=created[0])
    assert outcome.status == "delivered"
    (hit,) = receiver.received
    expected = "sha256=" + hmac.new(b"s3cret", hit.body, hashlib.sha256).hexdigest()
    assert hit.headers["x-observatory-signature"] == expected
    assert hit.headers["x-observatory-notification"] == str(created[0])
    body = json.loads(hit.body)
    assert set(body) >= {"alert", "session", "text", "fired_at"}
    assert body["text"].startswith('Observatory alert "aborted runs": session ')
    (attempt,) = AlertDeliveryAttempt.objects.all()
    assert (attempt.channel, attempt.ok, attempt.http_status) == ("webhook", True, 200)


def test_a_failing_receiver_is_retried_with_backoff_then_gets_it(
    settings, django_capture_on_commit_callbacks
):
    settings.ALERT_RETRY_BASE_SECONDS = 10
    with WebhookReceiver(fail_first=2) as receiver:
        rule = ended_rule(url=receiver.url)
        _, (notification_id,) = save(
            picoflow_doc(status="aborted"), at=NOW, capture=django_capture_on_commit_callbacks
        )
        first = delivery.deliver_notification(notification_id=notification_id)
        assert (first.status, first.retry_in) == ("pending", 10)
        assert selectors.rule_health(rules.get_rule(rule_id=rule.id)).failing is False
        second = delivery.deliver_notification(notification_id=notification_id)
        assert (second.status, second.retry_in) == ("pending", 20)
        assert selectors.rule_health(rules.get_rule(rule_id=rule.id)).failing is True
        third = delivery.deliver_notification(notification_id=notification_id)
    assert third.status == "delivered"
    assert receiver.answered == [500, 500, 200]
    assert len({r.body for r in receiver.received}) == 1  # the same notification each time
    assert selectors.rule_health(rules.get_rule(rule_id=rule.id)).failing is False


def test_backoff_doubles_up_to_its_cap(settings):
    settings.ALERT_RETRY_BASE_SECONDS = 10
    settings.ALERT_RETRY_MAX_SECONDS = 60
    assert [delivery.backoff(n) for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_a_notification_is_failed_after_the_last_attempt(settings):
    settings.ALERT_MAX_ATTEMPTS = 2
    rule = ended_rule(url="http://127.0.0.1:9/nothing-listens")
    notification_id = evaluate.send_test(rule_id=rule.id, now=NOW)
    delivery.deliver_notification(notification_id=notification_id)
    last = delivery.deliver_notification(notification_id=notification_id)
    assert last.status == "failed"
    health = selectors.rule_health(rules.get_rule(rule_id=rule.id))
    assert health.failing
    assert "gave up after 2 attempts" in AlertNotification.objects.get().last_error


def test_a_claimed_notification_is_not_sent_twice():
    rule = ended_rule(url="http://127.0.0.1:9/x")
    notification_id = evaluate.send_test(rule_id=rule.id, now=NOW)
    AlertNotification.objects.filter(pk=notification_id).update(status="sending", claimed_at=NOW)
    assert not delivery.deliver_notification(
        notification_id=notification_id, now=NOW + timedelta(seconds=30)
    ).claimed


def test_email_goes_through_djangos_backend_and_is_not_repeated_for_a_webhook_retry():
    rule = ended_rule(url="http://127.0.0.1:9/down", emails=["ops@example.com"])
    notification_id = evaluate.send_test(rule_id=rule.id, now=NOW)
    delivery.deliver_notification(notification_id=notification_id)
    delivery.deliver_notification(notification_id=notification_id)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ops@example.com"]
    assert "test notification" in mail.outbox[0].body


def test_the_deliver_sweep_sends_what_is_due():
    with WebhookReceiver() as receiver:
        rule = ended_rule(url=receiver.url)
        evaluate.send_test(rule_id=rule.id, now=NOW)
        result = delivery.deliver_alerts(now=NOW + timedelta(seconds=1))
    assert (result.due, result.delivered) == (1, 1)
    assert len(receiver.received) == 1


def test_sessions_the_expiry_job_expired_notify_an_expired_rule_once():
    from sessions_api.models import Session

    rules.create_rule(
        name="expired", event="session_ended", params={"status": ["expired"]},
        emails=["ops@example.com"], now=NOW,
    )  # fmt: skip
    session = ingest(picoflow_doc(status="running"), now=NOW)
    Session.objects.filter(pk=session.pk).update(
        status="expired", status_before_expiry="running", expired_at=NOW + timedelta(minutes=1)
    )
    first = evaluate.evaluate_alerts(now=NOW + timedelta(minutes=2))
    again = evaluate.evaluate_alerts(now=NOW + timedelta(minutes=3))
    assert (first.fired, again.fired) == (1, 0)
    assert "ended expired" in AlertNotification.objects.get().text


def test_a_save_that_appends_to_a_session_is_checked_like_any_other(
    django_capture_on_commit_callbacks, monkeypatch
):
    """A save that only appends messages is derived incrementally; it still writes the outbox
    row its commit announces, so a cost rule fires on the save that crosses the amount."""
    from sessions_api.ingest import incremental
    from sessions_api.models import ModelPrice

    merged = []
    real_merge = incremental.merge
    monkeypatch.setattr(
        incremental, "merge", lambda *a, **k: merged.append(real_merge(*a, **k)) or merged[-1]
    )
    ModelPrice.objects.create(
        model="gpt-4o-mini", input_per_mtok=1000, output_per_mtok=1000, effective_from=T0.date()
    )
    rules.create_rule(
        name="pricey", event="session_cost", params={"above_usd": 0.05}, emails=["o@x.io"], now=T0
    )
    messages = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]

    def chat(usage: tuple[int, int]) -> dict:
        return {
            "id": "growing-costs",
            "model": "gpt-4o-mini",
            "messages": messages,
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]},
        }

    capture = django_capture_on_commit_callbacks
    _, cheap = save(chat((10, 5)), at=NOW, capture=capture, format_id="openai_chat")
    messages += [{"role": "user", "content": "more"}, {"role": "assistant", "content": "sure"}]
    _, dear = save(chat((100, 20)), at=NOW, capture=capture, format_id="openai_chat")
    assert [m is not None for m in merged] == [True]  # the second save was merged
    assert (len(cheap), len(dear)) == (0, 1)
