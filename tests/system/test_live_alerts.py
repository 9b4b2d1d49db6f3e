"""Alerts end to end: gunicorn, a real Celery worker and beat on a private Redis, and a local
HTTP receiver. An agent's aborting save reaches the receiver within seconds, signed and with a
working link; the same bytes again notify nothing; a receiver that fails twice gets the third
attempt; a stuck session and a tool error rate window fire on the beat schedule and resolve.

Every wait is a poll with a deadline; "nothing more arrived" is checked by sending a later
event behind it on the same single-process worker and waiting for that one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.urls import resolve

from tests.support.job_sessions import picoflow_doc
from tests.support.live_processes import (
    LiveServer,
    Proc,
    RedisServer,
    create_api_key,
    live_database,
    request,
    wait_for,
)
from tests.support.webhook_receiver import WebhookReceiver
from tests.system.test_live_workers import client_app, start_beat, start_worker
from workers.registry import JOB_NAMES

pytestmark = pytest.mark.slow

if not shutil.which("redis-server"):
    pytest.skip("redis-server is not installed", allow_module_level=True)

PUBLIC = "https://observatory.example.test"


def ping(broker: str, timeout: float) -> str:
    """A worker's answer to the canary task; the client lets go of Redis afterwards, so
    stopping Redis at the end leaves no result listener retrying."""
    app = client_app(broker)
    result = app.send_task("workers.ping")
    try:
        return result.get(timeout=timeout)
    finally:
        result.forget()
        app.backend.result_consumer.stop()
        app.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("alerts-live")
    redis = RedisServer(tmp)
    redis.start()
    procs: list[Proc] = []
    server = None
    try:
        with live_database(tmp, "alerts") as database:
            key = create_api_key(database, tmp)
            env = {
                "REDIS_URL": redis.url,
                "PUBLIC_BASE_URL": PUBLIC,
                "API_RATE_LIMIT": "0",
                "ALERT_RETRY_BASE_SECONDS": "0.3",
                "ALERT_RETRY_MAX_SECONDS": "1",
                "ALERT_CLAIM_TIMEOUT_SECONDS": "3",
                "CELERY_VISIBILITY_TIMEOUT": "6",
                "CELERY_UNACKED_RESTORE_INTERVAL": "1",
                "JOB_LOCK_TTL_SECONDS": "4",
                "LOG_LEVEL": "WARNING",
                # Beat runs only the alert jobs, every 2 seconds.
                **{f"JOB_SCHEDULE_{job.upper()}": "off" for job in JOB_NAMES},
                "JOB_SCHEDULE_EVALUATE_ALERTS": "2",
                "JOB_SCHEDULE_DELIVER_ALERTS": "2",
            }
            server = LiveServer(tmp, database, workers=1, threads=4, env=env)
            worker = start_worker(server.env, tmp, "alerts-worker")
            procs.append(worker)
            wait_for("the worker to answer a ping", lambda: ping(redis.url, 5), timeout=60)
            procs.append(start_beat(server.env, tmp, "alerts-beat"))
            yield {"server": server, "key": key, "tmp": tmp, "redis": redis, "procs": procs}
    finally:
        for proc in reversed(procs):
            proc.stop()
        if server is not None:
            server.stop()
        redis.stop()


def api(stack, method: str, path: str, body: Any = None):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    return request(stack["server"].port, method, "/api/v1" + path, data, key=stack["key"])


def create_rule(stack, **rule: Any) -> dict[str, Any]:
    answer = api(stack, "POST", "/alerts", rule)
    assert answer.status == 201, answer.body
    return answer.json()


def post_session(stack, doc: dict[str, Any]) -> dict[str, Any]:
    answer = api(stack, "POST", "/sessions?format=picoflow", json.dumps(doc).encode())
    assert answer.status in (200, 201), answer.body
    return answer.json()


def received_for(receiver: WebhookReceiver, predicate) -> list[dict[str, Any]]:
    return [b for b in receiver.bodies() if predicate(b)]


def test_an_aborting_save_notifies_once_signed_and_linked(stack):
    agent = f"abort-{uuid.uuid4().hex[:6]}"
    with WebhookReceiver() as receiver:
        rule = create_rule(
            stack,
            name="aborted runs",
            event="session_ended",
            params={"status": ["aborted"]},
            filters={"agent": agent},
            webhook_url=receiver.url,
        )
        doc = picoflow_doc(status="running", flow=agent)
        post_session(stack, doc)
        doc["runStatus"] = "aborted"
        saved = post_session(stack, doc)
        (body,) = wait_for("the webhook", lambda: receiver.bodies() or None, timeout=15)

        (hit,) = receiver.received
        expected = hmac.new(rule["webhook_secret"].encode(), hit.body, hashlib.sha256)
        assert hit.headers["x-observatory-signature"] == "sha256=" + expected.hexdigest()
        assert body["alert"] == {"id": rule["id"], "name": "aborted runs", "event": "session_ended"}
        assert body["session"]["id"] == saved["id"]
        assert body["session"]["status"] == "aborted"
        assert body["session"]["agent"] == agent
        assert body["text"].startswith('Observatory alert "aborted runs": session ')
        link = urlsplit(body["session"]["url"])
        assert f"{link.scheme}://{link.netloc}" == PUBLIC
        assert resolve(link.path).view_name == "dashboard:session"
        page = request(stack["server"].port, "GET", link.path)
        assert page.status == 302 and "/accounts/login/" in page.headers["location"]

        # The same bytes again: stored nothing, so nothing is checked. A second aborted session
        # goes behind it; once it has arrived, nothing else did.
        again = post_session(stack, doc)
        assert again["changed"] is False and again["version"] == saved["version"]
        other = picoflow_doc(status="aborted", flow=agent)
        post_session(stack, other)
        wait_for("the second session's webhook", lambda: len(receiver.received) >= 2, 15)
        sessions = [b["session"]["external_id"] for b in receiver.bodies()]
        assert sessions == [doc["id"], other["id"]]

        notifications = api(stack, "GET", f"/alerts/{rule['id']}/notifications").json()
        assert [n["status"] for n in notifications["items"]] == ["delivered", "delivered"]


def test_a_receiver_that_fails_twice_gets_the_third_attempt(stack):
    agent = f"retry-{uuid.uuid4().hex[:6]}"
    with WebhookReceiver(fail_first=2) as receiver:
        rule = create_rule(
            stack,
            name="retried",
            event="session_ended",
            params={"status": ["aborted"]},
            filters={"agent": agent},
            webhook_url=receiver.url,
        )
        post_session(stack, picoflow_doc(status="aborted", flow=agent))
        wait_for("three attempts", lambda: len(receiver.received) >= 3, timeout=30)
        assert receiver.answered == [500, 500, 200]
        assert len({r.body for r in receiver.received}) == 1  # one notification, three tries

        def delivered():
            items = api(stack, "GET", f"/alerts/{rule['id']}/notifications").json()["items"]
            return items if items and items[0]["status"] == "delivered" else None

        (item,) = wait_for("the delivered notification", delivered, timeout=15)
        assert item["attempts"] == 3
        assert [a["http_status"] for a in item["attempt_log"]] == [500, 500, 200]
        assert len(receiver.received) == 3


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_a_stuck_session_fires_and_resolves_on_the_beat_schedule(stack):
    agent = f"stuck-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    with WebhookReceiver() as receiver:
        create_rule(
            stack,
            name="stalled",
            event="session_stuck",
            params={"minutes": 1},
            filters={"agent": agent},
            webhook_url=receiver.url,
        )
        doc = picoflow_doc(
            status="running", flow=agent, created=now - timedelta(minutes=10),
            saved=now - timedelta(minutes=5),
        )  # fmt: skip
        post_session(stack, doc)
        (fired,) = wait_for("the stuck notification", lambda: receiver.bodies() or None, 30)
        assert fired["kind"] == "fired" and "has had no update" in fired["text"]

        moved = picoflow_doc(
            session_id=doc["id"], status="running", flow=agent,
            created=now - timedelta(minutes=10), saved=datetime.now(UTC),
            extra_message="moving again",
        )  # fmt: skip
        post_session(stack, moved)
        wait_for("the resolved notification", lambda: len(receiver.received) >= 2, 30)
        assert [b["kind"] for b in receiver.bodies()] == ["fired", "resolved"]


def test_a_tool_error_rate_window_fires_and_resolves(stack):
    tool = f"tool_{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    with WebhookReceiver() as receiver:
        create_rule(
            stack,
            name="flaky tool",
            event="tool_error_rate",
            params={"above": 0.5, "window_minutes": 10, "min_calls": 4},
            filters={"tool": tool},
            webhook_url=receiver.url,
        )
        created = now - timedelta(minutes=2)  # its tool calls happen a minute later
        failing = picoflow_doc(
            tools=[(tool, "error")] * 4, created=created, saved=now - timedelta(seconds=30)
        )
        post_session(stack, failing)
        (fired,) = wait_for("the rate notification", lambda: receiver.bodies() or None, 30)
        assert fired["kind"] == "fired"
        assert "100% (4 of 4 calls)" in fired["text"]

        healthy = picoflow_doc(
            tools=[(tool, "success")] * 8, created=created, saved=now - timedelta(seconds=30)
        )
        post_session(stack, healthy)
        wait_for("the resolved notification", lambda: len(receiver.received) >= 2, 30)
        resolved = receiver.bodies()[1]
        assert resolved["kind"] == "resolved"
        assert "back to 33% (4 of 12 calls)" in resolved["text"]


def test_a_worker_killed_mid_delivery_leaves_one_notification_delivered(stack):
    """The receiver holds the first request; the worker is killed with -9 meanwhile. A new
    worker takes the claim over once it is stale and delivers the same notification (same id
    header): one row, delivered; the receiver may see the one it never answered again."""
    agent = f"killed-{uuid.uuid4().hex[:6]}"
    with WebhookReceiver(hold_first=True) as receiver:
        rule = create_rule(
            stack,
            name="survives a worker",
            event="session_ended",
            params={"status": ["aborted"]},
            filters={"agent": agent},
            webhook_url=receiver.url,
        )
        post_session(stack, picoflow_doc(status="aborted", flow=agent))
        wait_for("the first request", lambda: receiver.received, timeout=15)
        stack["procs"][0].kill9()  # the worker
        receiver.release()
        # Into the fixture's list, so it is stopped at the end like the others.
        stack["procs"].append(start_worker(stack["server"].env, stack["tmp"], "alerts-worker-2"))
        wait_for("the new worker", lambda: ping(stack["redis"].url, 5), timeout=60)

        def delivered():
            items = api(stack, "GET", f"/alerts/{rule['id']}/notifications").json()["items"]
            return items if items and items[0]["status"] == "delivered" else None

        (item,) = wait_for("the notification delivered", delivered, timeout=60)
        ids = {r.headers["x-observatory-notification"] for r in receiver.received}
        assert ids == {str(item["id"])}
        assert len(receiver.received) == 2  # the unanswered first request, then the takeover
