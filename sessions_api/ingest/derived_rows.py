"""The statements a save runs on a session's stored rows (mostly those of a save that appends
to it), written once per database as SQL: building them through the ORM on every save cost
more than running them.

Each reaches the rows it needs through an index that leads with the session (models.py), so
its cost follows what it reads or writes, not the session's size; the exceptions are
:func:`delete_all` (a whole re-derivation) and :func:`move_to_session_end`, whose rows are
every row of the session (see its docstring).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from sessions_api import db
from sessions_api.domain import ToolStatus
from sessions_api.ingest.indexing import ModelUsageRow
from sessions_api.models import DocumentVersion, ModelUsage, Session, SessionError, ToolCallRecord


def session_key(row: Session) -> Any:
    """``row``'s primary key as the statements below take it."""
    return db.prepare(Session._meta.pk, row.pk)


def latest_digest(key: Any, number: int) -> str | None:
    """The SHA-256 of version ``number`` of the session, or None when there is none."""
    return _fetch_value(_sql("latest_digest"), [key, number])


def first_pending_call(key: Any) -> int | None:
    """The message of the session's first tool call still waiting for its result."""
    return _fetch_value(_sql("first_pending_call"), [key])


def reuses_call_id(key: Any, call_ids: Sequence[str], *, before: int) -> bool:
    """Whether a call of a message before ``before`` has one of ``call_ids``."""
    if not call_ids:
        return False
    ids = list(dict.fromkeys(call_ids))
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute(_reuse_sql(connection.vendor, len(ids)), [key, *ids])
        return any(seq < before for (seq,) in cursor.fetchall())


def replaced_rows(key: Any, start: int) -> tuple[list[tuple[str, str]], list[tuple[str, bool]]]:
    """(status, status_source) of the tool calls and (kind, heuristic) of the errors of the
    messages from ``start`` on: what a merge takes out of the stored counts."""
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute(_sql("replaced_calls"), [key, start])
        calls = [(status, source) for status, source in cursor.fetchall()]
        cursor.execute(_sql("replaced_errors"), [key, start])
        errors = [(kind, bool(heuristic)) for kind, heuristic in cursor.fetchall()]
    return calls, errors


def model_usage(key: Any) -> list[ModelUsageRow]:
    """The session's stored message counts per model (tokens are worked out afresh)."""
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute(_sql("model_usage"), [key])
        return [ModelUsageRow(model=m, message_count=n) for m, n in cursor.fetchall()]


def delete_from(key: Any, start: int) -> None:
    """Delete the tool calls and errors of the messages from ``start`` on, and the errors of no
    message (a log's: a merged document has none)."""
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute(_sql("delete_calls_from"), [key, start])
        cursor.execute(_sql("delete_errors_from"), [key, start])
        cursor.execute(_sql("delete_errors_of_no_message"), [key])


def delete_all(key: Any) -> None:
    """Delete every tool call, error and usage row of the session (a whole parse writes them
    anew)."""
    connection = connections[DEFAULT_DB_ALIAS]
    statements = _statements(connection.vendor)
    with connection.cursor() as cursor:
        for name in ("delete_calls", "delete_errors", "delete_usage"):
            cursor.execute(statements[name], [key])


def move_to_session_end(key: Any, updated_at: datetime, *, before: int) -> None:
    """Give the tool calls and errors of the messages before ``before`` the session's new end
    as their time: a merge's condition is that no message has a time of its own, and a row
    without one takes the session's end (indexing.build_index), so a whole parse of the new
    version would date them all anew. The one write that follows the session's size: one
    statement per table, each row reached through the session's index."""
    when = db.prepare(ToolCallRecord._meta.get_field("occurred_at"), updated_at)
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute(_sql("move_calls"), [when, key, before, when])
        cursor.execute(_sql("move_errors"), [when, key, before, when])


def delete_model_usage(key: Any) -> None:
    """Delete the session's usage rows (the caller inserts the merged ones)."""
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute(_sql("delete_usage"), [key])


def _fetch_value(sql: str, params: list[Any]) -> Any:
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    return None if found is None else found[0]


def _vendor() -> str:
    return connections[DEFAULT_DB_ALIAS].vendor


def _sql(name: str) -> str:
    return _statements(_vendor())[name]


@functools.cache
def _statements(vendor: str) -> dict[str, str]:  # a test may point the alias at another vendor
    q = connections[DEFAULT_DB_ALIAS].ops.quote_name
    calls, errors = q(ToolCallRecord._meta.db_table), q(SessionError._meta.db_table)
    usage, versions = q(ModelUsage._meta.db_table), q(DocumentVersion._meta.db_table)
    session, seq, at = q("session_id"), q("message_seq"), q("occurred_at")
    return {
        "latest_digest": f"SELECT {q('sha256')} FROM {versions}"
        f" WHERE {session} = %s AND {q('number')} = %s",
        # The status as a literal, not a parameter: only then may the partial index of
        # pending calls serve it.
        "first_pending_call": f"SELECT MIN({seq}) FROM {calls}"
        f" WHERE {session} = %s AND {q('status')} = '{ToolStatus.PENDING.value}'",
        "replaced_calls": f"SELECT {q('status')}, {q('status_source')} FROM {calls}"
        f" WHERE {session} = %s AND {seq} >= %s",
        "replaced_errors": f"SELECT {q('kind')}, {q('heuristic')} FROM {errors}"
        f" WHERE {session} = %s AND {seq} >= %s",
        "model_usage": f"SELECT {q('model')}, {q('message_count')} FROM {usage}"
        f" WHERE {session} = %s",
        "delete_calls": f"DELETE FROM {calls} WHERE {session} = %s",
        "delete_errors": f"DELETE FROM {errors} WHERE {session} = %s",
        "delete_calls_from": f"DELETE FROM {calls} WHERE {session} = %s AND {seq} >= %s",
        # Apart, not joined by OR: SQLite would then read every row of the session.
        "delete_errors_from": f"DELETE FROM {errors} WHERE {session} = %s AND {seq} >= %s",
        "delete_errors_of_no_message": f"DELETE FROM {errors}"
        f" WHERE {session} = %s AND {seq} IS NULL",
        "move_calls": f"UPDATE {calls} SET {at} = %s"
        f" WHERE {session} = %s AND {seq} < %s AND {at} <> %s",
        "move_errors": f"UPDATE {errors} SET {at} = %s"
        f" WHERE {session} = %s AND {seq} < %s AND {at} <> %s",
        "delete_usage": f"DELETE FROM {usage} WHERE {session} = %s",
    }


@functools.lru_cache(maxsize=64)
def _reuse_sql(vendor: str, count: int) -> str:
    q = connections[DEFAULT_DB_ALIAS].ops.quote_name
    # The messages are compared by the caller: with them in the WHERE clause, SQLite reads
    # the session's rows by message instead of looking the ids up.
    return (
        f"SELECT {q('message_seq')} FROM {q(ToolCallRecord._meta.db_table)}"
        f" WHERE {q('session_id')} = %s AND {q('call_id')} IN ({', '.join(['%s'] * count)})"
    )
