"""Alert rules: validated here once, for the API, the dashboard and the admin alike."""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from sessions_api.domain import SessionStatus
from sessions_api.errors import AlertNotFound, InvalidAlertRule
from sessions_api.models import AlertRule

Event = AlertRule.Event
EVENTS = tuple(Event.values)
FILTERS = ("agent", "format", "model", "tool")
#: Statuses that end a session (``running`` and ``unknown`` do not).
ENDED_STATUSES = tuple(
    s.value for s in SessionStatus if s not in (SessionStatus.RUNNING, SessionStatus.UNKNOWN)
)
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
MAX_EMAILS = 20
#: The events checked when a session is saved (the others need a clock).
SESSION_EVENTS = (Event.SESSION_ENDED, Event.SESSION_COST)


@dataclass(frozen=True)
class RuleRecord:
    id: int
    name: str
    event: str
    params: dict[str, Any]
    filters: dict[str, str]
    webhook_url: str
    has_webhook_secret: bool
    emails: list[str]
    muted_until: datetime | None
    created_at: datetime
    updated_at: datetime

    def muted(self, now: datetime) -> bool:
        return self.muted_until is not None and self.muted_until > now

    def describe(self) -> str:
        """The condition in words: ``status in aborted, error``, ``stuck for 30 min``."""
        p = self.params
        if self.event == Event.SESSION_ENDED:
            return "ended " + ", ".join(p.get("status", []))
        if self.event == Event.SESSION_STUCK:
            return f"no update for {p.get('minutes')} min"
        if self.event == Event.TOOL_ERROR_RATE:
            scope = "per tool" if p.get("per_tool") else "overall"
            return (
                f"tool error rate > {p.get('above'):g} over {p.get('window_minutes')} min "
                f"(min {p.get('min_calls')} calls, {scope})"
            )
        return f"estimated cost > ${p.get('above_usd'):g}"


def record(row: AlertRule) -> RuleRecord:
    return RuleRecord(
        id=row.id,
        name=row.name,
        event=row.event,
        params=dict(row.params or {}),
        filters=dict(row.filters or {}),
        webhook_url=row.webhook_url,
        has_webhook_secret=bool(row.webhook_secret),
        emails=list(row.emails or []),
        muted_until=row.muted_until,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


_RULE_EVENTS_CACHE_KEY = "alerts:session-rule-events"
#: How long a save trusts the cached answer to "do session rules exist?": a save costs no
#: query for it, and a rule created or muted in another process applies within this time.
RULE_EVENTS_TTL_SECONDS = 5
#: A batch saves hundreds of sessions in a row: within a second they ask this process, not the
#: cache (on Redis a round trip each).
_MEMO_SECONDS = 1.0
_memo: tuple[float, frozenset[str]] | None = None


def session_rule_events(now: datetime) -> frozenset[str]:
    """The session events some unmuted rule watches (cached briefly; rule writes clear it)."""
    global _memo
    memo, clock = _memo, time.monotonic()
    if memo is not None and clock - memo[0] < _MEMO_SECONDS:
        return memo[1]
    cached = cache.get(_RULE_EVENTS_CACHE_KEY)
    if cached is None:
        rows = AlertRule.objects.filter(event__in=SESSION_EVENTS).values_list(
            "event", "muted_until"
        )
        cached = sorted({event for event, until in rows if until is None or until <= now})
        cache.set(_RULE_EVENTS_CACHE_KEY, cached, RULE_EVENTS_TTL_SECONDS)
    events = frozenset(cached)
    _memo = (clock, events)
    return events


def forget_rule_events() -> None:
    """Rules changed: the next save asks the database again."""
    global _memo
    _memo = None
    cache.delete(_RULE_EVENTS_CACHE_KEY)


# --- validation ---------------------------------------------------------------------------------


def _number(
    params: Mapping[str, Any], name: str, *, kind: type, minimum: float, maximum: float
) -> int | float:
    value = params.get(name)
    path = f"params.{name}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidAlertRule(f"params.{name} must be a number", path=path)
    if not minimum <= value <= maximum:
        raise InvalidAlertRule(f"params.{name} must be {minimum:g} to {maximum:g}", path=path)
    if kind is int and value != int(value):
        raise InvalidAlertRule(f"params.{name} must be a whole number", path=path)
    return kind(value)


#: A year in minutes: the longest stall or window a rule may name.
_YEAR_MINUTES = 366 * 24 * 60


def clean_params(event: str, params: Any) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise InvalidAlertRule("params must be an object", path="params")
    if event == Event.SESSION_ENDED:
        statuses = params.get("status")
        if isinstance(statuses, str):
            statuses = [statuses]
        if not isinstance(statuses, list) or not statuses:
            raise InvalidAlertRule("params.status must list statuses", path="params.status")
        unknown = [s for s in statuses if s not in ENDED_STATUSES]
        if unknown:
            raise InvalidAlertRule(
                f"params.status: {unknown!r} do not end a session; "
                f"choose from {', '.join(ENDED_STATUSES)}",
                path="params.status",
            )
        return {"status": sorted(set(statuses))}
    if event == Event.SESSION_STUCK:
        return {"minutes": _number(params, "minutes", kind=int, minimum=1, maximum=_YEAR_MINUTES)}
    if event == Event.TOOL_ERROR_RATE:
        above = _number(params, "above", kind=float, minimum=0, maximum=1)
        if above >= 1:
            raise InvalidAlertRule("params.above is a share of calls, below 1", path="params.above")
        return {
            "above": above,
            "window_minutes": _number(
                params, "window_minutes", kind=int, minimum=1, maximum=_YEAR_MINUTES
            ),
            "min_calls": _number(params, "min_calls", kind=int, minimum=1, maximum=10**9),
            "per_tool": bool(params.get("per_tool", False)),
        }
    if event == Event.SESSION_COST:
        return {"above_usd": _number(params, "above_usd", kind=float, minimum=0, maximum=10**9)}
    raise InvalidAlertRule(f"event must be one of {', '.join(EVENTS)}", path="event")


def clean_filters(filters: Any) -> dict[str, str]:
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise InvalidAlertRule("filters must be an object", path="filters")
    cleaned = {}
    for name, value in filters.items():
        if name not in FILTERS:
            raise InvalidAlertRule(
                f"filters.{name}: filters are {', '.join(FILTERS)}", path=f"filters.{name}"
            )
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > 255:
            raise InvalidAlertRule(
                f"filters.{name} must be text up to 255 characters", path=f"filters.{name}"
            )
        cleaned[name] = _text(value, f"filters.{name}").strip()
    return cleaned


def allowed_webhook_hosts() -> tuple[str, ...]:
    """ALERT_WEBHOOK_ALLOWED_HOSTS: host names (``hooks.slack.com``) or suffixes
    (``.example.com``) webhooks may point at; empty allows any host."""
    raw = getattr(settings, "ALERT_WEBHOOK_ALLOWED_HOSTS", "")
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(item.strip().lower() for item in items if item.strip())


def clean_webhook_url(url: Any) -> str:
    if url in (None, ""):
        return ""
    if not isinstance(url, str) or len(url) > 2000:
        raise InvalidAlertRule("webhook_url must be a URL", path="webhook_url")
    url = _text(url, "webhook_url")
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InvalidAlertRule("webhook_url must be an http(s) URL", path="webhook_url") from None
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in url.strip()):
        raise InvalidAlertRule("webhook_url must be an http(s) URL", path="webhook_url")
    allowed = allowed_webhook_hosts()
    if allowed and not any(
        host == item or (item.startswith(".") and host.endswith(item)) for item in allowed
    ):
        raise InvalidAlertRule(
            f"webhook_url: {host} is not among the hosts this server may call "
            "(ALERT_WEBHOOK_ALLOWED_HOSTS)",
            path="webhook_url",
        )
    return url.strip()


def clean_emails(emails: Any) -> list[str]:
    if emails in (None, ""):
        return []
    if isinstance(emails, str):
        emails = [e for e in re.split(r"[,\s;]+", emails) if e]
    if not isinstance(emails, list) or len(emails) > MAX_EMAILS:
        raise InvalidAlertRule(f"emails must list up to {MAX_EMAILS} addresses", path="emails")
    for address in emails:
        if not isinstance(address, str) or not _EMAIL.match(address) or len(address) > 254:
            raise InvalidAlertRule(f"emails: {address!r} is not an address", path="emails")
        _text(address, "emails")
    return list(dict.fromkeys(emails))


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidAlertRule("name must be 1-200 characters", path="name")
    return _text(name, "name").strip()


def _text(value: str, path: str) -> str:
    """Text a database column can hold: UTF-8, no NUL (PostgreSQL refuses it)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidAlertRule(f"{path} is not valid UTF-8 text", path=path) from None
    if "\x00" in value:
        raise InvalidAlertRule(f"{path} holds a NUL character", path=path)
    return value


def _aware(moment: datetime | None) -> datetime | None:
    """A time without an offset is read as UTC."""
    if moment is not None and timezone.is_naive(moment):
        return timezone.make_aware(moment, UTC)
    return moment


# --- writes -------------------------------------------------------------------------------------


def create_rule(
    *,
    name: str,
    event: str,
    params: Mapping[str, Any],
    filters: Mapping[str, Any] | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    emails: list[str] | str | None = None,
    muted_until: datetime | None = None,
    now: datetime | None = None,
) -> RuleRecord:
    """A new rule. Without a webhook secret one is made up (the rule's page shows how to read
    it from the admin); a rule needs a webhook or at least one email address."""
    now = now or timezone.now()
    if event not in EVENTS:
        raise InvalidAlertRule(f"event must be one of {', '.join(EVENTS)}", path="event")
    row = AlertRule(
        name=_clean_name(name),
        event=event,
        params=clean_params(event, params),
        filters=clean_filters(filters),
        webhook_url=clean_webhook_url(webhook_url),
        webhook_secret=_text(webhook_secret or "", "webhook_secret").strip()
        or secrets.token_urlsafe(32),
        emails=clean_emails(emails),
        muted_until=_aware(muted_until),
        created_at=now,
        updated_at=now,
    )
    _check_destination(row)
    row.save()
    transaction.on_commit(forget_rule_events)
    forget_rule_events()
    return record(row)


_UNSET: Any = object()


def update_rule(
    *,
    rule_id: int,
    name: str = _UNSET,
    event: str = _UNSET,
    params: Mapping[str, Any] = _UNSET,
    filters: Mapping[str, Any] | None = _UNSET,
    webhook_url: str | None = _UNSET,
    webhook_secret: str | None = _UNSET,
    emails: list[str] | str | None = _UNSET,
    muted_until: datetime | None = _UNSET,
    now: datetime | None = None,
) -> RuleRecord:
    """Change the fields given; the others stay. Changing the event needs its params too."""
    with transaction.atomic():
        row = AlertRule.objects.select_for_update().filter(pk=rule_id).first()
        if row is None:
            raise AlertNotFound(f"no alert {rule_id}")
        if event is not _UNSET and event != row.event:
            if event not in EVENTS:
                raise InvalidAlertRule(f"event must be one of {', '.join(EVENTS)}", path="event")
            if params is _UNSET:
                raise InvalidAlertRule("a new event needs its params", path="params")
            row.event = event
            row.state = {}
        if name is not _UNSET:
            row.name = _clean_name(name)
        if params is not _UNSET:
            row.params = clean_params(row.event, params)
        if filters is not _UNSET:
            row.filters = clean_filters(filters)
        if webhook_url is not _UNSET:
            row.webhook_url = clean_webhook_url(webhook_url)
        if webhook_secret is not _UNSET and (webhook_secret or "").strip():
            row.webhook_secret = _text(webhook_secret, "webhook_secret").strip()
        if emails is not _UNSET:
            row.emails = clean_emails(emails)
        if muted_until is not _UNSET:
            row.muted_until = _aware(muted_until)
        _check_destination(row)
        row.updated_at = now or timezone.now()
        row.save()
        transaction.on_commit(forget_rule_events)
    forget_rule_events()
    return record(row)


def delete_rule(*, rule_id: int) -> bool:
    deleted, _ = AlertRule.objects.filter(pk=rule_id).delete()
    forget_rule_events()
    return bool(deleted)


def _check_destination(row: AlertRule) -> None:
    if not row.webhook_url and not row.emails:
        raise InvalidAlertRule("a rule needs a webhook_url or emails", path="webhook_url")


# --- reads --------------------------------------------------------------------------------------


def get_rule(*, rule_id: int) -> RuleRecord:
    row = AlertRule.objects.filter(pk=rule_id).first()
    if row is None:
        raise AlertNotFound(f"no alert {rule_id}")
    return record(row)


def list_rules() -> list[RuleRecord]:
    return [record(row) for row in AlertRule.objects.order_by("name", "id")]
