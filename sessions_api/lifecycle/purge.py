"""purge_sessions: delete sessions past their grace or retention, with everything they own.

The batch machinery and the race-safety rule are in :mod:`sessions_api.lifecycle.batches`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q

from sessions_api import conf, db
from sessions_api.analytics import rollups
from sessions_api.domain import SessionStatus
from sessions_api.lifecycle.batches import (
    FIRST_BATCH,
    LOCK_TARGET_S,
    ROW_FIELDS,
    AdaptiveBatch,
    Checkpoint,
    ListedRun,
    Listing,
    check_aware,
    no_checkpoint,
    recheck,
    rest_ratio_for_database,
)
from sessions_api.models import DocumentVersion, Session
from sessions_api.storage import DocumentStore, get_document_store

EXPIRED = SessionStatus.EXPIRED.value


@dataclass(frozen=True)
class PurgeResult(ListedRun):
    purged_expired: int
    purged_retention: int
    versions_deleted: int
    bodies_deleted: int
    skipped_changed: int
    remaining: int

    listed_as = ("would_purge", "purged")

    def counts(self) -> dict[str, int]:
        return {
            "purged": self.purged_expired + self.purged_retention,
            "purged_expired": self.purged_expired,
            "purged_retention": self.purged_retention,
            "versions_deleted": self.versions_deleted,
            "bodies_deleted": self.bodies_deleted,
            "skipped_changed": self.skipped_changed,
            "remaining": self.remaining,
        }


def purge_conditions(*, now: datetime) -> dict[str, Q]:
    """What purge deletes, by reason; sessions on hold never go.

    ``expired_grace``: expired longer than PURGE_EXPIRED_GRACE ago.
    ``retention``: neither active (``updated_at``) nor received (``last_received_at``) within
    the retention policy's time, so a freshly imported old conversation is not deleted on
    arrival. Retention is off unless configured.
    """
    conditions: dict[str, Q] = {}
    grace = conf.purge_expired_grace()
    if grace is not None:
        conditions["expired_grace"] = Q(
            on_hold=False, status=EXPIRED, expired_at__isnull=False, expired_at__lte=now - grace
        )
    retention = conf.purge_retention_policy().older_than_q(
        fields=("updated_at", "last_received_at"), now=now
    )
    if retention is not None:
        condition = Q(on_hold=False) & retention
        if "expired_grace" in conditions:
            condition &= ~conditions["expired_grace"]
        conditions["retention"] = condition
    return conditions


def purge_sessions(
    *,
    now: datetime,
    batch_size: int = 200,
    limit: int | None = None,
    pause_s: float = 0.0,
    lock_target_ms: float = LOCK_TARGET_S * 1000,
    dry_run: bool = False,
    store: DocumentStore | None = None,
    checkpoint: Checkpoint = no_checkpoint,
) -> PurgeResult:
    """Delete sessions past their grace or retention, each with its versions, bodies and
    derived rows, one short transaction per batch.

    Inside each transaction the batch is locked and re-selected with the full condition, so a
    session that received a new version (and so is no longer expired or old) survives. With a
    store outside the database transaction (Mongo) bodies are deleted after the commit: a crash
    in between leaves orphan bodies, which ``reconcile_store`` removes, never an index row
    whose body is gone. ``pause_s`` yields to ingestion between batches (at least; on SQLite
    each batch is followed by a pause as long as its lock); ``limit`` bounds one run (the rest
    is counted in ``remaining`` and goes next run). ``batch_size`` is the largest batch (the
    first is at most FIRST_BATCH); a batch whose lock ran longer than ``lock_target_ms`` makes
    the next ones smaller, and they grow back as they run faster (:class:`AdaptiveBatch`).
    """
    check_aware(now)
    store = store or get_document_store()
    listing = Listing()
    purged = {"expired_grace": 0, "retention": 0}
    versions_deleted = bodies_deleted = skipped = remaining = 0
    conditions = purge_conditions(now=now)
    batch = AdaptiveBatch(
        size=min(batch_size, FIRST_BATCH),
        maximum=batch_size,
        target_s=lock_target_ms / 1000,
        rest_ratio=rest_ratio_for_database(),
    )
    with db.checkpoint_between_batches() as after_batch:
        for reason, condition in conditions.items():
            candidates = Session.objects.filter(condition)
            if dry_run:
                purged[reason] = candidates.count()
                versions_deleted += DocumentVersion.objects.filter(
                    session__in=candidates.values("id")
                ).count()
                listing.add_first_candidates(candidates, reason)
                continue
            changed: set[uuid.UUID] = set()
            while True:
                done_so_far = sum(purged.values())
                if limit is not None and done_so_far >= limit:
                    remaining += candidates.exclude(id__in=changed).count()
                    break
                size = batch.size if limit is None else min(batch.size, limit - done_so_far)
                rows = list(
                    candidates.exclude(id__in=changed).order_by().values(*ROW_FIELDS)[:size]
                )
                if not rows:
                    break
                outcome = _purge_batch(rows=rows, condition=condition, store=store)
                batch.observe(rows=len(rows), seconds=outcome.hold_s)
                listing.add_batch(rows, done=outcome.deleted, reason=reason, changed=changed)
                purged[reason] += len(outcome.deleted)
                skipped += len(rows) - len(outcome.deleted)
                versions_deleted += outcome.versions
                bodies_deleted += outcome.bodies
                after_batch()
                checkpoint()
                rest = max(pause_s, batch.rest())
                if rest > 0:
                    time.sleep(rest)  # a queued writer's turn at the lock
    listing.more = max(0, sum(purged.values()) - len(listing.items))
    return PurgeResult(
        dry_run=dry_run,
        purged_expired=purged["expired_grace"],
        purged_retention=purged["retention"],
        versions_deleted=versions_deleted,
        bodies_deleted=bodies_deleted,
        skipped_changed=skipped,
        remaining=remaining,
        sessions=tuple(listing.items),
        more_sessions=listing.more,
        policy={
            "expired_grace": conf.describe_policies()["purge_expired_grace"],
            "retention": conf.purge_retention_policy().describe(),
            "batches": batch.describe(),
        },
    )


@dataclass(frozen=True)
class _BatchOutcome:
    deleted: frozenset[uuid.UUID]
    versions: int
    bodies: int
    #: How long the batch's transaction ran (what it held the lock for).
    hold_s: float = 0.0


def _purge_batch(
    *, rows: list[dict[str, Any]], condition: Q, store: DocumentStore
) -> _BatchOutcome:
    ids = [row["id"] for row in rows]
    # Read before the transaction: which analytics hours these sessions fed, so the next
    # rollup recomputes them without the deleted sessions.
    hours = rollups.hours_touched_by(session_ids=ids)
    bodies = 0
    with transaction.atomic():
        # Timed from when the write lock is held: on SQLite BEGIN IMMEDIATE first waits for
        # an ingest request's commit, which says nothing about what this batch's rows cost.
        started = time.perf_counter()
        locked = list(
            Session.objects.select_for_update()
            .filter(recheck(condition), id__in=ids)
            .values_list("id", flat=True)
        )
        if not locked:
            return _BatchOutcome(
                deleted=frozenset(), versions=0, bodies=0, hold_s=time.perf_counter() - started
            )
        if store.transactional_with_index:
            bodies = _delete_session_bodies(store, locked)
        # Versions, tool calls, errors, usage and checkpoints go with their sessions; audit
        # entries and branches keep their row with the link cleared (models.py's on_delete).
        versions = db.delete_by_ids(Session, locked).get(DocumentVersion._meta.label, 0)
        rollups.mark_hours_dirty(hours=hours)
    hold_s = time.perf_counter() - started
    if not store.transactional_with_index:
        bodies = _delete_session_bodies(store, locked)
    return _BatchOutcome(deleted=frozenset(locked), versions=versions, bodies=bodies, hold_s=hold_s)


def _delete_session_bodies(store: DocumentStore, session_ids: list[uuid.UUID]) -> int:
    """Every body of these sessions, in one call for the batch (one statement with the orm
    store)."""
    return store.delete_sessions(session_ids=[str(session_id) for session_id in session_ids])
