"""Alert events reach the broker off the request path: sends happen on a background thread,
a failing broker is logged and left to the sweep, and a backlog is bounded."""

from __future__ import annotations

import threading

import pytest

from workers import alert_events


class FakeApp:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list]] = []
        self.threads: set[str] = set()
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()

    def send_task(self, name, args=None, **options):
        self.gate.wait(timeout=30)
        self.threads.add(threading.current_thread().name)
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((name, list(args or [])))


@pytest.fixture
def fake_app(monkeypatch) -> FakeApp:
    app = FakeApp()
    monkeypatch.setattr(alert_events, "celery_app", lambda: app)
    yield app
    app.gate.set()
    alert_events.flush()


def test_events_are_sent_by_name_on_a_background_thread(fake_app):
    alert_events.enqueue_session_event(outbox_id=7)
    alert_events.enqueue_deliveries(notification_ids=[1, 2])
    alert_events.flush()
    assert fake_app.sent == [
        ("alerts.session_event", [7]),
        ("alerts.deliver", [1]),
        ("alerts.deliver", [2]),
    ]
    assert threading.current_thread().name not in fake_app.threads


def test_a_failing_broker_is_logged_and_never_raised(fake_app, caplog):
    fake_app.fail = True
    alert_events.enqueue_session_event(outbox_id=8)
    alert_events.flush()
    assert "could not send alerts.session_event" in caplog.text
    assert alert_events._pending == 0


def test_a_backlog_past_its_bound_is_left_to_the_sweep(fake_app, monkeypatch, caplog):
    monkeypatch.setattr(alert_events, "MAX_PENDING", 2)
    fake_app.gate.clear()  # the broker hangs
    for outbox_id in range(5):
        alert_events.enqueue_session_event(outbox_id=outbox_id)
    assert "left to the sweep" in caplog.text
    fake_app.gate.set()
    alert_events.flush()
    assert [args for _, args in fake_app.sent] == [[0], [1]]
