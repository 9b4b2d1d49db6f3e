"""reconcile_store: check the session index against the stored bodies, both ways."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q

from sessions_api import conf
from sessions_api.lifecycle.batches import Checkpoint, Listing, check_aware, no_checkpoint
from sessions_api.models import DocumentBody, DocumentVersion, Session
from sessions_api.storage import DocumentStore, get_document_store
from sessions_api.storage.orm import OrmDocumentStore


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
    inventory = _inventory_for(store)
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
    if isinstance(store, OrmDocumentStore):
        return _OrmInventory(store)
    if hasattr(store, "_ready_collection"):
        return _MongoInventory(store)
    return _BodyInventory(store)


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
