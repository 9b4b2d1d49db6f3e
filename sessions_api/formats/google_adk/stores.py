"""Sessions read from a Google ADK ``SqliteSessionService`` or ``DatabaseSessionService``
SQLite file, schema v1 (tables ``sessions``, ``events`` with ``event_data``, ``app_states``,
``user_states``).

Each session is one ADK Session JSON (detection rule 2, session-snake): its state merged as the
session service does (``app:``/``user:`` prefixes restored), its events from ``event_data``
ordered by timestamp, and ``create_time`` added from the database. An event whose
``event_data`` is not JSON is kept raw, and the adapter shows it as a log entry with a warning.
Schema v0 (events stored column by column, actions pickled) is refused as a whole.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from sessions_api.formats.decoding import DecodeLimits
from sessions_api.formats.stores import (
    StoredSession,
    StoreError,
    as_text,
    columns,
    failed,
    read_sessions,
    rows,
    stored_json,
)

FORMAT_ID = "google_adk"
TABLES = frozenset({"sessions", "events"})


def read_sqlite_store(
    connection: sqlite3.Connection, *, tables: set[str], limits: DecodeLimits
) -> list[StoredSession]:
    """One document per session of an ADK session database, keyed ``app/user/id``."""
    if "event_data" not in columns(connection, "events"):
        return [
            failed(
                None,
                "unsupported_adk_schema",
                "Google ADK DatabaseSessionService schema v0 (events stored column by column, "
                "actions pickled) is not supported; migrate the database to schema v1 with ADK "
                "first",
            )
        ]
    sessions = rows(
        connection,
        "SELECT app_name, user_id, id, state, create_time, update_time FROM sessions "
        "ORDER BY app_name, user_id, id",
    )
    return read_sessions(
        sessions,
        key=lambda row: f"{row['app_name']}/{row['user_id']}/{row['id']}",
        build=lambda row: _session_document(connection, row, tables, limits),
        format_id=FORMAT_ID,
    )


def _session_document(
    connection: sqlite3.Connection,
    session: dict[str, Any],
    tables: set[str],
    limits: DecodeLimits,
) -> dict[str, Any]:
    app_name, user_id, session_id = session["app_name"], session["user_id"], session["id"]
    state = dict(_state(session["state"], "sessions.state", limits))
    if "app_states" in tables:
        for row in rows(connection, "SELECT state FROM app_states WHERE app_name = ?", app_name):
            for key, value in _state(row["state"], "app_states.state", limits).items():
                state[f"app:{key}"] = value
    if "user_states" in tables:
        for row in rows(
            connection,
            "SELECT state FROM user_states WHERE app_name = ? AND user_id = ?",
            app_name,
            user_id,
        ):
            for key, value in _state(row["state"], "user_states.state", limits).items():
                state[f"user:{key}"] = value
    events = []
    for row in rows(
        connection,
        "SELECT id, invocation_id, timestamp, event_data FROM events "
        "WHERE app_name = ? AND user_id = ? AND session_id = ? ORDER BY timestamp, rowid",
        app_name,
        user_id,
        session_id,
    ):
        try:
            events.append(stored_json(row["event_data"], f"event {row['id']}", limits=limits))
        except StoreError:
            # Shown by the adapter as a log entry with a warning; the raw column is kept.
            events.append(
                {
                    "id": row["id"],
                    "invocation_id": row["invocation_id"],
                    "timestamp": _epoch(row["timestamp"]),
                    "unparseable_event_data": as_text(row["event_data"]),
                }
            )
    return {
        "id": session_id,
        "app_name": app_name,
        "user_id": user_id,
        "state": state,
        "events": events,
        "last_update_time": _epoch(session["update_time"]),
        "create_time": _epoch(session["create_time"]),
    }


def _state(value: Any, where: str, limits: DecodeLimits) -> dict[str, Any]:
    state = stored_json(value, where, limits=limits)
    if not isinstance(state, dict):
        raise StoreError(f"{where} is not a JSON object")
    return state


def _epoch(value: Any) -> Any:
    """Epoch seconds from a REAL column (SqliteSessionService) or a naive UTC DATETIME string
    (DatabaseSessionService on SQLite); anything else as stored."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return value
