"""close_idle_otel_sessions: end OpenTelemetry sessions that have gone quiet.

A session of format ``otel`` is running while spans arrive: a conversation may continue in a
new trace at any time. It ends when every trace has delivered its root span (the adapter's
``raw_status``) and no span has arrived for ``OTEL_SESSION_IDLE`` (default 5 minutes):
``completed``, or ``error`` when the latest root ended with status ``ERROR``. A later span
stores a new version, whose index says ``running`` again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from sessions_api import conf
from sessions_api.domain import SessionStatus
from sessions_api.formats.otel.parse import FORMAT_ID, ROOTS_CLOSED, ROOTS_CLOSED_ERROR
from sessions_api.lifecycle.batches import (
    Checkpoint,
    ListedRun,
    Listing,
    check_aware,
    describe,
    no_checkpoint,
    update_in_batches,
)
from sessions_api.models import Session

_ENDINGS = (
    (ROOTS_CLOSED, SessionStatus.COMPLETED.value),
    (ROOTS_CLOSED_ERROR, SessionStatus.ERROR.value),
)


@dataclass(frozen=True)
class OtelIdleResult(ListedRun):
    closed: int

    listed_as = ("would_close", "closed")

    def counts(self) -> dict[str, int]:
        return {"closed": self.closed}


def close_idle_otel_sessions(
    *,
    now: datetime,
    batch_size: int = 1000,
    dry_run: bool = False,
    checkpoint: Checkpoint = no_checkpoint,
) -> OtelIdleResult:
    """Set the final status of every running ``otel`` session whose roots have all closed and
    that received no span for OTEL_SESSION_IDLE. The UPDATE re-checks the condition, so a
    session that received spans meanwhile stays running."""
    check_aware(now)
    idle = conf.otel_session_idle()
    listing = Listing()
    closed = 0
    for raw_status, final in _ENDINGS if idle is not None else ():
        quiet = Q(
            format=FORMAT_ID,
            status=SessionStatus.RUNNING.value,
            raw_status=raw_status,
            last_received_at__lt=now - idle,
        )
        candidates = Session.objects.filter(quiet)
        reason = f"idle, {raw_status}"
        if dry_run:
            closed += candidates.count()
            listing.add_first_candidates(candidates, reason)
            continue
        for row in update_in_batches(
            candidates,
            values={"status": final, "stuck_since": None},
            applied=Q(status=final),
            batch_size=batch_size,
            checkpoint=checkpoint,
        ):
            closed += 1
            listing.add(describe(row, reason))
    listing.more = max(0, closed - len(listing.items))
    return OtelIdleResult(
        dry_run=dry_run,
        closed=closed,
        sessions=tuple(listing.items),
        more_sessions=listing.more,
        policy={"otel_session_idle": str(idle) if idle is not None else "never"},
    )
