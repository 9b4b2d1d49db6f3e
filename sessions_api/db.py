"""SQLite-only help for the batch jobs; a no-op on other databases.

WAL checkpoints. With the default ``wal_autocheckpoint`` the COMMIT that pushes the WAL past
1,000 pages copies the whole WAL back into the database file and syncs it before it returns.
That copy runs after the write lock is released, but the committing caller waits for it, and
a purge batch of 200 sessions leaves 3,000 to 7,000 pages (every index of every table it
touches). :func:`checkpoint_between_batches` has a batch job do that copy itself, between its
transactions, so neither its own commits nor an ingest request's meet a long WAL.

Planner statistics are deliberately left alone: nothing here runs ANALYZE or
``PRAGMA optimize``. SQLite's ``sqlite_stat1`` counts NULLs as one value, so for a mostly-NULL
indexed column (``parent_session_id``, ``expired_at``) it records "every row has the same
value", and the planner then scans the whole table for ``parent_session_id IN (...)`` (the
branches of a purged batch, a session's branches page) where the index finds nothing in
microseconds. The jobs' statements are instead shaped so the primary key is the only sensible
way in with or without statistics (lifecycle.batches.recheck).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections


@contextmanager
def checkpoint_between_batches(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[Callable[[], None]]:
    """For a job that writes in many short transactions: yields ``after_batch``, to call after
    each commit.

    Within the block this connection's commits do not checkpoint; ``after_batch`` runs a
    PASSIVE checkpoint instead, which waits for no reader or writer (ingestion keeps writing
    meanwhile) and leaves the WAL short. The connection's own setting comes back afterwards.
    """
    connection = connections[using]
    if connection.vendor != "sqlite" or not connection.get_autocommit():
        # Another database, or inside an outer transaction (tests): nothing is committed here.
        yield lambda: None
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        previous = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA wal_autocheckpoint=0")

    def after_batch() -> None:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")

    try:
        yield after_batch
    finally:
        if connection.connection is not None:  # a closed connection's successor has the default
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA wal_autocheckpoint={previous}")
