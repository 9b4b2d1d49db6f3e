"""From events to notifications: the outbox a session save writes, and the rules that need a
clock (stuck sessions, tool error rates over a window, sessions expired by the expiry job).

Nothing here sends anything: it creates AlertNotification rows (unique per rule and dedupe
key, so a second evaluation of the same event creates nothing) that ``delivery`` sends.
Workers learn of new work through two signals sent after commit, so the session domain never
imports its entry points.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.dispatch import Signal
from django.urls import reverse
from django.utils import timezone

from sessions_api.analytics.pricing import session_costs
from sessions_api.domain import SessionStatus, ToolStatus
from sessions_api.errors import AlertNotFound
from sessions_api.lifecycle.alerts.rules import SESSION_EVENTS, Event, session_rule_events
from sessions_api.lifecycle.batches import Checkpoint, no_checkpoint
from sessions_api.models import (
    AlertNotification,
    AlertOutbox,
    AlertRule,
    ModelUsage,
    Session,
    ToolCallRecord,
)

logger = logging.getLogger(__name__)

#: Sent after the commit of a save that wrote an outbox row (kwargs: ``outbox_id``).
outbox_committed = Signal()
#: Sent after the commit that created notifications (kwargs: ``notification_ids``).
notifications_ready = Signal()

#: An outbox row this old and still unprocessed lost its enqueue (a crash, a broker outage).
OUTBOX_GRACE = timedelta(seconds=30)
OUTBOX_KEEP = timedelta(days=1)
#: Stuck and expired sessions are looked for this far back: a new rule does not page for
#: every session that stalled months ago.
LOOKBACK = timedelta(days=1)
#: At most this many notifications per rule and run, so a misjudged rule cannot flood.
MAX_PER_RULE_RUN = 200


# --- the outbox ---------------------------------------------------------------------------------


def note_session_saved(row: Session, *, now: datetime | None = None) -> int | None:
    """Inside the transaction of a save that changed ``row``: write an outbox row when a rule
    could care, and ask a worker to check it once the transaction commits. Returns its id.

    A crash between the commit and the enqueue leaves the row for evaluate_alerts' sweep.
    """
    now = now or timezone.now()
    events = session_rule_events(now)
    if not events:
        return None
    if events == {Event.SESSION_ENDED} and row.status in _NOT_ENDED:
        return None
    outbox = AlertOutbox.objects.create(
        session_id=row.pk, version=row.latest_version, created_at=now
    )
    transaction.on_commit(lambda: _announce(outbox_committed, outbox_id=outbox.pk))
    return outbox.pk


_NOT_ENDED = (SessionStatus.RUNNING.value, SessionStatus.UNKNOWN.value)


def _announce(signal: Signal, **kwargs: Any) -> None:
    """Tell the workers; never fail the request that committed (the sweep catches up)."""
    for _receiver, result in signal.send_robust(sender=None, **kwargs):
        if isinstance(result, Exception):
            logger.warning("alerts: could not enqueue %s: %r", kwargs, result)


def process_outbox(*, outbox_id: int, now: datetime | None = None) -> list[int]:
    """Check one outbox row's session against the session rules, once: the row is locked and
    marked processed in the same transaction as the notifications it creates. Returns the
    ids of new notifications (none when the row was already processed)."""
    now = now or timezone.now()
    with transaction.atomic():
        outbox = (
            AlertOutbox.objects.select_for_update()
            .filter(pk=outbox_id, processed_at__isnull=True)
            .first()
        )
        if outbox is None:
            return []
        created: list[int] = []
        session = Session.objects.filter(pk=outbox.session_id).first()
        if session is not None:
            for rule in _active_rules(now, SESSION_EVENTS):
                notification_id = _check_session_rule(rule, session, now=now)
                if notification_id is not None:
                    created.append(notification_id)
        outbox.processed_at = now
        outbox.save(update_fields=["processed_at"])
    return created


def _check_session_rule(rule: AlertRule, session: Session, *, now: datetime) -> int | None:
    if not _matches(rule, session):
        return None
    if rule.event == Event.SESSION_ENDED:
        if session.status not in rule.params.get("status", []):
            return None
        return create_notification(
            rule,
            kind=AlertNotification.Kind.FIRED,
            dedupe_key=f"session:{session.pk}",
            session=session,
            text=f"session {session.external_id}{_agent(session)} ended {session.status}",
            now=now,
        )
    if rule.event == Event.SESSION_COST:
        estimate = session_costs(sessions={str(session.pk): session.started_at})[str(session.pk)]
        above = rule.params.get("above_usd", 0)
        if estimate.amount is None or float(estimate.amount) <= above:
            return None
        return create_notification(
            rule,
            kind=AlertNotification.Kind.FIRED,
            dedupe_key=f"session:{session.pk}",
            session=session,
            text=f"session {session.external_id}{_agent(session)} cost an estimated "
            f"${float(estimate.amount):.2f}, above ${above:g}",
            details={"estimated_cost_usd": float(estimate.amount)},
            now=now,
        )
    return None


# --- the periodic evaluation ----------------------------------------------------------------------


@dataclass
class EvaluateResult:
    dry_run: bool = False
    outbox_recovered: int = 0
    outbox_cleared: int = 0
    fired: int = 0
    resolved: int = 0
    rules: int = 0
    notification_ids: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "rules": self.rules,
            "outbox_recovered": self.outbox_recovered,
            "outbox_cleared": self.outbox_cleared,
            "fired": self.fired,
            "resolved": self.resolved,
        }

    def details(self) -> dict[str, Any]:
        return {"notifications": self.notification_ids[:100]}

    @property
    def nothing_to_do(self) -> str:
        """Why the run had nothing to do ("" when there were rules or outbox rows)."""
        if self.rules or self.outbox_recovered or self.outbox_cleared:
            return ""
        return "no alert rules and no saves waiting for a check"


def evaluate_alerts(
    *, now: datetime, dry_run: bool = False, checkpoint: Checkpoint = no_checkpoint
) -> EvaluateResult:
    """The evaluate_alerts job: outbox rows whose enqueue was lost, then every rule that needs
    a clock. New notifications are announced for delivery after commit."""
    result = EvaluateResult(dry_run=dry_run)
    left_behind = AlertOutbox.objects.filter(
        processed_at__isnull=True, created_at__lte=now - OUTBOX_GRACE
    ).order_by("created_at")
    if dry_run:
        result.outbox_recovered = left_behind.count()
        result.rules = len(_active_rules(now))
        return result
    for outbox_id in list(left_behind.values_list("pk", flat=True)[:1000]):
        result.notification_ids += process_outbox(outbox_id=outbox_id, now=now)
        result.outbox_recovered += 1
    # Processed rows have done their work; a day of them is kept to look into.
    done = AlertOutbox.objects.filter(processed_at__lt=now - OUTBOX_KEEP).order_by("pk")
    result.outbox_cleared = AlertOutbox.objects.filter(
        pk__in=list(done.values_list("pk", flat=True)[:10_000])
    ).delete()[0]
    result.fired += len(result.notification_ids)
    for rule in _active_rules(now):
        result.rules += 1
        checkpoint()
        if rule.event == Event.SESSION_STUCK:
            _evaluate_stuck(rule, now=now, result=result)
        elif rule.event == Event.TOOL_ERROR_RATE:
            _evaluate_rate(rule, now=now, result=result)
        elif rule.event == Event.SESSION_ENDED and "expired" in rule.params.get("status", []):
            _evaluate_expired(rule, now=now, result=result)
    if result.notification_ids:
        ids = list(result.notification_ids)
        transaction.on_commit(lambda: _announce(notifications_ready, notification_ids=ids))
    return result


def _evaluate_stuck(rule: AlertRule, *, now: datetime, result: EvaluateResult) -> None:
    """Fire once per session that has had no update for the rule's minutes, and "resolved"
    once it moves again (updated, or ended). The sessions reported stuck are kept on the rule."""
    minutes = int(rule.params["minutes"])
    cutoff = now - timedelta(minutes=minutes)
    with transaction.atomic():
        locked = AlertRule.objects.select_for_update().get(pk=rule.pk)
        stuck: list[str] = list((locked.state or {}).get("stuck", []))
        moved_on = Session.objects.filter(pk__in=stuck).exclude(
            status=SessionStatus.RUNNING.value, updated_at__lte=cutoff
        )
        gone = set(stuck) - {
            str(pk) for pk in Session.objects.filter(pk__in=stuck).values_list("pk", flat=True)
        }
        for session in moved_on:
            notification_id = create_notification(
                locked,
                kind=AlertNotification.Kind.RESOLVED,
                dedupe_key=f"resolved:session:{session.pk}",
                session=session,
                text=f"resolved: session {session.external_id}{_agent(session)} is "
                + (
                    "running again"
                    if session.status == SessionStatus.RUNNING.value
                    else f"{session.status} now"
                ),
                now=now,
            )
            if notification_id is not None:
                result.resolved += 1
                result.notification_ids.append(notification_id)
            gone.add(str(session.pk))
        stuck = [sid for sid in stuck if sid not in gone]
        candidates = _filtered(rule, Session.objects.all()).filter(
            status=SessionStatus.RUNNING.value,
            updated_at__lte=cutoff,
            updated_at__gt=cutoff - LOOKBACK,
        )
        for session in _fire_for_sessions(
            locked,
            candidates,
            now=now,
            result=result,
            text=lambda s: (
                f"session {s.external_id}{_agent(s)} has had no update for "
                f"{int((now - s.updated_at).total_seconds() // 60)} min "
                f"(stuck after {minutes} min)"
            ),
        ):
            stuck.append(str(session.pk))
        locked.state = {**(locked.state or {}), "stuck": stuck}
        locked.save(update_fields=["state"])


def _evaluate_expired(rule: AlertRule, *, now: datetime, result: EvaluateResult) -> None:
    """Expiry is the expiry job's save, not an ingest: its sessions are found here."""
    candidates = _filtered(rule, Session.objects.all()).filter(
        status=SessionStatus.EXPIRED.value,
        expired_at__gte=max(rule.created_at, now - LOOKBACK),
    )
    _fire_for_sessions(
        rule,
        candidates,
        now=now,
        result=result,
        text=lambda s: f"session {s.external_id}{_agent(s)} ended expired",
    )


def _fire_for_sessions(
    rule: AlertRule, candidates: QuerySet[Session], *, now: datetime, result: EvaluateResult, text
) -> list[Session]:
    """A notification for each candidate this rule has not notified about; those fired."""
    already = AlertNotification.objects.filter(
        rule=rule, kind=AlertNotification.Kind.FIRED, session_id__isnull=False
    ).values("session_id")
    fired = []
    for session in candidates.exclude(pk__in=already).order_by("updated_at")[:MAX_PER_RULE_RUN]:
        notification_id = create_notification(
            rule,
            kind=AlertNotification.Kind.FIRED,
            dedupe_key=f"session:{session.pk}",
            session=session,
            text=text(session),
            now=now,
        )
        if notification_id is not None:
            result.fired += 1
            result.notification_ids.append(notification_id)
            fired.append(session)
    return fired


def _evaluate_rate(rule: AlertRule, *, now: datetime, result: EvaluateResult) -> None:
    """Fire once when a window's error rate rises above the threshold (with enough calls),
    and once more, "resolved", when it falls back. The firing windows are kept on the rule."""
    p = rule.params
    window = timedelta(minutes=int(p["window_minutes"]))
    calls = ToolCallRecord.objects.filter(
        occurred_at__gt=now - window, occurred_at__lte=now
    ).exclude(status=ToolStatus.PENDING.value)
    filters = rule.filters or {}
    if filters.get("tool"):
        calls = calls.filter(name=filters["tool"])
    if filters.get("agent"):
        calls = calls.filter(session__agent=filters["agent"])
    if filters.get("format"):
        calls = calls.filter(session__format=filters["format"])
    if filters.get("model"):
        calls = calls.filter(
            session_id__in=ModelUsage.objects.filter(model=filters["model"]).values("session_id")
        )
    error = Count("pk", filter=Q(status=ToolStatus.ERROR.value))
    if p.get("per_tool"):
        rows = calls.values("name").annotate(calls=Count("pk"), errors=error)
        observed = {r["name"]: (r["calls"], r["errors"]) for r in rows}
    else:
        totals = calls.aggregate(calls=Count("pk"), errors=error)
        observed = {"*": (totals["calls"], totals["errors"])}
    with transaction.atomic():
        locked = AlertRule.objects.select_for_update().get(pk=rule.pk)
        firing: dict[str, str] = dict((locked.state or {}).get("firing", {}))
        for key in sorted(set(observed) | set(firing)):
            total, errors = observed.get(key, (0, 0))
            rate = errors / total if total else 0.0
            above = total >= int(p["min_calls"]) and rate > float(p["above"])
            scope = "all tools" if key == "*" else f"tool {key}"
            figures = f"{rate:.0%} ({errors} of {total} calls) over {int(p['window_minutes'])} min"
            details = {"tool": None if key == "*" else key, "calls": total, "errors": errors}
            if above and key not in firing:
                firing[key] = now.isoformat()
                notification_id = create_notification(
                    locked,
                    kind=AlertNotification.Kind.FIRED,
                    dedupe_key=f"rate:{key}:{firing[key]}"[:300],
                    text=f"tool error rate of {scope} is {figures}, above {float(p['above']):.0%}",
                    details={**details, "rate": rate},
                    now=now,
                )
                if notification_id is not None:
                    result.fired += 1
                    result.notification_ids.append(notification_id)
            elif not above and key in firing:
                since = firing.pop(key)
                notification_id = create_notification(
                    locked,
                    kind=AlertNotification.Kind.RESOLVED,
                    dedupe_key=f"resolved:{key}:{since}"[:300],
                    text=f"resolved: tool error rate of {scope} is back to {figures}",
                    details={**details, "rate": rate, "firing_since": since},
                    now=now,
                )
                if notification_id is not None:
                    result.resolved += 1
                    result.notification_ids.append(notification_id)
        locked.state = {**(locked.state or {}), "firing": firing}
        locked.save(update_fields=["state"])


# --- notifications ------------------------------------------------------------------------------


def create_notification(
    rule: AlertRule,
    *,
    kind: str,
    dedupe_key: str,
    text: str,
    now: datetime,
    session: Session | None = None,
    details: dict[str, Any] | None = None,
) -> int | None:
    """The notification, unless this rule already has one with this key (then None)."""
    text = f'Observatory alert "{rule.name}": {text}'
    payload: dict[str, Any] = {
        "alert": {"id": rule.pk, "name": rule.name, "event": rule.event},
        "kind": kind,
        "text": text,
        "fired_at": now.isoformat().replace("+00:00", "Z"),
    }
    if session is not None:
        url = session_url(str(session.pk))
        payload["session"] = {
            "id": str(session.pk),
            "external_id": session.external_id,
            "status": session.status,
            "agent": session.agent,
            "url": url,
        }
        payload["text"] = f"{text} {url}"
    if details:
        payload["details"] = details
    try:
        with transaction.atomic():
            row = AlertNotification.objects.create(
                rule=rule,
                dedupe_key=dedupe_key,
                kind=kind,
                session=session,
                session_external_id=session.external_id if session is not None else "",
                text=payload["text"],
                payload=payload,
                status=AlertNotification.Status.PENDING,
                next_attempt_at=now,
                created_at=now,
            )
    except IntegrityError:
        return None  # this rule already notified this event
    return row.pk


def send_test(*, rule_id: int, now: datetime | None = None) -> int | None:
    """A test notification of a rule (the Alerts page's button); delivered like any other."""
    now = now or timezone.now()
    rule = AlertRule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise AlertNotFound(f"no alert {rule_id}")
    notification_id = create_notification(
        rule,
        kind=AlertNotification.Kind.TEST,
        dedupe_key=f"test:{uuid.uuid4().hex}",
        text="a test notification; the rule's real ones look like this",
        now=now,
    )
    transaction.on_commit(
        lambda: _announce(notifications_ready, notification_ids=[notification_id])
    )
    return notification_id


def session_url(session_id: str) -> str:
    """The session's page, absolute: PUBLIC_BASE_URL (the address users reach the
    dashboard at) plus its path."""
    base = str(getattr(settings, "PUBLIC_BASE_URL", "") or "http://localhost:8000").rstrip("/")
    return base + reverse("dashboard:session", kwargs={"session_id": session_id})


# --- helpers ------------------------------------------------------------------------------------


def _active_rules(now: datetime, events: tuple[str, ...] | None = None) -> list[AlertRule]:
    rules = AlertRule.objects.exclude(muted_until__gt=now)
    if events is not None:
        rules = rules.filter(event__in=events)
    return list(rules.order_by("id"))


def _matches(rule: AlertRule, session: Session) -> bool:
    filters = rule.filters or {}
    if filters.get("agent") and session.agent != filters["agent"]:
        return False
    if filters.get("format") and session.format != filters["format"]:
        return False
    if filters.get("model") and filters["model"] not in (session.model_names or []):
        return False
    return not (
        filters.get("tool")
        and not ToolCallRecord.objects.filter(session=session, name=filters["tool"]).exists()
    )


def _filtered(rule: AlertRule, sessions: QuerySet[Session]) -> QuerySet[Session]:
    filters = rule.filters or {}
    if filters.get("agent"):
        sessions = sessions.filter(agent=filters["agent"])
    if filters.get("format"):
        sessions = sessions.filter(format=filters["format"])
    if filters.get("model"):
        sessions = sessions.filter(
            pk__in=ModelUsage.objects.filter(model=filters["model"]).values("session_id")
        )
    if filters.get("tool"):
        sessions = sessions.filter(
            pk__in=ToolCallRecord.objects.filter(name=filters["tool"]).values("session_id")
        )
    return sessions


def _agent(session: Session) -> str:
    return f" ({session.agent})" if session.agent else ""
