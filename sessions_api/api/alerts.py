"""REST for alert rules and their notifications (scope ``admin``). Thin: every write is a
lifecycle.alerts.rules service, every read a selector; refusals answer through api/errors.py.

The webhook secret is shown once, in the answer that creates the rule (or sets a new one);
reads say only whether one is set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Path, Router, Schema, Status
from pydantic import Field

from sessions_api.api.auth import ADMIN
from sessions_api.api.schemas import error_responses
from sessions_api.lifecycle.alerts import evaluate, rules, selectors

router = Router(tags=["alerts"])
_ERRORS = error_responses(400, 401, 403, 404, 422, 429, 503)
#: Rule ids are 64-bit: a larger number names no rule (and must not reach the database).
AlertId = Path(..., ge=1, le=2**63 - 1)
EventName = Literal["session_ended", "session_stuck", "tool_error_rate", "session_cost"]


class AlertIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    event: EventName
    params: dict[str, Any] = Field(
        description='session_ended {"status": [...]}; session_stuck {"minutes": N}; '
        'tool_error_rate {"above": 0.2, "window_minutes": 15, "min_calls": 10, '
        '"per_tool": false}; session_cost {"above_usd": X}'
    )
    filters: dict[str, str] | None = Field(default=None, description="agent, format, model, tool")
    webhook_url: str | None = Field(default=None, max_length=2000)
    webhook_secret: str | None = Field(
        default=None, max_length=200, description="made up when not given"
    )
    emails: list[str] | None = None
    muted_until: datetime | None = None


class AlertPatch(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    event: EventName | None = None
    params: dict[str, Any] | None = None
    filters: dict[str, str] | None = None
    webhook_url: str | None = Field(default=None, max_length=2000)
    webhook_secret: str | None = Field(default=None, max_length=200)
    emails: list[str] | None = None
    muted_until: datetime | None = None


class AlertOut(Schema):
    id: int
    name: str
    event: str
    params: dict[str, Any]
    filters: dict[str, str]
    webhook_url: str
    has_webhook_secret: bool
    emails: list[str]
    muted_until: datetime | None
    failing: bool
    created_at: datetime
    updated_at: datetime


class AlertCreatedOut(AlertOut):
    webhook_secret: str = Field(description="sign-check deliveries with it; shown only here")


class AlertListOut(Schema):
    items: list[AlertOut]


class AttemptOut(Schema):
    channel: str
    ok: bool
    http_status: int | None
    error: str
    attempted_at: datetime


class NotificationOut(Schema):
    id: int
    alert_id: int
    kind: str
    status: str
    text: str
    session_id: str | None
    session_external_id: str
    attempts: int
    last_error: str
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    attempt_log: list[AttemptOut]


class NotificationPageOut(Schema):
    items: list[NotificationOut]
    next_cursor: str | None


class TestSentOut(Schema):
    notification_id: int


def _out(rule: rules.RuleRecord) -> dict[str, Any]:
    health = selectors.rule_health(rule)
    return {
        "id": rule.id,
        "name": rule.name,
        "event": rule.event,
        "params": rule.params,
        "filters": rule.filters,
        "webhook_url": rule.webhook_url,
        "has_webhook_secret": rule.has_webhook_secret,
        "emails": rule.emails,
        "muted_until": rule.muted_until,
        "failing": health.failing,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


@router.post(
    "/alerts", auth=ADMIN, response={201: AlertCreatedOut, **_ERRORS}, summary="Create a rule"
)
def create_alert(request: HttpRequest, payload: AlertIn):
    rule = rules.create_rule(**payload.model_dump())
    return Status(201, {**_out(rule), "webhook_secret": selectors.webhook_secret(rule_id=rule.id)})


@router.get("/alerts", auth=ADMIN, response={200: AlertListOut, **_ERRORS}, summary="List rules")
def list_alerts(request: HttpRequest):
    return {"items": [_out(rule) for rule in rules.list_rules()]}


@router.get(
    "/alerts/{alert_id}", auth=ADMIN, response={200: AlertOut, **_ERRORS}, summary="One rule"
)
def get_alert(request: HttpRequest, alert_id: int = AlertId):
    return _out(rules.get_rule(rule_id=alert_id))


@router.patch(
    "/alerts/{alert_id}",
    auth=ADMIN,
    response={200: AlertOut, **_ERRORS},
    summary="Change a rule (the fields given); mute it with muted_until",
)
def patch_alert(request: HttpRequest, alert_id: int = AlertId, *, payload: AlertPatch):
    return _out(rules.update_rule(rule_id=alert_id, **payload.model_dump(exclude_unset=True)))


@router.delete(
    "/alerts/{alert_id}", auth=ADMIN, response={204: None, **_ERRORS}, summary="Delete a rule"
)
def delete_alert(request: HttpRequest, alert_id: int = AlertId):
    if not rules.delete_rule(rule_id=alert_id):
        rules.get_rule(rule_id=alert_id)  # AlertNotFound: a 404
    return Status(204, None)


@router.get(
    "/alerts/{alert_id}/notifications",
    auth=ADMIN,
    response={200: NotificationPageOut, **_ERRORS},
    summary="A rule's notifications, newest first, with every delivery attempt",
)
def alert_notifications(
    request: HttpRequest, alert_id: int = AlertId, cursor: str | None = None, limit: int = 50
):
    rules.get_rule(rule_id=alert_id)
    page = selectors.notifications(rule_id=alert_id, cursor=cursor, limit=max(1, min(limit, 200)))
    return {
        "items": [
            {
                **{k: getattr(n, k) for k in NotificationOut.model_fields if k != "alert_id"},
                "alert_id": n.rule_id,
                "attempt_log": [a.__dict__ for a in n.attempt_log],
            }
            for n in page.items
        ],
        "next_cursor": page.next_cursor,
    }


@router.post(
    "/alerts/{alert_id}/test",
    auth=ADMIN,
    response={202: TestSentOut, **_ERRORS},
    summary="Send a test notification through the rule's webhook and emails",
)
def send_test(request: HttpRequest, alert_id: int = AlertId):
    return Status(202, {"notification_id": evaluate.send_test(rule_id=alert_id)})
