"""Delivering notifications: a signed webhook and/or email, each attempt recorded.

A delivery claims its notification first (pending -> sending, one conditional UPDATE), so two
workers, or a retry and the sweep, never send the same notification twice at once; a claim a
dead worker left is taken over after ALERT_CLAIM_TIMEOUT_SECONDS. A channel that already
succeeded is not tried again, so an email is not repeated because the webhook failed. Failures
are retried with exponential backoff (ALERT_RETRY_BASE_SECONDS doubled per attempt, at most
ALERT_RETRY_MAX_SECONDS) until ALERT_MAX_ATTEMPTS; then the notification is failed.

The webhook body is the notification's JSON payload; ``X-Observatory-Signature:
sha256=<hex>`` is the HMAC-SHA256 of exactly those bytes keyed with the rule's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.utils import timezone

from sessions_api.errors import InvalidAlertRule
from sessions_api.lifecycle.alerts.rules import clean_webhook_url
from sessions_api.lifecycle.batches import Checkpoint, no_checkpoint
from sessions_api.models import AlertDeliveryAttempt, AlertNotification

Status = AlertNotification.Status
SIGNATURE_HEADER = "X-Observatory-Signature"
#: The notification's id: the same on every attempt, so a receiver can drop a repeat (a worker
#: that died after the receiver answered but before the answer was recorded sends it again).
NOTIFICATION_HEADER = "X-Observatory-Notification"


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def claim_timeout() -> timedelta:
    """A "sending" claim older than this lost its worker: the sweep takes it over
    (ALERT_CLAIM_TIMEOUT_SECONDS, longer than a delivery can take)."""
    return timedelta(seconds=_setting("ALERT_CLAIM_TIMEOUT_SECONDS", 120))


def max_attempts() -> int:
    return max(1, int(_setting("ALERT_MAX_ATTEMPTS", 8)))


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 10, 20, 40, ... up to 600
    (with the default settings)."""
    base = _setting("ALERT_RETRY_BASE_SECONDS", 10)
    return min(base * 2 ** max(0, attempts - 1), _setting("ALERT_RETRY_MAX_SECONDS", 600))


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DeliveryOutcome:
    notification_id: int
    claimed: bool
    status: str = ""
    #: Seconds until the next attempt is due, when one is.
    retry_in: float | None = None


def deliver_notification(*, notification_id: int, now: datetime | None = None) -> DeliveryOutcome:
    """One delivery attempt of one notification (to each channel not yet done)."""
    now = now or timezone.now()
    stale = now - claim_timeout()
    claimed = (
        AlertNotification.objects.filter(pk=notification_id)
        .filter(Q(status=Status.PENDING) | Q(status=Status.SENDING, claimed_at__lt=stale))
        .update(status=Status.SENDING, claimed_at=now)
    )
    if not claimed:
        return DeliveryOutcome(notification_id=notification_id, claimed=False)
    notification = AlertNotification.objects.select_related("rule").get(pk=notification_id)
    rule = notification.rule
    done = set(
        notification.attempt_log.filter(ok=True).values_list("channel", flat=True).distinct()
    )
    failures = []
    if rule.webhook_url and "webhook" not in done:
        error = _attempt(notification, "webhook", lambda: _post_webhook(notification))
        if error:
            failures.append(f"webhook: {error}")
    if rule.emails and "email" not in done:
        error = _attempt(notification, "email", lambda: _send_email(notification))
        if error:
            failures.append(f"email: {error}")
    attempts = notification.attempts + 1
    finished = timezone.now()
    if not failures:
        AlertNotification.objects.filter(pk=notification_id).update(
            status=Status.DELIVERED,
            attempts=attempts,
            delivered_at=finished,
            claimed_at=None,
            next_attempt_at=None,
            last_error="",
        )
        return DeliveryOutcome(notification_id, claimed=True, status=Status.DELIVERED)
    error = "; ".join(failures)[:4000]
    if attempts >= max_attempts():
        AlertNotification.objects.filter(pk=notification_id).update(
            status=Status.FAILED,
            attempts=attempts,
            claimed_at=None,
            next_attempt_at=None,
            last_error=f"gave up after {attempts} attempts: {error}",
        )
        return DeliveryOutcome(notification_id, claimed=True, status=Status.FAILED)
    wait = backoff(attempts)
    AlertNotification.objects.filter(pk=notification_id).update(
        status=Status.PENDING,
        attempts=attempts,
        claimed_at=None,
        next_attempt_at=finished + timedelta(seconds=wait),
        last_error=error,
    )
    return DeliveryOutcome(notification_id, claimed=True, status=Status.PENDING, retry_in=wait)


@dataclass
class _Answer:
    ok: bool
    http_status: int | None = None
    error: str = ""


def _attempt(notification: AlertNotification, channel: str, send) -> str:
    """Run one channel's send, record it, and return its error ('' when it worked)."""
    started = time.monotonic()
    try:
        answer = send()
    except Exception as exc:  # any failure of the far side is recorded, never raised
        answer = _Answer(ok=False, error=f"{type(exc).__name__}: {exc}")
    AlertDeliveryAttempt.objects.create(
        notification=notification,
        channel=channel,
        ok=answer.ok,
        http_status=answer.http_status,
        error=answer.error[:1000],
        attempted_at=timezone.now(),
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    return "" if answer.ok else answer.error or f"HTTP {answer.http_status}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead past ALERT_WEBHOOK_ALLOWED_HOSTS: it counts as a failure."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def webhook_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _post_webhook(notification: AlertNotification) -> _Answer:
    rule = notification.rule
    try:
        url = clean_webhook_url(rule.webhook_url)  # the allowed hosts may have changed since
    except InvalidAlertRule as exc:
        return _Answer(ok=False, error=exc.message)
    body = webhook_body(notification.payload)
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "SessionObservatory-Alerts/1",
            SIGNATURE_HEADER: sign(body, rule.webhook_secret),
            NOTIFICATION_HEADER: str(notification.pk),
        },
    )
    timeout = _setting("ALERT_WEBHOOK_TIMEOUT_SECONDS", 10)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            return _Answer(ok=200 <= response.status < 300, http_status=response.status)
    except urllib.error.HTTPError as exc:
        return _Answer(ok=False, http_status=exc.code, error=f"HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return _Answer(ok=False, error=f"{type(exc).__name__}: {reason}")


def _send_email(notification: AlertNotification) -> _Answer:
    rule = notification.rule
    subject = f"[Observatory] {rule.name}: {notification.kind}"
    send_mail(
        subject=subject[:200],
        message=notification.text,
        from_email=None,  # DEFAULT_FROM_EMAIL
        recipient_list=list(rule.emails),
        fail_silently=False,
    )
    return _Answer(ok=True)


# --- the sweep ----------------------------------------------------------------------------------


@dataclass
class DeliverResult:
    dry_run: bool = False
    due: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    notification_ids: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "due": self.due,
            "delivered": self.delivered,
            "retrying": self.retrying,
            "failed": self.failed,
        }

    def details(self) -> dict[str, Any]:
        return {"notifications": self.notification_ids[:100]}

    @property
    def nothing_to_do(self) -> str:
        """Why the run had nothing to do ("" when a notification was due)."""
        return "" if self.due else "no notifications due"


def deliver_alerts(
    *,
    now: datetime,
    dry_run: bool = False,
    checkpoint: Checkpoint = no_checkpoint,
    batch_size: int = 100,
) -> DeliverResult:
    """The deliver_alerts job: every notification whose next attempt is due (its own retry
    message lost, or never sent), and claims a dead worker left behind."""
    due = AlertNotification.objects.filter(
        Q(status=Status.PENDING, next_attempt_at__lte=now)
        | Q(status=Status.SENDING, claimed_at__lt=now - claim_timeout())
    ).order_by("next_attempt_at", "id")
    result = DeliverResult(dry_run=dry_run)
    if dry_run:
        result.due = due.count()
        return result
    for notification_id in list(due.values_list("pk", flat=True)[:batch_size]):
        checkpoint()
        outcome = deliver_notification(notification_id=notification_id, now=now)
        if not outcome.claimed:
            continue
        result.due += 1
        result.notification_ids.append(notification_id)
        if outcome.status == Status.DELIVERED:
            result.delivered += 1
        elif outcome.status == Status.FAILED:
            result.failed += 1
        else:
            result.retrying += 1
    return result
