"""Writing the search entries: what ingest calls at its derived-row write points, and the
rebuild behind ``manage.py reindex``. One entry per event in, fewer rows stored: consecutive
events share a row, one line each (``pack``), and ``unpack`` gives the entries back."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

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
        connection = connections[DEFAULT_DB_ALIAS]
        with connection.cursor() as cursor:
            cursor.execute(_statements(connection.vendor)["remove_all"], [_session_key(session_pk)])
    if entries:
        db.insert_rows(
            SearchEntry,
            _COLUMNS,
            [
                (session_pk, r.event_index, r.seq, r.last_seq, r.events, r.text)
                for r in pack(entries)
            ],
        )


#: On SQLite, the condition of the search rows the FTS tables do not hold yet (their ids only
#: grow, and the tables hold every row up to the recorded one).
WAITING = "id > (SELECT indexed_upto FROM search_entry_fts_progress)"


def catch_up_fts(*, limit: int) -> int:
    """On SQLite, index the oldest ``limit`` rows the FTS tables do not hold yet, and return
    how many. Writes leave their rows waiting: FTS5 flushes its pending terms at each commit,
    at a cost per distinct term, so indexing in batches costs less per row the larger the batch
    (149 µs at 64 rows, 110 µs at 1,024). The ``index_search`` job indexes them; an insert
    that leaves more than ``waiting_limit`` (a column of ``search_entry_fts_progress``, 2,048)
    indexes the oldest quarter itself (a trigger, migration 0018_search_index_in_background);
    search reads the waiting ones directly. Call it within a transaction: the write lock keeps
    two from indexing the same rows."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "sqlite":
        return 0  # PostgreSQL's GIN index batches its own inserts (its pending list)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(id), count(*) FROM (SELECT id FROM sessions_api_searchentry "
            f"WHERE {WAITING} ORDER BY id LIMIT %s)",
            [limit],
        )
        upto, count = cursor.fetchone()
        if not count:
            return 0
        batch = f"FROM sessions_api_searchentry WHERE {WAITING} AND id <= %s"
        cursor.execute(f"INSERT INTO search_entry_fts(rowid, text) SELECT id, text {batch}", [upto])
        # The phrase tokens (search/pairs.py) of the same rows.
        cursor.execute(
            f"INSERT INTO search_pair_fts(rowid, pairs) SELECT id, search_pairs(text) {batch}",
            [upto],
        )
        cursor.execute("UPDATE search_entry_fts_progress SET indexed_upto = %s", [upto])
    return count


def waiting_rows() -> int:
    """How many rows the FTS tables do not hold yet (0 on PostgreSQL)."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "sqlite":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM sessions_api_searchentry WHERE {WAITING}")
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class IndexSearchResult:
    indexed_rows: int
    waiting_rows: int  # after the run (a dry run: what it would index)
    transactions: int
    skipped: str = ""

    def counts(self) -> dict[str, int]:
        return {
            "indexed_rows": self.indexed_rows,
            "waiting_rows": self.waiting_rows,
            "transactions": self.transactions,
        }

    def details(self) -> dict[str, Any]:
        return {}

    @property
    def nothing_to_do(self) -> str:
        if self.skipped:
            return self.skipped
        return "" if self.indexed_rows or self.waiting_rows else "no entries waiting"


def index_search(
    *,
    now: datetime,
    batch_size: int = 1000,
    dry_run: bool = False,
    checkpoint: Callable[[], None] = lambda: None,
) -> IndexSearchResult:
    """The ``index_search`` job: on SQLite, add the entries written since the FTS table last
    caught up, ``batch_size`` rows per transaction (about 0.1 s of the write lock each), until
    none wait. Ingest leaves them waiting so that tokenizing is not on its path."""
    del now  # the rows waiting say what to do, not the clock
    if connections[DEFAULT_DB_ALIAS].vendor != "sqlite":
        return IndexSearchResult(0, 0, 0, skipped="PostgreSQL indexes each entry as it is written")
    if dry_run:
        return IndexSearchResult(0, waiting_rows(), 0)
    indexed, transactions = index_waiting(batch_size=batch_size, checkpoint=checkpoint)
    return IndexSearchResult(indexed, waiting_rows(), transactions)


def index_waiting(
    *, batch_size: int = 1000, checkpoint: Callable[[], None] = lambda: None
) -> tuple[int, int]:
    """Index every waiting row, ``batch_size`` per transaction; (rows, transactions)."""
    indexed = transactions = 0
    while True:
        checkpoint()
        with transaction.atomic():
            done = catch_up_fts(limit=batch_size)
        transactions += 1
        indexed += done
        if done < batch_size:
            return indexed, transactions


def events_before(session_pk: Any, seq: int) -> int | None:
    """How many timeline events the messages before ``seq`` make, counted from the stored
    entries (one line per event, numbered from 0 in message order); None when the entries do
    not number them (a session stored before it was indexed).

    Read from the last stored row that starts before ``seq``, found by reading the (session,
    event) index back from the session's last row: it costs the rows of the messages from
    ``seq`` on, not the session's.
    """
    if seq <= 0:
        return 0
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute(
            _statements(connection.vendor)["last_row_before_seq"], [_session_key(session_pk), seq]
        )
        found = cursor.fetchone()
    if found is None:
        return None
    first, events = found
    seqs = _seqs(events)
    earlier = sum(1 for event_seq in seqs if event_seq is not None and event_seq < seq)
    if any(event_seq is None or event_seq >= seq for event_seq in seqs[:earlier]):
        return None  # the row's events are not in message order: only a whole parse knows
    return first + earlier


def remove_from(session_pk: Any, event_index: int) -> None:
    """Remove the entries of the events from ``event_index`` on and of the session's own
    fields: what a save that re-derives only the messages of those events writes anew. The row
    that holds events from both sides of ``event_index`` is written again with the earlier
    ones only."""
    connection = connections[DEFAULT_DB_ALIAS]
    key = _session_key(session_pk)
    statements = _statements(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(statements["remove_from"], [key, event_index])
        cursor.execute(statements["remove_event"], [key, SESSION_FIELDS])
        cursor.execute(statements["last_row_before_event"], [key, event_index])
        straddling = cursor.fetchone()
    if straddling is None:
        return
    row_id, first, events, text = straddling
    kept = unpack(first, events, text)[: event_index - first]
    if len(kept) == len(events.split(EVENT_SEPARATOR)):
        return  # it ends before ``event_index``
    with connection.cursor() as cursor:
        cursor.execute(statements["remove_row"], [row_id])
    write_entries(session_pk, kept)


def _session_key(session_pk: Any) -> Any:
    return db.prepare(SearchEntry._meta.get_field("session"), session_pk)


@functools.cache
def _statements(vendor: str) -> dict[str, str]:  # a test may point the alias at another vendor
    q = connections[DEFAULT_DB_ALIAS].ops.quote_name
    table, session, event = q(SearchEntry._meta.db_table), q("session_id"), q("event_index")
    return {
        "last_row_before_seq": f"SELECT {event}, {q('events')} FROM {table}"
        f" WHERE {session} = %s AND {event} >= 0 AND {q('seq')} < %s"
        f" ORDER BY {event} DESC LIMIT 1",
        "last_row_before_event": f"SELECT {q('id')}, {event}, {q('events')}, {q('text')}"
        f" FROM {table} WHERE {session} = %s AND {event} >= 0 AND {event} < %s"
        f" ORDER BY {event} DESC LIMIT 1",
        # Apart, not joined by OR: SQLite would then read every entry of the session.
        "remove_from": f"DELETE FROM {table} WHERE {session} = %s AND {event} >= %s",
        "remove_event": f"DELETE FROM {table} WHERE {session} = %s AND {event} = %s",
        "remove_row": f"DELETE FROM {table} WHERE {q('id')} = %s",
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
    index_waiting()
    return done, failed
