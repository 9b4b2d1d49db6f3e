"""Writing the search entries: what ingest calls at its derived-row write points, and the
rebuild behind ``manage.py reindex``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q

from sessions_api import db
from sessions_api.formats import parse_document
from sessions_api.models import SearchEntry, Session
from sessions_api.search.entries import SESSION_FIELDS, SearchEntryRow, build_entries
from sessions_api.storage import load_stored_document

_COLUMNS = ("session", "event_index", "seq", "kind", "text")


def write_entries(
    session_pk: Any, entries: Sequence[SearchEntryRow], *, replace: bool = False
) -> None:
    """Add a version's entries for one session; ``replace`` first removes what the session
    had (a new version that rewrites rather than appends, an edit, a revert)."""
    if replace:
        SearchEntry.objects.filter(session_id=session_pk).delete()
    if entries:
        db.insert_rows(
            SearchEntry,
            _COLUMNS,
            [(session_pk, e.event_index, e.seq, e.kind, e.text) for e in entries],
        )


def events_before(session_pk: Any, seq: int) -> int | None:
    """How many timeline events the messages before ``seq`` make, counted from the stored
    entries (one per event, numbered from 0 in message order); None when the entries do not
    number them (a session stored before it was indexed)."""
    if seq <= 0:
        return 0
    found = SearchEntry.objects.filter(
        session_id=session_pk, event_index__gte=0, seq__lt=seq
    ).aggregate(count=Count("pk"), last=Max("event_index"))
    if not found["count"] or found["last"] != found["count"] - 1:
        return None
    return found["count"]


def remove_from(session_pk: Any, seq: int) -> None:
    """Remove the entries of the events of messages from ``seq`` on and of the session's own
    fields: what a save that re-derives only those messages writes anew."""
    SearchEntry.objects.filter(session_id=session_pk).filter(
        Q(event_index=SESSION_FIELDS) | Q(seq__gte=seq)
    ).delete()


def reindex(
    *,
    session_ids: Iterable[Any] | None = None,
    on_session: Callable[[Any, Exception | None], None] = lambda pk, error: None,
) -> tuple[int, int]:
    """Rebuild the entries of these sessions (all when None) from their latest version, one
    transaction per session under its row lock (so a concurrent ingest is neither lost nor
    overwritten); returns (reindexed, failed). ``on_session`` hears of each."""
    keys = Session.objects.order_by("pk").values_list("pk", flat=True)
    if session_ids is not None:
        keys = keys.filter(pk__in=list(session_ids))
    done = failed = 0
    for pk in keys.iterator(chunk_size=1000):
        try:
            with transaction.atomic():
                row = (
                    Session.objects.select_for_update()
                    .only("pk", "format", "latest_version")
                    .filter(pk=pk)
                    .first()
                )
                if row is None:  # deleted meanwhile
                    continue
                doc = load_stored_document(session_id=str(pk), version=row.latest_version)
                _, parsed = parse_document(doc, format_id=row.format)
                write_entries(pk, build_entries(parsed.session), replace=True)
        except Exception as exc:  # one unreadable body must not stop a rebuild
            failed += 1
            on_session(pk, exc)
        else:
            done += 1
            on_session(pk, None)
    return done, failed
