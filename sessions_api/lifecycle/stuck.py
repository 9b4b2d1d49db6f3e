"""detect_stuck_sessions: flag running sessions that stopped updating, clear those that moved on.

The batch machinery and the race-safety rule are in :mod:`sessions_api.lifecycle.batches`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from sessions_api import conf
from sessions_api.domain import SessionStatus
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

RUNNING = SessionStatus.RUNNING.value


@dataclass(frozen=True)
class StuckResult(ListedRun):
    flagged: int
    cleared: int
    stuck_total: int

    listed_as = ("would_flag", "flagged")

    def counts(self) -> dict[str, int]:
        return {"flagged": self.flagged, "cleared": self.cleared, "stuck_total": self.stuck_total}


def detect_stuck_sessions(
    *,
    now: datetime,
    batch_size: int = 1000,
    dry_run: bool = False,
    checkpoint: Checkpoint = no_checkpoint,
) -> StuckResult:
    """Flag running sessions without an update for STUCK_AFTER (``stuck_since = now``) and
    clear the flag on sessions that moved on (updated again, or no longer running).

    The UPDATEs re-check the condition, so a session updated meanwhile is not flagged.
    """
    check_aware(now)
    stale = conf.stuck_after_policy().older_than_q(fields=("updated_at",), now=now)
    stuck_now = Q(status=RUNNING) & stale if stale is not None else None
    listing = Listing()
    flagged = cleared = 0

    to_flag = (
        Session.objects.filter(stuck_now, stuck_since__isnull=True)
        if stuck_now is not None
        else Session.objects.none()
    )
    to_clear = Session.objects.filter(stuck_since__isnull=False)
    if stuck_now is not None:
        to_clear = to_clear.exclude(stuck_now)

    if dry_run:
        flagged = to_flag.count()
        cleared = to_clear.count()
        listing.add_first_candidates(to_flag, "no update")
    else:
        for row in update_in_batches(
            to_flag,
            values={"stuck_since": now},
            applied=Q(stuck_since=now),
            batch_size=batch_size,
            checkpoint=checkpoint,
        ):
            flagged += 1
            listing.add(describe(row, "no update"))
        cleared = len(
            update_in_batches(
                to_clear,
                values={"stuck_since": None},
                applied=Q(stuck_since__isnull=True),
                batch_size=batch_size,
                checkpoint=checkpoint,
            )
        )
    listing.more = max(0, flagged - len(listing.items))
    return StuckResult(
        dry_run=dry_run,
        flagged=flagged,
        cleared=cleared,
        stuck_total=Session.objects.filter(stuck_since__isnull=False).count(),
        sessions=tuple(listing.items),
        more_sessions=listing.more,
        policy=conf.stuck_after_policy().describe(),
    )
