"""What the readers of frameworks' own SQLite session stores share (pure: stdlib and the
decoding policy; no Django).

A store file is opened read-only and leaves no trace (never written, never migrated). Each
session becomes one document, serialised deterministically (rows in a fixed order, compact
separators), so that re-importing an unchanged store stores nothing new. A session that cannot
be read becomes a :class:`StoredSession` carrying the reason, never an exception, so one bad
session never stops the others. The per-format readers are ``formats/<format>/stores.py``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessions_api.errors import RejectedDocument
from sessions_api.formats.decoding import DecodeLimits, check_content, parse_json_text


class StoreError(Exception):
    """A session in a store that cannot be turned into a document (reported, never raised on)."""


@dataclass(frozen=True)
class StoredSession:
    """One document read from a store, or why it could not be read."""

    # Which session of the store ("app/user/id" for ADK); None when the answer is about the
    # whole store (an unsupported schema).
    key: str | None
    body: bytes = b""
    format_id: str | None = None
    error: str | None = None  # "code: message"


def failed(key: str | None, code: str, message: str) -> StoredSession:
    return StoredSession(key=key, error=f"{code}: {message}")


def read_sessions(
    sessions: Iterable[dict[str, Any]],
    *,
    key: Callable[[dict[str, Any]], str],
    build: Callable[[dict[str, Any]], Any],
    format_id: str,
) -> list[StoredSession]:
    """One document per session row: ``build(row)`` keyed ``key(row)``, or a failed session
    naming what went wrong, so one bad session never stops the others."""
    return [_read_session(key(row), build, row, format_id) for row in sessions]


def _read_session(
    key: str, build: Callable[[dict[str, Any]], Any], row: dict[str, Any], format_id: str
) -> StoredSession:
    try:
        return StoredSession(key=key, body=document_bytes(build(row)), format_id=format_id)
    except StoreError as exc:
        return failed(key, "unreadable_session", str(exc))
    except sqlite3.Error as exc:
        return failed(key, "unreadable_database", str(exc))


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Read-only, and leaving no trace: a WAL-mode database (SQLiteSession uses WAL) opened
    with mode=ro alone makes SQLite create -wal/-shm files beside it. Without a -wal file all
    the data is in the main file, so it is opened immutable (no locks, no side files); with one,
    the -wal holds committed data that must be read, so plain mode=ro."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    if not Path(f"{path}-wal").exists():
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True)


def table_names(connection: sqlite3.Connection) -> set[str]:
    return {
        row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }


def rows(connection: sqlite3.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    cursor = connection.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def columns(connection: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')}


def stored_json(text: Any, where: str, *, limits: DecodeLimits) -> Any:
    """A JSON column value under the ingest policy (strict); StoreError when it is not."""
    if not isinstance(text, str | bytes):
        raise StoreError(f"{where} is {type(text).__name__}, not JSON text")
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        value = parse_json_text(text)
        check_content(value, limits)
    except (RejectedDocument, UnicodeDecodeError) as exc:
        raise StoreError(f"{where} is not valid JSON ({exc})") from None
    return value


def as_text(value: Any) -> Any:
    """A column's bytes as text (undecodable bytes escaped), anything else as stored."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value


def document_bytes(doc: Any) -> bytes:
    """``doc`` as deterministic compact UTF-8 JSON; StoreError when JSON cannot hold it."""
    try:
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:  # NaN/Infinity read from a REAL column
        raise StoreError(f"not representable as JSON: {exc}") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (from a \\ud83d escape in a stored JSON string): keep it escaped, so
        # that the ingest answer points at it instead of this function failing.
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("ascii")
