"""Writing the search entries: what ingest calls at its derived-row write points, and the
rebuild behind ``manage.py reindex``. One entry per event in, fewer rows stored: consecutive
events share a row, one line each (``pack``), and ``unpack`` gives the entries back."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Q

from sessions_api import db
from sessions_api.formats import parse_document
from sessions_api.models import SearchEntry, Session
from sessions_api.search.entries import SESSION_FIELDS, SearchEntryRow, build_entries
from sessions_api.storage import load_stored_document

_COLUMNS = ("session", "event_index", "seq", "last_seq", "events", "text")
#: Consecutive events share a stored row up to about this many characters of text. The index
#: costs per distinct trigram per row, so one row per event (44 for a 17 KB document) cost
#: three times the trigram tokenizing itself. Longer rows hold a phrase's trigrams apart
#: more often: at 20,000 sessions, with a document's events in one row, a phrase no session
#: says had 1,774 candidate rows to read again (64 ms), with 2,000 characters 735 (6.6 ms).
PACK_CHARS = 2_000
#: What separates the events of a row: never inside an event's text (entries.normalise folds
#: every line break to a space), nor inside a term, so no term matches across two events.
EVENT_SEPARATOR = "\n"


@dataclass(frozen=True)
class PackedRow:
    event_index: int
    seq: int | None
    last_seq: int | None
    events: str  # per line of ``text``: "seq:kind"
    text: str


def pack(entries: Sequence[SearchEntryRow]) -> list[PackedRow]:
    """The rows that store ``entries``: the session's own entry alone, and runs of
    consecutive events of up to about ``PACK_CHARS`` characters, one line per event."""
    rows: list[PackedRow] = []
    run: list[SearchEntryRow] = []
    size = 0

    def close() -> None:
        seqs = [e.seq for e in run if e.seq is not None]
        rows.append(
            PackedRow(
                event_index=run[0].event_index,
                seq=min(seqs) if seqs else None,
                last_seq=max(seqs) if seqs else None,
                events=_events_column(run),
                text=EVENT_SEPARATOR.join(e.text for e in run),
            )
        )
        run.clear()

    for entry in entries:
        if entry.event_index == SESSION_FIELDS:
            rows.append(
                PackedRow(SESSION_FIELDS, entry.seq, entry.seq, _events_column([entry]), entry.text)
            )
            continue
        if run and (
            entry.event_index != run[-1].event_index + 1 or size + len(entry.text) > PACK_CHARS
        ):
            close()
            size = 0
        run.append(entry)
        size += len(entry.text) + 1
    if run:
        close()
    return rows


def _events_column(entries: Sequence[SearchEntryRow]) -> str:
    return EVENT_SEPARATOR.join(f"{'' if e.seq is None else e.seq}:{e.kind}" for e in entries)


def event_at(events: str, line: int) -> tuple[int | None, str]:
    """(seq, kind) of the event of one line of a stored row, from its ``events``."""
    seq, _, kind = events.split(EVENT_SEPARATOR)[line].partition(":")
    return (int(seq) if seq else None), kind


def _seqs(events: str) -> list[int | None]:
    seqs = (line.partition(":")[0] for line in events.split(EVENT_SEPARATOR))
    return [int(seq) if seq else None for seq in seqs]


def unpack(event_index: int, events: str, text: str) -> list[SearchEntryRow]:
    """The entries one stored row holds, one per line."""
    entries = []
    for i, (event, line) in enumerate(
        zip(events.split(EVENT_SEPARATOR), text.split(EVENT_SEPARATOR), strict=True)
    ):
        seq, _, kind = event.partition(":")
        entries.append(
            SearchEntryRow(
                event_index=event_index + i, seq=int(seq) if seq else None, kind=kind, text=line
            )
        )
    return entries


def stored_entries(session_pk: Any) -> list[SearchEntryRow]:
    """A session's entries as stored, one per event (the session's own first), in order."""
    rows = SearchEntry.objects.filter(session_id=session_pk).order_by("event_index")
    return [
        entry for row in rows.values_list("event_index", "events", "text") for entry in unpack(*row)
    ]


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
            [
                (session_pk, r.event_index, r.seq, r.last_seq, r.events, r.text)
                for r in pack(entries)
            ],
        )


def catch_up_fts() -> None:
    """On SQLite, index every row the FTS table does not hold yet. Writes leave up to a few
    dozen rows waiting (FTS5 flushes its pending terms at each commit, at a cost per distinct
    term: indexing one document per commit cost about as much again as tokenizing it); the
    insert that leaves more indexes them all (a trigger, migration
    0012_searchentry_packed_events), and search reads the waiting ones directly. Call it
    within a transaction: the write lock keeps two from indexing the same rows."""
    if connection.vendor != "sqlite":
        return  # PostgreSQL's GIN index batches its own inserts (its pending list)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO search_entry_fts(rowid, text) SELECT id, text "
            "FROM sessions_api_searchentry "
            "WHERE id > (SELECT indexed_upto FROM search_entry_fts_progress)"
        )
        cursor.execute(
            "UPDATE search_entry_fts_progress SET indexed_upto = "
            "coalesce((SELECT max(id) FROM sessions_api_searchentry), indexed_upto)"
        )


def events_before(session_pk: Any, seq: int) -> int | None:
    """How many timeline events the messages before ``seq`` make, counted from the stored
    entries (one line per event, numbered from 0 in message order); None when the entries do
    not number them (a session stored before it was indexed)."""
    if seq <= 0:
        return 0
    rows = SearchEntry.objects.filter(
        session_id=session_pk, event_index__gte=0, seq__lt=seq
    ).values_list("event_index", "events")
    before = [
        first + i
        for first, events in rows
        for i, event_seq in enumerate(_seqs(events))
        if event_seq is not None and event_seq < seq
    ]
    if not before or max(before) != len(before) - 1:
        return None
    return len(before)


def remove_from(session_pk: Any, seq: int) -> None:
    """Remove the entries of the events of messages from ``seq`` on and of the session's own
    fields: what a save that re-derives only those messages writes anew. A row that holds
    events from both sides of ``seq`` is written again with the earlier ones only."""
    own = SearchEntry.objects.filter(session_id=session_pk)
    own.filter(Q(event_index=SESSION_FIELDS) | Q(seq__gte=seq)).delete()
    straddling = own.filter(seq__lt=seq, last_seq__gte=seq)
    kept = [
        entry
        for row in straddling.values_list("event_index", "events", "text")
        for entry in unpack(*row)
        if entry.seq is None or entry.seq < seq
    ]
    if straddling.delete()[0]:
        write_entries(session_pk, kept)


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
    with transaction.atomic():
        catch_up_fts()
    return done, failed
