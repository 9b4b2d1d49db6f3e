"""prune_versions: keep the newest versions of each session and its pinned checkpoints."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Q

from sessions_api import conf
from sessions_api.lifecycle.batches import Checkpoint, Listing, check_aware, no_checkpoint
from sessions_api.models import Checkpoint as PinnedCheckpoint
from sessions_api.models import DocumentVersion, Session
from sessions_api.storage import DocumentStore, get_document_store


def pinned_checkpoint_versions(*, session_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, set[int]]:
    """Versions that pruning must keep whatever their age: pinned checkpoints, as
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
    checkpoint: Checkpoint = no_checkpoint,
) -> PruneResult:
    """Keep the newest ``keep`` versions of each session (PRUNE_KEEP_VERSIONS) plus every
    pinned checkpoint; delete older version rows and their bodies.

    Per batch the sessions are locked, so an ingest adding a version waits and "the newest N"
    is read under the lock. Bodies go with the index rows (orm store) or after the commit
    (Mongo: orphans at worst, which reconcile removes).
    """
    check_aware(now)
    keep = keep if keep is not None else conf.prune_keep_versions()
    if keep < 1:
        raise ValueError("keep must be at least 1: the latest version always stays")
    store = store or get_document_store()
    listing = Listing()
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
        with transaction.atomic():
            if not dry_run:
                list(
                    Session.objects.select_for_update()
                    .filter(id__in=session_ids)
                    .values_list("id", flat=True)
                )
            # Under the locks: a checkpoint pinned (it locks the session too) just before this
            # point is seen, and none can be pinned between this read and the delete.
            pins = pinned_checkpoint_versions(session_ids=session_ids)
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
    """The bodies of the pruned versions, in one call for the batch (one statement with the
    orm store)."""
    return store.delete_bodies(
        keys=[(str(session_id), number) for session_id, drop in doomed.items() for number in drop]
    )
