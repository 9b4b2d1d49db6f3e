"""What the Alerts page and the API read: notifications with their attempts, and each rule's
delivery health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sessions_api.errors import InvalidQuery
from sessions_api.lifecycle.alerts.rules import RuleRecord, list_rules
from sessions_api.models import AlertDeliveryAttempt, AlertNotification, AlertRule
from sessions_api.sessions.cursors import MalformedCursor, decode_cursor, encode_cursor, integer


@dataclass(frozen=True)
class AttemptRecord:
    channel: str
    ok: bool
    http_status: int | None
    error: str
    attempted_at: datetime
    duration_ms: int


@dataclass(frozen=True)
class NotificationRecord:
    id: int
    rule_id: int
    rule_name: str
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
    attempt_log: tuple[AttemptRecord, ...] = ()


@dataclass(frozen=True)
class NotificationPage:
    items: list[NotificationRecord]
    next_cursor: str | None


@dataclass(frozen=True)
class RuleHealth:
    """``failing`` when the latest attempts to reach the rule's destinations all failed."""

    rule: RuleRecord
    failing: bool
    failed_in_a_row: int
    last_error: str
    last_notified_at: datetime | None
    notifications: int


def notifications(
    *, rule_id: int | None = None, cursor: str | None = None, limit: int = 50
) -> NotificationPage:
    """Newest first; ``cursor`` continues after the last item of the previous page."""
    rows = AlertNotification.objects.select_related("rule").order_by("-id")
    if rule_id is not None:
        rows = rows.filter(rule_id=rule_id)
    if cursor:
        try:
            (after,) = decode_cursor(cursor, integer, order="id")
        except MalformedCursor as exc:
            raise InvalidQuery(exc.message, path="cursor") from None
        rows = rows.filter(pk__lt=after)
    page = list(rows[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    attempts: dict[int, list[AttemptRecord]] = {}
    for a in AlertDeliveryAttempt.objects.filter(notification__in=page).order_by("attempted_at"):
        attempts.setdefault(a.notification_id, []).append(
            AttemptRecord(
                channel=a.channel,
                ok=a.ok,
                http_status=a.http_status,
                error=a.error,
                attempted_at=a.attempted_at,
                duration_ms=a.duration_ms,
            )
        )
    items = [
        NotificationRecord(
            id=n.pk,
            rule_id=n.rule_id,
            rule_name=n.rule.name,
            kind=n.kind,
            status=n.status,
            text=n.text,
            session_id=str(n.session_id) if n.session_id else None,
            session_external_id=n.session_external_id,
            attempts=n.attempts,
            last_error=n.last_error,
            created_at=n.created_at,
            delivered_at=n.delivered_at,
            next_attempt_at=n.next_attempt_at,
            attempt_log=tuple(attempts.get(n.pk, ())),
        )
        for n in page
    ]
    next_cursor = encode_cursor("id", page[-1].pk) if more and page else None
    return NotificationPage(items=items, next_cursor=next_cursor)


def rule_health(rule: RuleRecord) -> RuleHealth:
    attempts = AlertDeliveryAttempt.objects.filter(notification__rule_id=rule.id).order_by(
        "-attempted_at", "-id"
    )
    failed_in_a_row = 0
    last_error = ""
    for attempt in attempts[:20]:
        if attempt.ok:
            break
        failed_in_a_row += 1
        last_error = last_error or attempt.error
    latest = AlertNotification.objects.filter(rule_id=rule.id).order_by("-id").first()
    gave_up = latest is not None and latest.status == AlertNotification.Status.FAILED
    return RuleHealth(
        rule=rule,
        failing=failed_in_a_row >= 2 or gave_up,
        failed_in_a_row=failed_in_a_row,
        last_error=last_error or (latest.last_error if gave_up else ""),
        last_notified_at=latest.created_at if latest else None,
        notifications=AlertNotification.objects.filter(rule_id=rule.id).count(),
    )


def rules_with_health() -> list[RuleHealth]:
    return [rule_health(rule) for rule in list_rules()]


def webhook_secret(*, rule_id: int) -> str:
    """The rule's signing secret (shown to admins who set up the receiver)."""
    row = AlertRule.objects.filter(pk=rule_id).only("webhook_secret").first()
    return row.webhook_secret if row else ""
