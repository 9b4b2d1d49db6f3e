"""reconcile_store: check the session index against the stored bodies, both ways."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from sessions_api import conf
from sessions_api.lifecycle.batches import Checkpoint, Listing, check_aware, no_checkpoint
from sessions_api.models import DocumentVersion, Session
from sessions_api.storage import BodyKey, DocumentStore, get_document_store


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
    checkpoint: Checkpoint = no_checkpoint,
) -> ReconcileResult:
    """Check the index against the stored bodies, both ways.

    - A version row whose body is missing is reported and, for a store outside the database
      transaction (Mongo), marked on its session with a ``body_missing`` warning.
    - A body without a version row (an ingest that crashed between writing the body and
      committing the index) is deleted once older than RECONCILE_ORPHAN_MIN_AGE, so an
      ingest in flight right now is never touched.

    With the orm store both live in one transaction, so it only verifies and reports.
    """
    check_aware(now)
    store = store or get_document_store()
    repairs = not store.transactional_with_index and not dry_run
    min_age = orphan_min_age if orphan_min_age is not None else conf.reconcile_orphan_min_age()
    notes: list[str] = []
    missing = Listing()
    orphans = Listing()

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
        found = store.find_stored(keys=keys)
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
    if store.lists_bodies:
        after: BodyKey | None = None
        while True:
            page = store.list_bodies(after=after, limit=batch_size)
            if not page:
                break
            after = (page[-1].session_id, page[-1].version)
            bodies_checked += len(page)
            indexed = _indexed_keys({item.session_id for item in page})
            doomed: list[BodyKey] = []
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
                    doomed.append((item.session_id, item.version))
                else:
                    too_recent += 1
            if repairs and doomed:
                deleted += store.delete_bodies(keys=doomed)
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


def _indexed_keys(session_ids: set[str]) -> set[BodyKey]:
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
