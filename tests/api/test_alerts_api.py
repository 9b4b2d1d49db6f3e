"""The alerts REST API: admin scope, the DESIGN's shapes, validation answered as 422."""

from __future__ import annotations

import json

import pytest

from sessions_api.lifecycle.alerts import evaluate, rules
from tests.support.job_sessions import ingest, picoflow_doc

pytestmark = pytest.mark.django_db

RULE = {
    "name": "aborted TripFlow runs",
    "event": "session_ended",
    "params": {"status": ["aborted"]},
    "filters": {"agent": "TripFlow"},
    "webhook_url": "https://hooks.example.com/services/T0/B0/x",
}


@pytest.fixture(autouse=True)
def _fresh_rule_events():
    rules.forget_rule_events()
    yield
    rules.forget_rule_events()


def patch(api, path: str, body: dict):
    return api.client.patch(
        "/api/v1" + path,
        data=json.dumps(body),
        content_type="application/json",
        headers=api._headers(),
    )


def test_create_read_change_and_delete_a_rule(api):
    created = api.post("/alerts", RULE)
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["webhook_secret"]  # made up, shown once
    assert rule["has_webhook_secret"] and not rule["failing"]
    assert rule["params"] == {"status": ["aborted"]}

    shown = api.get(f"/alerts/{rule['id']}").json()
    assert "webhook_secret" not in shown
    assert [r["id"] for r in api.get("/alerts").json()["items"]] == [rule["id"]]

    muted = patch(api, f"/alerts/{rule['id']}", {"muted_until": "2030-01-01T00:00:00Z"})
    assert muted.status_code == 200, muted.content
    assert muted.json()["muted_until"].startswith("2030-01-01")
    assert muted.json()["filters"] == {"agent": "TripFlow"}

    assert api.delete(f"/alerts/{rule['id']}").status_code == 204
    assert api.get(f"/alerts/{rule['id']}").status_code == 404
    assert api.delete(f"/alerts/{rule['id']}").status_code == 404


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"webhook_url": "ftp://example.com/x"}, "webhook_url"),
        ({"params": {"status": ["running"]}}, "params.status"),
        ({"filters": {"colour": "red"}}, "filters.colour"),
        ({"webhook_url": None, "emails": ["not-an-address"]}, "emails"),
    ],
)
def test_a_rule_that_does_not_hold_together_is_a_422(api, change, path):
    answer = api.post("/alerts", {**RULE, **change})
    assert answer.status_code == 422, answer.content
    assert answer.json()["code"] == "invalid_alert"
    assert answer.json()["path"] == path


@pytest.mark.parametrize("scopes", [("read",), ("ingest", "read", "write")])
def test_alerts_need_the_admin_scope(api_as, scopes):
    client = api_as(*scopes)
    assert client.post("/alerts", RULE).status_code == 403
    assert client.get("/alerts").status_code == 403


def test_notifications_are_paged_newest_first_with_their_session(
    api, django_capture_on_commit_callbacks
):
    rule = api.post("/alerts", {**RULE, "filters": {}}).json()
    outbox: list[int] = []
    evaluate.outbox_committed.connect(
        lambda sender=None, *, outbox_id, **_: outbox.append(outbox_id),
        dispatch_uid="t",
        weak=False,
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            for _ in range(3):
                ingest(picoflow_doc(status="aborted"))
    finally:
        evaluate.outbox_committed.disconnect(dispatch_uid="t")
    for outbox_id in outbox:
        evaluate.process_outbox(outbox_id=outbox_id)

    first = api.get(f"/alerts/{rule['id']}/notifications", limit=2).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = api.get(
        f"/alerts/{rule['id']}/notifications", limit=2, cursor=first["next_cursor"]
    ).json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    ids = [n["id"] for n in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    item = first["items"][0]
    assert item["alert_id"] == rule["id"]
    assert item["kind"] == "fired" and item["status"] == "pending"
    assert item["session_id"] and item["session_external_id"]
    bad = api.get(f"/alerts/{rule['id']}/notifications", cursor="nonsense")
    assert bad.status_code == 400


def test_send_a_test_notification(api):
    rule = api.post("/alerts", RULE).json()
    sent = api.post(f"/alerts/{rule['id']}/test", {})
    assert sent.status_code == 202, sent.content
    (item,) = api.get(f"/alerts/{rule['id']}/notifications").json()["items"]
    assert item["id"] == sent.json()["notification_id"]
    assert item["kind"] == "test"
    assert api.post("/alerts/999999/test", {}).status_code == 404


def test_hostile_input_is_refused_not_a_server_error(api):
    assert api.get(f"/alerts/{2**70}").status_code == 422
    assert api.post("/alerts", {**RULE, "name": "a\u0000b"}).status_code == 422
    assert api.post("/alerts", {**RULE, "webhook_url": "http://[::1/x"}).status_code == 422
    assert api.post("/alerts", {**RULE, "webhook_url": "http://host:port/x"}).status_code == 422


@pytest.mark.parametrize(
    "params",
    [{"minutes": 1e400}, {"minutes": 10**30}, {"minutes": -1}, {"minutes": 2.5}, {"minutes": True}],
)
def test_numbers_out_of_range_are_refused(api, params):
    answer = api.post("/alerts", {**RULE, "event": "session_stuck", "params": params})
    assert answer.status_code == 422, answer.content
    assert answer.json()["path"] == "params.minutes"
