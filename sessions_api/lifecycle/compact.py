"""compact_stored_bodies: convert bodies stored whole, from before the store compacted them.

The store reads such bodies as they are, so nothing needs converting for the product to work;
converting them reclaims their space. One session at a time, each in its own short transaction
with the session's row locked (ingest and prune of that session wait for it), so an interrupted
run loses nothing and the next run skips what is already compact.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from sessions_api.models import Session
from sessions_api.storage import Compaction, DocumentStore, get_document_store


@dataclass(frozen=True)
class CompactionTotals:
    dry_run: bool
    sessions: int
    bodies: int
    rewritten: int
    bytes_before: int
    bytes_after: int

    @property
    def bytes_saved(self) -> int:
        return self.bytes_before - self.bytes_after


def count_sessions_to_compact() -> int:
    """How many sessions a run walks (for a progress bar)."""
    return Session.objects.count()


def compact_stored_bodies(
    *,
    dry_run: bool = False,
    batch_size: int = 500,
    store: DocumentStore | None = None,
    on_session: Callable[[Compaction], None] = lambda compaction: None,
) -> CompactionTotals:
    """Convert every session's bodies still stored whole; ``dry_run`` reports what it would
    rewrite and save without writing. ``on_session`` is called after each session."""
    store = store or get_document_store()
    sessions = bodies = rewritten = bytes_before = bytes_after = 0
    last: uuid.UUID | None = None
    while True:
        page = Session.objects.order_by("id")
        if last is not None:
            page = page.filter(id__gt=last)
        session_ids = list(page.values_list("id", flat=True)[:batch_size])
        if not session_ids:
            break
        last = session_ids[-1]
        for session_id in session_ids:
            with transaction.atomic():
                if not dry_run:
                    list(Session.objects.select_for_update().filter(id=session_id).values("id"))
                done = store.compact_session(session_id=str(session_id), dry_run=dry_run)
            sessions += 1
            bodies += done.bodies
            rewritten += done.rewritten
            bytes_before += done.bytes_before
            bytes_after += done.bytes_after
            on_session(done)
    return CompactionTotals(
        dry_run=dry_run,
        sessions=sessions,
        bodies=bodies,
        rewritten=rewritten,
        bytes_before=bytes_before,
        bytes_after=bytes_after,
    )
