"""Where every change to a session is audited: one :class:`AuditEntry` per edit (who, when,
why, from and to which version, and the JSON diff) and one per refused attempt (action
``refused``). An edit's entry is written in the edit's own transaction: no change without
its entry, no entry for a change that was rolled back."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.conf import settings

from sessions_api.access.throttle import Tally, Throttle
from sessions_api.editing.locking import session_uuid
from sessions_api.editing.values import Actor, EditRequest
from sessions_api.errors import ReasonRequired
from sessions_api.models import AuditEntry, Session

MAX_REASON_CHARS = 2000
MAX_DIFF_CHARS = 256_000


def require_reason(edit: EditRequest) -> EditRequest:
    """``edit`` with the reason its audit entry records cleaned; every change needs one."""
    text = (edit.reason or "").replace("\x00", "").strip()
    if not text:
        raise ReasonRequired("say why: every change needs a reason", path="reason")
    if len(text) > MAX_REASON_CHARS:
        raise ReasonRequired(f"a reason is at most {MAX_REASON_CHARS} characters", path="reason")
    return replace(edit, reason=text)


def record_change(
    *,
    row: Session,
    edit: EditRequest,
    action: str,
    from_version: int | None,
    to_version: int | None,
    diff: list[dict[str, Any]],
    details: dict[str, Any],
) -> AuditEntry:
    """The audit entry of a change ``edit`` made to the locked ``row`` (its reason cleaned)."""
    return AuditEntry.objects.create(
        session=row,
        session_external_id=row.external_id[:512],
        session_key=str(row.id),
        actor_id=edit.actor.user_id,
        actor_label=edit.actor.label[:255],
        action=action,
        reason=edit.reason,
        from_version=from_version,
        to_version=to_version,
        diff=_bounded(diff),
        details=details,
        created_at=edit.now,
    )


REFUSAL_WINDOW_SECONDS = 60


def _refusals() -> Throttle:
    return Throttle(
        "audit-refusals", int(settings.AUDIT_REFUSALS_PER_MINUTE), REFUSAL_WINDOW_SECONDS
    )


def record_refusal(
    *,
    actor: Actor,
    attempted: str,
    message: str,
    now: datetime,
    session_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> int | None:
    """Record an action someone was not allowed to take. Never raises for an unknown session:
    the attempt is what is recorded.

    Rate-limited per actor, so that a client hammering what it may not do cannot push real
    entries off the log's first page: the first ``AUDIT_REFUSALS_PER_MINUTE`` refusals of a
    minute get an entry each (None is returned for the others), and the entry that opens the
    next minute carries ``details.unlisted_refusals``, how many were only counted."""
    throttle = _refusals()
    clock = now.timestamp()
    seen = throttle.hit(actor.label, now=clock)
    if throttle.limit > 0 and seen > throttle.limit:
        Tally("audit-refusals-unlisted").add(actor.label)
        return None
    unlisted = Tally("audit-refusals-unlisted").take(actor.label)
    if unlisted:
        details = {**(details or {}), "unlisted_refusals": unlisted}
    row = Session.objects.filter(id=session_uuid(session_id)).first() if session_id else None
    entry = AuditEntry.objects.create(
        session=row,
        session_external_id=row.external_id if row else "",
        session_key=str(row.id) if row else "",
        actor_id=actor.user_id,
        actor_label=actor.label[:255],
        action=AuditEntry.Action.REFUSED,
        reason=message[:MAX_REASON_CHARS],
        details={"attempted": attempted, **(details or {})},
        created_at=now,
    )
    return entry.id


def _bounded(ops: list[dict[str, Any]], max_chars: int = MAX_DIFF_CHARS) -> list[dict[str, Any]]:
    """Keep audit rows small: ops beyond ``max_chars`` of JSON are summarised."""
    kept: list[dict[str, Any]] = []
    size = 0
    for index, op in enumerate(ops):
        text = json.dumps(op, ensure_ascii=False, default=str)
        if size + len(text) > max_chars:
            kept.append({"op": "truncated", "omitted": len(ops) - index})
            break
        kept.append(op)
        size += len(text)
    return kept
