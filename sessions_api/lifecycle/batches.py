"""What the lifecycle jobs share: bounded batches, the re-check, and what a run lists.

Each job is keyword-only, takes ``now`` (timezone-aware), works in bounded batches with a
short transaction per batch (no lock held for long, ingestion keeps its latency), is safe to
run twice, and returns a frozen result whose ``counts()`` and ``details()`` the run recorder
stores in JobRun.

Race safety: candidates are selected, then acted on by a statement that re-checks the whole
condition in the database. A session that was appended to after it was selected no longer
matches (its ``updated_at``, ``expires_at`` or ``latest_version`` moved on), so it is neither
expired nor deleted. The re-check goes in by primary key only (:func:`recheck`), so a batch
costs its own size however many rows match the condition.

``checkpoint`` is called between batches; the run recorder passes one that raises when the
job's lock lease was lost, so a run that no longer owns its job stops at a batch boundary.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from django.db import transaction
from django.db.models import BooleanField, Case, Q, QuerySet, Value, When

from sessions_api.models import Session

Checkpoint = Callable[[], None]

#: At most this many sessions are listed in a run's details (counts are always exact).
MAX_LISTED = 200

#: The columns a batch reads of each candidate session: enough to act on it and to list it.
ROW_FIELDS = ("id", "external_id", "format", "agent", "status", "latest_version")


#: What a batch's transaction aims to hold the writer for (SQLite's single write lock; on
#: PostgreSQL the batch's row locks and the snapshot VACUUM has to respect), in seconds.
#: A quarter of the 200 ms budget: a batch that runs slow (a busy disk, a long WAL) still ends
#: inside it.
LOCK_TARGET_S = 0.05
#: The jobs' first batch: what a row costs under the lock is unknown until a batch measured
#: it, and a first batch of the full size (200 purged sessions, 500 expired ones) was what
#: held the lock longest. Fast batches double from here up to the job's ``batch_size``.
FIRST_BATCH = 50


def no_checkpoint() -> None:
    return None


@dataclass
class AdaptiveBatch:
    """A batch size steered by measured lock time: after each batch, the next size is what
    that batch's time per row says fits in ``target_s``, at most double the last size (one
    fast batch proves little) and within [``minimum``, ``maximum``]. The first batch has the
    caller's size; what a row costs depends on the database, its indexes and what the row
    owns, so the size is measured rather than configured.

    ``rest()`` is the pause after a batch: as long as the batch held the lock times
    ``rest_ratio``, so a writer queued behind it (ingestion) gets in before the next one.
    """

    size: int
    target_s: float = LOCK_TARGET_S
    #: Below this a batch's own statements (the candidate read, the re-check, the WAL
    #: checkpoint) cost more than its rows, and on a CPU-starved machine every batch looks
    #: slow whatever its size: smaller batches would only add batches.
    minimum: int = 25
    maximum: int = 5000
    rest_ratio: float = 0.0
    last_hold_s: float = 0.0
    holds: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.minimum = min(self.minimum, self.maximum)
        self.size = max(self.minimum, min(self.maximum, self.size))

    def observe(self, *, rows: int, seconds: float) -> None:
        self.last_hold_s = seconds
        self.holds.append(seconds)
        if rows <= 0 or seconds <= 0:
            return
        fits = int(self.target_s * rows / seconds)
        self.size = max(self.minimum, min(self.maximum, 2 * self.size, fits))

    def rest(self) -> float:
        return self.last_hold_s * self.rest_ratio

    def describe(self) -> dict[str, Any]:
        """For a run's details: the target and how the holds came out."""
        ordered = sorted(self.holds)
        return {
            "lock_target_ms": round(self.target_s * 1000, 1),
            "batches": len(ordered),
            "lock_max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
            "lock_p50_ms": round(ordered[len(ordered) // 2] * 1000, 1) if ordered else None,
            "last_batch_size": self.size,
        }


def rest_ratio_for_database() -> float:
    """How long to pause after a batch, as a multiple of its lock time: on SQLite as long
    again (every writer shares one lock, and a waiting writer retries on its own sleeps, so
    it needs a gap to land in); elsewhere not at all (row locks leave ingestion alone)."""
    from django.db import connection

    return 1.0 if connection.vendor == "sqlite" else 0.0


def check_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


@dataclass
class Listing:
    """A capped list of what a run touched, plus how many more there were."""

    items: list[dict[str, Any]] = field(default_factory=list)
    more: int = 0

    def add(self, item: dict[str, Any]) -> None:
        if len(self.items) < MAX_LISTED:
            self.items.append(item)
        else:
            self.more += 1

    def add_batch(
        self,
        rows: list[dict[str, Any]],
        *,
        done: Collection[uuid.UUID],
        reason: str,
        changed: set[uuid.UUID],
    ) -> None:
        """List the rows of a batch the job acted on (``done``); the others changed after they
        were read and go into ``changed``, so the next batches leave them out."""
        for row in rows:
            if row["id"] in done:
                self.add(describe(row, reason))
            else:
                changed.add(row["id"])

    def add_first_candidates(self, candidates: QuerySet[Session], reason: str) -> None:
        """What a dry run lists: the first candidates in id order (the counts are exact)."""
        for row in candidates.order_by("id").values(*ROW_FIELDS)[:MAX_LISTED]:
            self.add(describe(row, reason))


@dataclass(frozen=True)
class ListedRun:
    """What expiry, stuck detection and purge report besides their counts: the sessions the
    run touched (or would touch, in a dry run), how many more, and the policy it applied."""

    dry_run: bool
    sessions: tuple[dict[str, Any], ...]
    more_sessions: int
    policy: dict[str, Any]

    #: The key of the listed sessions in ``details()``: (in a dry run, in a real run).
    listed_as: ClassVar[tuple[str, str]]

    def details(self) -> dict[str, Any]:
        key = self.listed_as[0] if self.dry_run else self.listed_as[1]
        return {key: list(self.sessions), "more": self.more_sessions, "policy": self.policy}


def describe(row: dict[str, Any], reason: str) -> dict[str, Any]:
    """One listed session of a run's details, from a row of :data:`ROW_FIELDS`."""
    return {
        "id": str(row["id"]),
        "external_id": row["external_id"][:120],
        "format": row["format"],
        "agent": row["agent"][:80],
        "reason": reason,
    }


def recheck(condition: Q) -> Case:
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


def candidate_batches(
    candidates: QuerySet[Session],
    *,
    batch: AdaptiveBatch,
    skip: set[uuid.UUID],
    seek: str | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Batches of candidate rows, leaving out ``skip`` (the caller adds to it as it goes),
    each as large as ``batch`` says when it is read.

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
        rows = list(page.values(*ROW_FIELDS, *([seek] if seek else []))[: batch.size])
        if not rows:
            return
        if seek is not None:
            seek_from = rows[-1][seek]
        yield rows


def update_in_batches(
    queryset: QuerySet[Session],
    *,
    values: dict[str, Any],
    applied: Q,
    batch_size: int,
    checkpoint: Checkpoint,
) -> list[dict[str, Any]]:
    """UPDATE ``queryset`` (its condition re-checked by the statement) a batch at a time;
    returns the rows the update applied to (``applied`` tells them apart afterwards)."""
    done_rows: list[dict[str, Any]] = []
    skip: set[uuid.UUID] = set()
    while True:
        rows = list(queryset.exclude(id__in=skip).order_by().values(*ROW_FIELDS)[:batch_size])
        if not rows:
            return done_rows
        ids = [row["id"] for row in rows]
        with transaction.atomic():
            queryset.filter(id__in=ids).update(**values)
            done = set(Session.objects.filter(applied, id__in=ids).values_list("id", flat=True))
        skip.update(set(ids) - done)
        done_rows.extend(row for row in rows if row["id"] in done)
        checkpoint()
