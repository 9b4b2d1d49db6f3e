"""Writing the search entries: what ingest calls at its derived-row write points, and the
rebuild behind ``manage.py reindex``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

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
        connection = connections[DEFAULT_DB_ALIAS]
        with connection.cursor() as cursor:
            cursor.execute(
                _statements(connection.vendor)["remove_all"],
                [db.prepare(SearchEntry._meta.get_field("session"), session_pk)],
            )
    if entries:
        db.insert_rows(
            SearchEntry,
            _COLUMNS,
            [(session_pk, e.event_index, e.seq, e.kind, e.text) for e in entries],
        )


def events_before(session_pk: Any, seq: int) -> int | None:
    """How many timeline events the messages before ``seq`` make, counted from the stored
    entries (one per event, numbered from 0 in message order); None when the entries do not
    number them (a session stored before it was indexed).

    The last event of an earlier message, found by reading the (session, event) index back
    from the session's last event: it costs the events of the messages from ``seq`` on, not
    the session's.
    """
    if seq <= 0:
        return 0
    connection = connections[DEFAULT_DB_ALIAS]
    key = db.prepare(SearchEntry._meta.get_field("session"), session_pk)
    with connection.cursor() as cursor:
        cursor.execute(_statements(connection.vendor)["last_event_before"], [key, seq])
        found = cursor.fetchone()
    return None if found is None else found[0] + 1


def remove_from(session_pk: Any, event_index: int) -> None:
    """Remove the entries of the events from ``event_index`` on and of the session's own
    fields: what a save that re-derives only the messages of those events writes anew."""
    connection = connections[DEFAULT_DB_ALIAS]
    key = db.prepare(SearchEntry._meta.get_field("session"), session_pk)
    statements = _statements(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(statements["remove_from"], [key, event_index])
        cursor.execute(statements["remove_event"], [key, SESSION_FIELDS])


@functools.cache
def _statements(vendor: str) -> dict[str, str]:  # a test may point the alias at another vendor
    q = connections[DEFAULT_DB_ALIAS].ops.quote_name
    table, session, event = q(SearchEntry._meta.db_table), q("session_id"), q("event_index")
    return {
        "last_event_before": f"SELECT {event} FROM {table}"
        f" WHERE {session} = %s AND {event} >= 0 AND {q('seq')} < %s"
        f" ORDER BY {event} DESC LIMIT 1",
        # Apart, not joined by OR: SQLite would then read every entry of the session.
        "remove_from": f"DELETE FROM {table} WHERE {session} = %s AND {event} >= %s",
        "remove_event": f"DELETE FROM {table} WHERE {session} = %s AND {event} = %s",
        "remove_all": f"DELETE FROM {table} WHERE {session} = %s",
    }


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
