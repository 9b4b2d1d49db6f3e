"""Sessions read from an OpenAI Agents ``SQLiteSession`` file (tables ``agent_sessions`` and
``agent_messages``).

Each session is one document ``{session_id, created_at, updated_at, items: [message_data
parsed...]}``, the session-items shape of detection rule 7. A file that also holds
``AdvancedSQLiteSession``'s ``message_structure``/``turn_usage`` tables, or a session with a
``message_data`` that is not JSON, gives that session's rows as a one-session table dump instead
(rule 5): it keeps turn usage and branches, and the adapter shows the unreadable row with a
warning. Message rows whose session has no ``agent_sessions`` row are a session all the same.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sessions_api.formats.decoding import DecodeLimits
from sessions_api.formats.stores import (
    StoredSession,
    StoreError,
    as_text,
    read_sessions,
    rows,
    stored_json,
)

FORMAT_ID = "openai_agents"
TABLES = frozenset({"agent_sessions", "agent_messages"})
ADVANCED_TABLES = ("message_structure", "turn_usage")


def read_sqlite_store(
    connection: sqlite3.Connection, *, tables: set[str], limits: DecodeLimits
) -> list[StoredSession]:
    """One document per session of an SQLiteSession database, keyed by its session id."""
    sessions = rows(
        connection, "SELECT session_id, created_at, updated_at FROM agent_sessions ORDER BY rowid"
    )
    known = {row["session_id"] for row in sessions}
    orphans = rows(
        connection,
        "SELECT session_id, NULL AS created_at, NULL AS updated_at FROM agent_messages "
        "GROUP BY session_id ORDER BY MIN(id)",
    )
    sessions.extend(row for row in orphans if row["session_id"] not in known)
    advanced = [table for table in ADVANCED_TABLES if table in tables]
    return read_sessions(
        sessions,
        key=lambda row: str(row["session_id"]),
        build=lambda row: _session_document(connection, row, advanced, limits),
        format_id=FORMAT_ID,
    )


def _session_document(
    connection: sqlite3.Connection,
    session: dict[str, Any],
    advanced: list[str],
    limits: DecodeLimits,
) -> dict[str, Any]:
    session_id = session["session_id"]
    if not isinstance(session_id, str):
        raise StoreError(f"session_id is {type(session_id).__name__}, not text")
    messages = rows(
        connection,
        "SELECT id, session_id, message_data, created_at FROM agent_messages "
        "WHERE session_id = ? ORDER BY id",
        session_id,
    )
    items = []
    for message in messages:
        try:
            items.append(
                stored_json(message["message_data"], f"message {message['id']}", limits=limits)
            )
        except StoreError:
            items = None
            break
    if items is not None and not advanced:
        return {
            "session_id": session_id,
            "created_at": session["created_at"],
            "updated_at": session["updated_at"],
            "items": items,
        }
    # The one-session table dump (rule 5): AdvancedSQLiteSession tables, or an unreadable row.
    dump: dict[str, Any] = {
        "agent_sessions": [session],
        "agent_messages": [{**m, "message_data": as_text(m["message_data"])} for m in messages],
    }
    for table in advanced:
        dump[table] = rows(
            connection, f'SELECT * FROM "{table}" WHERE session_id = ? ORDER BY rowid', session_id
        )
    return dump
