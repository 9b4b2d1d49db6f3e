"""Maintenance services behind the periodic jobs: expire, purge, prune, stuck, reconcile.

Each function is keyword-only, takes ``now`` (timezone-aware), works in bounded batches with a
short transaction per batch (PERFORMANCE B7: no lock held for long, ingestion keeps its
latency), is safe to run twice, and returns a frozen result whose ``counts()`` and
``details()`` the run recorder stores in JobRun.

Race safety (RELIABILITY I5): candidates are selected, then acted on by a statement that
re-checks the whole condition in the database. A session that was appended to after it was
selected no longer matches (its ``updated_at``, ``expires_at`` or ``latest_version`` moved on),
so it is neither expired nor deleted. The re-check goes in by primary key only
(:func:`_recheck`), so a batch costs its own size however many rows match the condition.

``checkpoint`` is called between batches; the run recorder passes one that raises when the
job's lock lease was lost, so a run that no longer owns its job stops at a batch boundary.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import router, transaction
from django.db.models import (
    CASCADE,
    DO_NOTHING,
    SET_NULL,
    BooleanField,
    Case,
    Count,
    F,
    ForeignKey,
    Q,
    QuerySet,
    Value,
    When,
    signals,
)
from django.db.models.deletion import Collector, get_candidate_relations_to_delete

from sessions_api import conf, db
from sessions_api.analytics import rollups
from sessions_api.domain import SessionStatus
from sessions_api.models import Checkpoint as PinnedCheckpoint
from sessions_api.models import DocumentBody, DocumentVersion, Session
from sessions_api.storage import DocumentStore, get_document_store

Checkpoint = Callable[[], None]

#: At most this many sessions are listed in a run's details (counts are always exact).
MAX_LISTED = 200
EXPIRED = SessionStatus.EXPIRED.value
RUNNING = SessionStatus.RUNNING.value


def _no_checkpoint() -> None:
    return None


@dataclass
class _Listing:
    """A capped list of what a run touched, plus how many more there were."""

    items: list[dict[str, Any]] = field(default_factory=list)
    more: int = 0

    def add(self, item: dict[str, Any]) -> None:
        if len(self.items) < MAX_LISTED:
            self.items.append(item)
        else:
            self.more += 1


def _describe(row: dict[str, Any], reason: str) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "external_id": row["external_id"][:120],
        "format": row["format"],
        "agent": row["agent"][:80],
        "reason": reason,
    }


_ROW_FIELDS = ("id", "external_id", "format", "agent", "status", "latest_version")


def _recheck(condition: Q) -> Case:
    """``condition`` as one opaque term, for a statement that acts on ids it was handed.

    The planner cannot use an index through a CASE, so the ``id IN (...)`` beside it (the
    primary key) is the only way in and a batch costs its own size. Written out plainly,
    ``status = 'expired' AND id IN (...)`` made SQLite without statistics (Django never runs
    ANALYZE) walk the status or expiry index over every expired row, in each batch, under the
    write lock (docs/BENCHMARKS.md finding 7); with statistics it would depend on how fresh
    they are. Same rows either way: CASE WHEN c THEN true ELSE false END is true exactly
    where c is.
    """
    return Case(
        When(condition, then=Value(True)), default=Value(False), output_field=BooleanField()
    )


# --- expire_sessions --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpireResult:
    dry_run: bool
    expired_own_expiry: int
    expired_idle: int
    skipped_changed: int
    sessions: tuple[dict[str, Any], ...]
    more_sessions: int
    policy: dict[str, Any]

    def counts(self) -> dict[str, int]:
        return {
            "expired": self.expired_own_expiry + self.expired_idle,
            "expired_own_expiry": self.expired_own_expiry,
            "expired_idle": self.expired_idle,
            "skipped_changed": self.skipped_changed,
        }

    def details(self) -> dict[str, Any]:
        key = "would_expire" if self.dry_run else "expired"
        return {key: list(self.sessions), "more": self.more_sessions, "policy": self.policy}


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
    dry_run: bool = False,
    checkpoint: Checkpoint = _no_checkpoint,
) -> ExpireResult:
    """Mark due sessions expired, keeping their previous status in ``status_before_expiry``.

    Each batch is one UPDATE per distinct ``latest_version`` in it, guarded by the full expiry
    condition plus the ``latest_version`` that was read: a session updated in between keeps
    its status (counted as ``skipped_changed``) and is looked at again next run, as is one
    whose own expiry, already past, arrives during the run behind the batches' position.
    """
    _check_aware(now)
    listing = _Listing()
    expired = {"own_expiry": 0, "idle": 0}
    skipped = 0
    with db.checkpoint_between_batches() as after_batch:
        for reason, condition in expiry_conditions(now=now).items():
            candidates = Session.objects.filter(condition)
            if dry_run:
                expired[reason] = candidates.count()
                for row in candidates.order_by("id").values(*_ROW_FIELDS)[:MAX_LISTED]:
                    listing.add(_describe(row, reason))
                listing.more = max(0, sum(expired.values()) - len(listing.items))
                continue
            changed: set[uuid.UUID] = set()
            for rows in _batches(
                candidates, batch_size=batch_size, skip=changed, seek=_EXPIRY_SEEK.get(reason)
            ):
                done = _expire_batch(rows=rows, condition=condition, now=now)
                for row in rows:
                    if row["id"] in done:
                        listing.add(_describe(row, reason))
                    else:
                        changed.add(row["id"])
                expired[reason] += len(done)
                skipped += len(rows) - len(done)
                after_batch()
                checkpoint()
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
        },
    )


def _batches(
    candidates: QuerySet[Session],
    *,
    batch_size: int,
    skip: set[uuid.UUID],
    seek: str | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Batches of candidate rows, leaving out ``skip`` (the caller adds to it as it goes).

    With ``seek`` (an indexed column) in that column's order, each batch starting where the
    previous one ended, for candidates that stay in the index after being acted on.
    """
    seek_from: Any = None
    while True:
        page = candidates.exclude(id__in=skip)
        if seek is None:
            page = page.order_by()
        else:
            page = page.order_by(seek)
            if seek_from is not None:
                page = page.filter(**{f"{seek}__gte": seek_from})
        rows = list(page.values(*_ROW_FIELDS, *([seek] if seek else []))[:batch_size])
        if not rows:
            return
        if seek is not None:
            seek_from = rows[-1][seek]
        yield rows


def _expire_batch(*, rows: list[dict[str, Any]], condition: Q, now: datetime) -> set[uuid.UUID]:
    """Expire the rows that still match ``condition`` at the version that was read; returns
    the ids that were expired."""
    by_version: dict[int, list[uuid.UUID]] = defaultdict(list)
    for row in rows:
        by_version[row["latest_version"]].append(row["id"])
    with transaction.atomic():
        for version, ids in by_version.items():
            Session.objects.filter(_recheck(condition), id__in=ids, latest_version=version).update(
                status_before_expiry=F("status"), status=EXPIRED, expired_at=now
            )
        return set(
            Session.objects.filter(
                _recheck(Q(status=EXPIRED, expired_at=now)), id__in=[r["id"] for r in rows]
            ).values_list("id", flat=True)
        )


# --- purge_sessions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    dry_run: bool
    purged_expired: int
    purged_retention: int
    versions_deleted: int
    bodies_deleted: int
    skipped_changed: int
    remaining: int
    sessions: tuple[dict[str, Any], ...]
    more_sessions: int
    policy: dict[str, Any]

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

    def details(self) -> dict[str, Any]:
        key = "would_purge" if self.dry_run else "purged"
        return {key: list(self.sessions), "more": self.more_sessions, "policy": self.policy}


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
    dry_run: bool = False,
    store: DocumentStore | None = None,
    checkpoint: Checkpoint = _no_checkpoint,
) -> PurgeResult:
    """Delete sessions past their grace or retention, each with its versions, bodies and
    derived rows, one short transaction per batch.

    Inside each transaction the batch is locked and re-selected with the full condition, so a
    session that received a new version (and so is no longer expired or old) survives. With a
    store outside the database transaction (Mongo) bodies are deleted after the commit: a crash
    in between leaves orphan bodies, which ``reconcile_store`` removes, never an index row
    whose body is gone. ``pause_s`` yields to ingestion between batches; ``limit`` bounds one
    run (the rest is counted in ``remaining`` and goes next run).
    """
    _check_aware(now)
    store = store or get_document_store()
    listing = _Listing()
    purged = {"expired_grace": 0, "retention": 0}
    versions_deleted = bodies_deleted = skipped = remaining = 0
    conditions = purge_conditions(now=now)
    with db.checkpoint_between_batches() as after_batch:
        for reason, condition in conditions.items():
            candidates = Session.objects.filter(condition)
            if dry_run:
                purged[reason] = candidates.count()
                versions_deleted += DocumentVersion.objects.filter(
                    session__in=candidates.values("id")
                ).count()
                for row in candidates.order_by("id").values(*_ROW_FIELDS)[:MAX_LISTED]:
                    listing.add(_describe(row, reason))
                continue
            changed: set[uuid.UUID] = set()
            while True:
                done_so_far = sum(purged.values())
                if limit is not None and done_so_far >= limit:
                    remaining += candidates.exclude(id__in=changed).count()
                    break
                size = batch_size if limit is None else min(batch_size, limit - done_so_far)
                rows = list(
                    candidates.exclude(id__in=changed).order_by().values(*_ROW_FIELDS)[:size]
                )
                if not rows:
                    break
                outcome = _purge_batch(rows=rows, condition=condition, store=store)
                for row in rows:
                    if row["id"] in outcome.deleted:
                        listing.add(_describe(row, reason))
                    else:
                        changed.add(row["id"])
                purged[reason] += len(outcome.deleted)
                skipped += len(rows) - len(outcome.deleted)
                versions_deleted += outcome.versions
                bodies_deleted += outcome.bodies
                after_batch()
                checkpoint()
                if pause_s > 0:
                    time.sleep(pause_s)
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
        },
    )


@dataclass(frozen=True)
class _BatchOutcome:
    deleted: frozenset[uuid.UUID]
    versions: int
    bodies: int


def _purge_batch(
    *, rows: list[dict[str, Any]], condition: Q, store: DocumentStore
) -> _BatchOutcome:
    ids = [row["id"] for row in rows]
    # Read before the transaction: which analytics hours these sessions fed, so the next
    # rollup recomputes them without the deleted sessions.
    hours = rollups.hours_touched_by(session_ids=ids)
    bodies = 0
    with transaction.atomic():
        locked = list(
            Session.objects.select_for_update()
            .filter(_recheck(condition), id__in=ids)
            .values_list("id", flat=True)
        )
        if not locked:
            return _BatchOutcome(deleted=frozenset(), versions=0, bodies=0)
        if store.transactional_with_index:
            bodies = _delete_session_bodies(store, locked)
        versions = _delete_sessions(locked)
        rollups.mark_hours_dirty(hours=hours)
    if not store.transactional_with_index:
        bodies = _delete_session_bodies(store, locked)
    return _BatchOutcome(deleted=frozenset(locked), versions=versions, bodies=bodies)


def _delete_session_bodies(store: DocumentStore, session_ids: list[uuid.UUID]) -> int:
    """Delete every body of these sessions: with the orm store in one statement for the
    batch (the store contract deletes one session at a time, a statement each)."""
    keys = [str(session_id) for session_id in session_ids]
    if isinstance(store, _orm_store_class()):
        deleted, _ = DocumentBody.objects.filter(session_id__in=keys).delete()
        return deleted
    return sum(store.delete_session(session_id=key) for key in keys)


def _delete_sessions(session_ids: list[uuid.UUID]) -> int:
    """Delete these sessions, applying each relation's ``on_delete`` from models.py with one
    statement per related table; returns how many DocumentVersion rows went.

    The outcome of ``Session.objects.filter(id__in=...).delete()`` without its collector, which
    first loads every session row into Python: cascaded rows (versions, tool calls, errors,
    usage, checkpoints) are deleted by session id and SET_NULL links (audit entries, branches)
    cleared the same way. When a relation needs more than that (PROTECT, a delete signal
    receiver, a cascade that cascades further) Django's collector does the whole batch.
    """
    using = router.db_for_write(Session)
    steps = _direct_delete_steps(using)
    if steps is None:
        _, per_model = Session.objects.filter(id__in=session_ids).delete()
        return per_model.get(DocumentVersion._meta.label, 0)
    versions = 0
    for foreign_key, action in steps:
        related = foreign_key.model._base_manager.using(using).filter(
            **{f"{foreign_key.name}__in": session_ids}
        )
        if action is SET_NULL:
            related.update(**{foreign_key.name: None})
            continue
        deleted, _ = related.delete()  # fast-deletable (checked): one DELETE statement
        if foreign_key.model is DocumentVersion:
            versions += deleted
    # Nothing refers to these rows any more: delete them without collecting them again.
    Session._base_manager.using(using).filter(id__in=session_ids)._raw_delete(using)
    return versions


def _direct_delete_steps(using: str) -> list[tuple[ForeignKey, Any]] | None:
    """(foreign key to Session, CASCADE or SET_NULL) for every relation, or None when one of
    them (or Session itself) needs Django's collector to be deleted faithfully."""
    if _has_delete_signals(Session):
        return None
    collector = Collector(using=using)
    steps: list[tuple[ForeignKey, Any]] = []
    for relation in get_candidate_relations_to_delete(Session._meta):
        foreign_key = relation.field
        on_delete = foreign_key.remote_field.on_delete
        if on_delete is DO_NOTHING:
            continue
        if on_delete is SET_NULL:
            steps.append((foreign_key, SET_NULL))  # the collector sends no signal for these either
        elif on_delete is CASCADE and collector.can_fast_delete(
            foreign_key.model._base_manager.all(), from_field=foreign_key
        ):
            steps.append((foreign_key, CASCADE))
        else:
            return None
    return steps


def _has_delete_signals(model: type) -> bool:
    return signals.pre_delete.has_listeners(model) or signals.post_delete.has_listeners(model)


# --- prune_versions ---------------------------------------------------------------------------


def pinned_checkpoint_versions(*, session_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, set[int]]:
    """Versions that pruning must keep whatever their age: pinned checkpoints (issue 6), as
    {session id: {version numbers}}."""
    pins: dict[uuid.UUID, set[int]] = defaultdict(set)
    for session_id, version in PinnedCheckpoint.objects.filter(
        session_id__in=list(session_ids)
    ).values_list("session_id", "version"):
        pins[session_id].add(version)
    return dict(pins)


@dataclass(frozen=True)
class PruneResult:
    dry_run: bool
    keep: int
    sessions_pruned: int
    versions_deleted: int
    bodies_deleted: int
    sessions: tuple[dict[str, Any], ...]
    more_sessions: int

    def counts(self) -> dict[str, int]:
        return {
            "sessions_pruned": self.sessions_pruned,
            "versions_deleted": self.versions_deleted,
            "bodies_deleted": self.bodies_deleted,
        }

    def details(self) -> dict[str, Any]:
        key = "would_prune" if self.dry_run else "pruned"
        return {key: list(self.sessions), "more": self.more_sessions, "keep": self.keep}


def prune_versions(
    *,
    now: datetime,
    keep: int | None = None,
    batch_size: int = 200,
    dry_run: bool = False,
    store: DocumentStore | None = None,
    checkpoint: Checkpoint = _no_checkpoint,
) -> PruneResult:
    """Keep the newest ``keep`` versions of each session (PRUNE_KEEP_VERSIONS) plus every
    pinned checkpoint; delete older version rows and their bodies.

    Per batch the sessions are locked, so an ingest adding a version waits and "the newest N"
    is read under the lock. Bodies go with the index rows (orm store) or after the commit
    (Mongo: orphans at worst, which reconcile removes).
    """
    _check_aware(now)
    keep = keep if keep is not None else conf.prune_keep_versions()
    if keep < 1:
        raise ValueError("keep must be at least 1: the latest version always stays")
    store = store or get_document_store()
    listing = _Listing()
    sessions_pruned = versions_deleted = bodies_deleted = 0
    over = (
        DocumentVersion.objects.order_by()
        .values("session_id")
        .annotate(n=Count("id"))
        .filter(n__gt=keep)
    )
    last: uuid.UUID | None = None
    while True:
        page = over.filter(session_id__gt=last) if last is not None else over
        session_ids = list(
            page.order_by("session_id").values_list("session_id", flat=True)[:batch_size]
        )
        if not session_ids:
            break
        last = session_ids[-1]
        pins = pinned_checkpoint_versions(session_ids=session_ids)
        with transaction.atomic():
            if not dry_run:
                list(
                    Session.objects.select_for_update()
                    .filter(id__in=session_ids)
                    .values_list("id", flat=True)
                )
            numbers: dict[uuid.UUID, list[int]] = defaultdict(list)
            for session_id, number in (
                DocumentVersion.objects.filter(session_id__in=session_ids)
                .order_by("session_id", "-number")
                .values_list("session_id", "number")
            ):
                numbers[session_id].append(number)
            doomed = {
                session_id: [n for n in found[keep:] if n not in pins.get(session_id, set())]
                for session_id, found in numbers.items()
            }
            doomed = {session_id: drop for session_id, drop in doomed.items() if drop}
            if not dry_run and doomed:
                condition = Q()
                for session_id, drop in doomed.items():
                    condition |= Q(session_id=session_id, number__in=drop)
                DocumentVersion.objects.filter(condition).delete()
                if store.transactional_with_index:
                    bodies_deleted += _delete_bodies(store, doomed)
        if not dry_run and doomed and not store.transactional_with_index:
            bodies_deleted += _delete_bodies(store, doomed)
        for session_id, drop in doomed.items():
            sessions_pruned += 1
            versions_deleted += len(drop)
            listing.add({"id": str(session_id), "versions": sorted(drop)[:50], "count": len(drop)})
        checkpoint()
    return PruneResult(
        dry_run=dry_run,
        keep=keep,
        sessions_pruned=sessions_pruned,
        versions_deleted=versions_deleted,
        bodies_deleted=bodies_deleted,
        sessions=tuple(listing.items),
        more_sessions=listing.more,
    )


def _delete_bodies(store: DocumentStore, doomed: dict[uuid.UUID, list[int]]) -> int:
    return sum(
        store.delete_versions(session_id=str(session_id), versions=drop)
        for session_id, drop in doomed.items()
    )


# --- detect_stuck_sessions --------------------------------------------------------------------


@dataclass(frozen=True)
class StuckResult:
    dry_run: bool
    flagged: int
    cleared: int
    stuck_total: int
    sessions: tuple[dict[str, Any], ...]
    more_sessions: int
    policy: dict[str, Any]

    def counts(self) -> dict[str, int]:
        return {"flagged": self.flagged, "cleared": self.cleared, "stuck_total": self.stuck_total}

    def details(self) -> dict[str, Any]:
        key = "would_flag" if self.dry_run else "flagged"
        return {key: list(self.sessions), "more": self.more_sessions, "policy": self.policy}


def detect_stuck_sessions(
    *,
    now: datetime,
    batch_size: int = 1000,
    dry_run: bool = False,
    checkpoint: Checkpoint = _no_checkpoint,
) -> StuckResult:
    """Flag running sessions without an update for STUCK_AFTER (``stuck_since = now``) and
    clear the flag on sessions that moved on (updated again, or no longer running).

    The UPDATEs re-check the condition, so a session updated meanwhile is not flagged.
    """
    _check_aware(now)
    stale = conf.stuck_after_policy().older_than_q(fields=("updated_at",), now=now)
    stuck_now = Q(status=RUNNING) & stale if stale is not None else None
    listing = _Listing()
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
        for row in to_flag.order_by("id").values(*_ROW_FIELDS)[:MAX_LISTED]:
            listing.add(_describe(row, "no update"))
    else:
        for row in _update_in_batches(
            to_flag, {"stuck_since": now}, Q(stuck_since=now), batch_size, checkpoint
        ):
            flagged += 1
            listing.add(_describe(row, "no update"))
        cleared = len(
            _update_in_batches(
                to_clear, {"stuck_since": None}, Q(stuck_since__isnull=True), batch_size, checkpoint
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


def _update_in_batches(
    queryset: Any, values: dict[str, Any], applied: Q, batch_size: int, checkpoint: Checkpoint
) -> list[dict[str, Any]]:
    """UPDATE ``queryset`` (its condition re-checked by the statement) a batch at a time;
    returns the rows the update applied to (``applied`` tells them apart afterwards)."""
    done_rows: list[dict[str, Any]] = []
    skip: set[uuid.UUID] = set()
    while True:
        rows = list(queryset.exclude(id__in=skip).order_by().values(*_ROW_FIELDS)[:batch_size])
        if not rows:
            return done_rows
        ids = [row["id"] for row in rows]
        with transaction.atomic():
            queryset.filter(id__in=ids).update(**values)
            done = set(Session.objects.filter(applied, id__in=ids).values_list("id", flat=True))
        skip.update(set(ids) - done)
        done_rows.extend(row for row in rows if row["id"] in done)
        checkpoint()


# --- reconcile_store --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconcileResult:
    dry_run: bool
    backend: str
    repairs: bool
    versions_checked: int
    missing_bodies: int
    sessions_marked: int
    bodies_checked: int
    orphan_bodies: int
    orphans_deleted: int
    orphans_too_recent: int
    missing: tuple[dict[str, Any], ...]
    orphans: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]

    def counts(self) -> dict[str, int]:
        return {
            "versions_checked": self.versions_checked,
            "missing_bodies": self.missing_bodies,
            "sessions_marked": self.sessions_marked,
            "bodies_checked": self.bodies_checked,
            "orphan_bodies": self.orphan_bodies,
            "orphans_deleted": self.orphans_deleted,
            "orphans_too_recent": self.orphans_too_recent,
        }

    def details(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "repairs": self.repairs,
            "missing": list(self.missing),
            "orphans": list(self.orphans),
            "notes": list(self.notes),
        }


BODY_MISSING_WARNING = "body_missing"


def reconcile_store(
    *,
    now: datetime,
    store: DocumentStore | None = None,
    batch_size: int = 500,
    orphan_min_age: timedelta | None = None,
    dry_run: bool = False,
    checkpoint: Checkpoint = _no_checkpoint,
) -> ReconcileResult:
    """Check the index against the stored bodies, both ways.

    - A version row whose body is missing is reported and, for a store outside the database
      transaction (Mongo), marked on its session with a ``body_missing`` warning.
    - A body without a version row (an ingest that crashed between writing the body and
      committing the index) is deleted once older than RECONCILE_ORPHAN_MIN_AGE, so an
      ingest in flight right now is never touched.

    With the orm store both live in one transaction, so it only verifies and reports.
    """
    _check_aware(now)
    store = store or get_document_store()
    inventory = _inventory_for(store)
    repairs = not store.transactional_with_index and not dry_run
    min_age = orphan_min_age if orphan_min_age is not None else conf.reconcile_orphan_min_age()
    notes: list[str] = []
    missing = _Listing()
    orphans = _Listing()

    # 1. index -> bodies
    versions_checked = missing_count = marked = 0
    last_id = 0
    while True:
        rows = list(
            DocumentVersion.objects.filter(id__gt=last_id)
            .order_by("id")
            .values_list("id", "session_id", "number")[:batch_size]
        )
        if not rows:
            break
        last_id = rows[-1][0]
        keys = [(str(session_id), number) for _, session_id, number in rows]
        found = inventory.existing(keys)
        lost: dict[str, list[int]] = defaultdict(list)
        for key in keys:
            if key not in found:
                lost[key[0]].append(key[1])
        versions_checked += len(rows)
        missing_count += sum(len(v) for v in lost.values())
        for session_id, numbers in lost.items():
            missing.add({"id": session_id, "versions": sorted(numbers)[:50]})
        if repairs and lost:
            marked += _mark_missing(lost, now=now)
        checkpoint()

    # 2. bodies -> index
    bodies_checked = orphan_count = deleted = too_recent = 0
    if inventory.can_scan:
        after: tuple[str, int] | None = None
        while True:
            page = inventory.scan(after=after, limit=batch_size)
            if not page:
                break
            after = (page[-1].session_id, page[-1].version)
            bodies_checked += len(page)
            indexed = _indexed_keys({item.session_id for item in page})
            doomed: dict[str, list[int]] = defaultdict(list)
            for item in page:
                if (item.session_id, item.version) in indexed:
                    continue
                orphan_count += 1
                old_enough = item.stored_at is not None and item.stored_at <= now - min_age
                orphans.add(
                    {
                        "id": item.session_id[:80],
                        "version": item.version,
                        "stored_at": item.stored_at.isoformat() if item.stored_at else None,
                    }
                )
                if old_enough:
                    doomed[item.session_id].append(item.version)
                else:
                    too_recent += 1
            if repairs:
                for session_id, numbers in doomed.items():
                    deleted += store.delete_versions(session_id=session_id, versions=numbers)
            checkpoint()
    else:
        notes.append("this store cannot list its bodies: orphan bodies were not looked for")
    if store.transactional_with_index:
        notes.append("bodies share the index's transaction: verified and reported, not repaired")
    return ReconcileResult(
        dry_run=dry_run,
        backend=type(store).__name__,
        repairs=repairs,
        versions_checked=versions_checked,
        missing_bodies=missing_count,
        sessions_marked=marked,
        bodies_checked=bodies_checked,
        orphan_bodies=orphan_count,
        orphans_deleted=deleted,
        orphans_too_recent=too_recent,
        missing=tuple(missing.items),
        orphans=tuple(orphans.items),
        notes=tuple(notes),
    )


def _indexed_keys(session_ids: set[str]) -> set[tuple[str, int]]:
    valid = []
    for session_id in session_ids:
        try:
            valid.append(uuid.UUID(session_id))
        except ValueError:
            continue  # not one of our ids at all: every body under it is an orphan
    return {
        (str(session_id), number)
        for session_id, number in DocumentVersion.objects.filter(session_id__in=valid).values_list(
            "session_id", "number"
        )
    }


def _mark_missing(lost: dict[str, list[int]], *, now: datetime) -> int:
    marked = 0
    with transaction.atomic():
        for row in Session.objects.select_for_update().filter(id__in=list(lost)):
            numbers = sorted(lost[str(row.id)])
            warnings = [w for w in (row.warnings or []) if w.get("code") != BODY_MISSING_WARNING]
            warnings.append(
                {
                    "code": BODY_MISSING_WARNING,
                    "message": f"reconcile {now:%Y-%m-%d %H:%M} UTC: no stored body for "
                    f"version(s) {', '.join(map(str, numbers[:20]))}",
                    "path": "",
                }
            )
            Session.objects.filter(id=row.id).update(warnings=warnings)
            marked += 1
    return marked


@dataclass(frozen=True)
class StoredBody:
    session_id: str
    version: int
    stored_at: datetime | None


class _BodyInventory:
    """Bulk questions about stored bodies that the DocumentStore contract does not ask
    (it works one session at a time): which of these keys exist, and every key in order."""

    can_scan = False

    def __init__(self, store: DocumentStore) -> None:
        self.store = store

    def existing(self, keys: list[tuple[str, int]]) -> set[tuple[str, int]]:
        found: set[tuple[str, int]] = set()
        for session_id in {key[0] for key in keys}:
            found.update((session_id, v) for v in self.store.list_versions(session_id=session_id))
        return found

    def scan(self, *, after: tuple[str, int] | None, limit: int) -> list[StoredBody]:
        return []


class _OrmInventory(_BodyInventory):
    can_scan = True

    def existing(self, keys: list[tuple[str, int]]) -> set[tuple[str, int]]:
        condition = Q()
        by_session: dict[str, list[int]] = defaultdict(list)
        for session_id, number in keys:
            by_session[session_id].append(number)
        for session_id, numbers in by_session.items():
            condition |= Q(session_id=session_id, version__in=numbers)
        return set(DocumentBody.objects.filter(condition).values_list("session_id", "version"))

    def scan(self, *, after: tuple[str, int] | None, limit: int) -> list[StoredBody]:
        rows = DocumentBody.objects.order_by("session_id", "version")
        if after is not None:
            rows = rows.filter(
                Q(session_id__gt=after[0]) | Q(session_id=after[0], version__gt=after[1])
            )
        return [
            StoredBody(session_id=s, version=v, stored_at=None)
            for s, v in rows.values_list("session_id", "version")[:limit]
        ]


class _MongoInventory(_BodyInventory):
    """Reads the Mongo store's collection directly: documents ``{_id: "<sid>:<v>",
    session_id, version, stored_at}`` (storage/mongo.py). Filters are built only from our own
    ids and ints."""

    can_scan = True

    def __init__(self, store: DocumentStore) -> None:
        super().__init__(store)
        # The store builds (and indexes) its collection lazily; this is its accessor.
        self.collection = store._ready_collection()  # type: ignore[attr-defined]

    def existing(self, keys: list[tuple[str, int]]) -> set[tuple[str, int]]:
        ids = [f"{session_id}:{number}" for session_id, number in keys]
        return {
            (doc["session_id"], int(doc["version"]))
            for doc in self.collection.find(
                {"_id": {"$in": ids}}, {"session_id": True, "version": True}
            )
        }

    def scan(self, *, after: tuple[str, int] | None, limit: int) -> list[StoredBody]:
        query: dict[str, Any] = {}
        if after is not None:
            query = {
                "$or": [
                    {"session_id": {"$gt": after[0]}},
                    {"session_id": after[0], "version": {"$gt": after[1]}},
                ]
            }
        cursor = (
            self.collection.find(query, {"session_id": True, "version": True, "stored_at": True})
            .sort([("session_id", 1), ("version", 1)])
            .limit(limit)
        )
        return [
            StoredBody(
                session_id=str(doc["session_id"]),
                version=int(doc["version"]),
                stored_at=_aware(doc.get("stored_at")),
            )
            for doc in cursor
        ]


def _inventory_for(store: DocumentStore) -> _BodyInventory:
    if isinstance(store, _orm_store_class()):
        return _OrmInventory(store)
    if hasattr(store, "_ready_collection"):
        return _MongoInventory(store)
    return _BodyInventory(store)


def _orm_store_class() -> type:
    from sessions_api.storage.orm import OrmDocumentStore

    return OrmDocumentStore


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _check_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
