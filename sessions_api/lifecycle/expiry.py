"""expire_sessions: mark sessions expired by their own expiry or by the idle policy.

The batch machinery and the race-safety rule are in :mod:`sessions_api.lifecycle.batches`.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Q

from sessions_api import conf, db
from sessions_api.domain import SessionStatus
from sessions_api.lifecycle.batches import (
    FIRST_BATCH,
    LOCK_TARGET_S,
    AdaptiveBatch,
    Checkpoint,
    ListedRun,
    Listing,
    candidate_batches,
    check_aware,
    no_checkpoint,
    recheck,
    rest_ratio_for_database,
)
from sessions_api.models import Session

EXPIRED = SessionStatus.EXPIRED.value


@dataclass(frozen=True)
class ExpireResult(ListedRun):
    expired_own_expiry: int
    expired_idle: int
    skipped_changed: int

    listed_as = ("would_expire", "expired")

    def counts(self) -> dict[str, int]:
        return {
            "expired": self.expired_own_expiry + self.expired_idle,
            "expired_own_expiry": self.expired_own_expiry,
            "expired_idle": self.expired_idle,
            "skipped_changed": self.skipped_changed,
        }


def expiry_conditions(*, now: datetime) -> dict[str, Q]:
    """Which sessions are due to expire, by reason. Never on hold, never already expired.

    ``own_expiry``: the document's own expiry has passed (Picoflow v1: saveOn + expireAfter).
    ``idle``: no expiry of its own, an open status, and no update for the idle policy's time
    (per agent, per format, default).
    """
    base = Q(on_hold=False) & ~Q(status=EXPIRED)
    conditions = {"own_expiry": base & Q(expires_at__isnull=False, expires_at__lte=now)}
    idle = conf.expiry_idle_policy().older_than_q(fields=("updated_at",), now=now)
    statuses = conf.expiry_idle_statuses()
    if idle is not None and statuses:
        conditions["idle"] = (
            base & Q(expires_at__isnull=True, status__in=[s for s in statuses if s != EXPIRED])
        ) & idle
    return conditions


#: Sessions expired by their own expiry keep ``expires_at`` until purged, so the batches of that
#: reason walk its index forward from where the last batch ended instead of stepping over all
#: the sessions already expired (this run's and those awaiting purge) every time.
_EXPIRY_SEEK = {"own_expiry": "expires_at"}


def expire_sessions(
    *,
    now: datetime,
    batch_size: int = 500,
    lock_target_ms: float = LOCK_TARGET_S * 1000,
    dry_run: bool = False,
    checkpoint: Checkpoint = no_checkpoint,
) -> ExpireResult:
    """Mark due sessions expired, keeping their previous status in ``status_before_expiry``.

    Each batch is one UPDATE per distinct ``latest_version`` in it, guarded by the full expiry
    condition plus the ``latest_version`` that was read: a session updated in between keeps
    its status (counted as ``skipped_changed``) and is looked at again next run, as is one
    whose own expiry, already past, arrives during the run behind the batches' position.

    ``batch_size`` is the largest batch (the first is at most FIRST_BATCH); a batch whose
    lock ran longer than ``lock_target_ms`` makes the next ones smaller, and they grow back
    as they run faster (:class:`AdaptiveBatch`).
    """
    check_aware(now)
    listing = Listing()
    expired = {"own_expiry": 0, "idle": 0}
    skipped = 0
    batch = AdaptiveBatch(
        size=min(batch_size, FIRST_BATCH),
        maximum=batch_size,
        target_s=lock_target_ms / 1000,
        rest_ratio=rest_ratio_for_database(),
    )
    with db.checkpoint_between_batches() as after_batch:
        for reason, condition in expiry_conditions(now=now).items():
            candidates = Session.objects.filter(condition)
            if dry_run:
                expired[reason] = candidates.count()
                listing.add_first_candidates(candidates, reason)
                listing.more = max(0, sum(expired.values()) - len(listing.items))
                continue
            changed: set[uuid.UUID] = set()
            for rows in candidate_batches(
                candidates, batch=batch, skip=changed, seek=_EXPIRY_SEEK.get(reason)
            ):
                done, hold_s = _expire_batch(rows=rows, condition=condition, now=now)
                batch.observe(rows=len(rows), seconds=hold_s)
                listing.add_batch(rows, done=done, reason=reason, changed=changed)
                expired[reason] += len(done)
                skipped += len(rows) - len(done)
                after_batch()
                checkpoint()
                if batch.rest() > 0:
                    time.sleep(batch.rest())  # a queued writer's turn at the lock
    return ExpireResult(
        dry_run=dry_run,
        expired_own_expiry=expired["own_expiry"],
        expired_idle=expired["idle"],
        skipped_changed=skipped,
        sessions=tuple(listing.items),
        more_sessions=listing.more,
        policy={
            "idle": conf.expiry_idle_policy().describe(),
            "idle_statuses": list(conf.expiry_idle_statuses()),
            "batches": batch.describe(),
        },
    )


def _expire_batch(
    *, rows: list[dict[str, Any]], condition: Q, now: datetime
) -> tuple[set[uuid.UUID], float]:
    """Expire the rows that still match ``condition`` at the version that was read; returns
    the ids that were expired and how long the transaction held the write lock (from after
    BEGIN, which on SQLite may first wait for another writer's commit)."""
    by_version: dict[int, list[uuid.UUID]] = defaultdict(list)
    for row in rows:
        by_version[row["latest_version"]].append(row["id"])
    with transaction.atomic():
        started = time.perf_counter()
        for version, ids in by_version.items():
            Session.objects.filter(recheck(condition), id__in=ids, latest_version=version).update(
                status_before_expiry=F("status"), status=EXPIRED, expired_at=now
            )
        done = set(
            Session.objects.filter(
                recheck(Q(status=EXPIRED, expired_at=now)), id__in=[r["id"] for r in rows]
            ).values_list("id", flat=True)
        )
    return done, time.perf_counter() - started
