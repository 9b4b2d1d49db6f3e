"""Bulk import from files: single JSON documents, JSONL, and folders of them (recursively).

Each document goes through the same ingest as the API, so re-running an import stores nothing
twice (identical bytes are "unchanged"). A bad file or line is reported and never stops the rest.

An AgentFlow ``FileSystemStorage`` session folder (``sessions/<id>/session.json`` with its notes
and artifacts) is one unit: the walk yields the folder instead of its files, and it is imported
as one ``agentflow`` export bundle built by :func:`agentflow_bundle` (see the section at the end).

SQLite session stores (an OpenAI Agents ``SQLiteSession`` file, a Google ADK
``SqliteSessionService``/``DatabaseSessionService`` file) are recognised by their first bytes and
their tables, and every session in them is one document (:func:`read_sqlite_sources`); a JSON
dump holding several sessions is split into one document per session (:func:`split_json_dump`).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sessions_api.errors import InvalidDocument, RejectedDocument, RevisionConflict
from sessions_api.formats import detect_format
from sessions_api.formats.decoding import (
    check_content,
    decode_document,
    parse_json_text,
)
from sessions_api.formats.google_adk import parse as google_adk
from sessions_api.formats.openai_agents import parse as openai_agents
from sessions_api.ingest import services
from sessions_api.models import DocumentVersion

DOCUMENT_SUFFIXES = {".json"}
LINE_SUFFIXES = {".jsonl", ".ndjson"}


@dataclass(frozen=True)
class ImportSource:
    """One document to import: where it came from (file, or file:line) and its bytes."""

    label: str
    body: bytes
    # Set when the source itself fixes the format (an AgentFlow folder is always "agentflow").
    format_id: str | None = None
    # Set when the source could not be read into a document: reported as a failure line.
    error: str | None = None


@dataclass(frozen=True)
class ImportResult:
    label: str
    ok: bool
    detail: str
    created: bool = False
    changed: bool = False
    session_id: str | None = None


def find_files(paths: Iterable[Path]) -> list[Path]:
    """Every importable file under the given files and folders, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            # AgentFlow session folders are units: none of their files is imported on its own.
            units = agentflow_session_dirs(path)
            found.extend(
                sorted(
                    [
                        *units,
                        *(
                            p
                            for p in path.rglob("*")
                            if p.is_file()
                            and (
                                p.suffix.lower() in DOCUMENT_SUFFIXES | LINE_SUFFIXES
                                or is_sqlite_store_file(p)
                            )
                            and not any(unit in p.parents for unit in units)
                        ),
                    ]
                )
            )
        elif path.name == AGENTFLOW_SESSION_FILE and is_agentflow_session_dir(path.parent):
            found.append(path.parent)
        else:
            found.append(path)
    return found


def read_sources(path: Path) -> Iterator[ImportSource]:
    """The documents in one file: the whole file, or each non-blank line of a JSONL file; an
    AgentFlow session folder is one document (its export bundle)."""
    if path.is_dir():
        yield read_agentflow_session(path)
        return
    if has_sqlite_header(path):
        yield from read_sqlite_sources(path)
        return
    data = path.read_bytes()
    if path.suffix.lower() in LINE_SUFFIXES:
        for number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                yield ImportSource(label=f"{path}:{number}", body=line)
    elif path.suffix.lower() in SQLITE_SUFFIXES:
        yield ImportSource(
            label=str(path),
            body=data,
            error="not_a_database: no 'SQLite format 3' header; not an SQLite session store",
        )
    else:
        yield from split_json_dump(str(path), data)


def import_source(source: ImportSource, *, format_id: str | None = None) -> ImportResult:
    if source.error is not None:
        return ImportResult(source.label, ok=False, detail=source.error)
    try:
        outcome = services.ingest_document(
            body=source.body,
            format_id=source.format_id or format_id,
            source=DocumentVersion.Source.IMPORT,
            # Re-running an import must not add versions (see ingest_document).
            unchanged_if_stored_before=True,
        )
    except (RejectedDocument, InvalidDocument) as exc:
        return ImportResult(source.label, ok=False, detail=_error_text(exc.code, exc.message))
    except RevisionConflict as exc:
        return ImportResult(source.label, ok=False, detail=f"revision_conflict: {exc.message}")
    if outcome.created:
        detail = f"new session ({outcome.format}, {outcome.summary.message_count} messages)"
    elif outcome.changed:
        detail = f"new version {outcome.version}"
    else:
        detail = "unchanged"
    if outcome.warnings:
        detail += f", {len(outcome.warnings)} warning(s)"
    return ImportResult(
        source.label,
        ok=True,
        detail=detail,
        created=outcome.created,
        changed=outcome.changed,
        session_id=outcome.id,
    )


def _error_text(code: str, message: str) -> str:
    return f"{code}: {message}"


# --- AgentFlow FileSystemStorage folders ----------------------------------------------------
#
# AgentFlow keeps a session as a folder: sessions/<id>/session.json, per-node notes
# <workflow>/<node>_scratch.md and _summary.md, and artifacts/<name>. The folder is imported as one
# agentflow export bundle (sessions_api/formats/agentflow/parse.py), serialised deterministically
# (sorted files, fixed key order, no paths or file times) so that re-importing an unchanged folder
# is "unchanged". JSON artifacts are embedded parsed, text as text, binary as base64 up to
# AGENTFLOW_INLINE_BINARY_BYTES (else listed by size and sha256 with "omitted": true); text over
# AGENTFLOW_INLINE_TEXT_BYTES is listed the same way, so one huge file cannot push the whole session
# over the document size limit.

AGENTFLOW_SESSION_FILE = "session.json"
AGENTFLOW_HISTORY_FILE = "history.json"  # written by some apps beside session.json, not AgentFlow
AGENTFLOW_ARTIFACTS_DIR = "artifacts"
AGENTFLOW_INLINE_BINARY_BYTES = 256 * 1024
AGENTFLOW_INLINE_TEXT_BYTES = 1024 * 1024
_AGENTFLOW_SESSION_KEYS = frozenset({"id", "agent", "workflow", "status"})
_AGENTFLOW_MAX_SESSION_JSON_BYTES = 1024 * 1024
# A fixed table (mimetypes depends on the machine's mime.types, which would make the bundle
# differ between machines).
_MEDIA_TYPES = {
    ".json": "application/json",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".html": "text/html",
    ".xml": "application/xml",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".pdf": "application/pdf",
}
# An artifact's JSON sits three levels down in the bundle (bundle > artifacts > entry > json).
_ARTIFACT_JSON_DEPTH = 3


def is_agentflow_session_dir(path: Path) -> bool:
    """``sessions/<id>/`` holding a session.json that is an AgentFlow session object."""
    session_file = path / AGENTFLOW_SESSION_FILE
    if path.parent.name != "sessions" or not session_file.is_file():
        return False
    try:
        if session_file.stat().st_size > _AGENTFLOW_MAX_SESSION_JSON_BYTES:
            return False
        doc = json.loads(session_file.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and doc.keys() >= _AGENTFLOW_SESSION_KEYS


def agentflow_session_dirs(root: Path) -> list[Path]:
    """Every AgentFlow session folder at or under ``root``, sorted."""
    candidates = {root, *(p.parent for p in root.rglob(AGENTFLOW_SESSION_FILE))}
    return sorted(p for p in candidates if is_agentflow_session_dir(p))


def read_agentflow_session(session_dir: Path) -> ImportSource:
    """One AgentFlow session folder as one document to import (format ``agentflow``)."""
    label = str(session_dir)
    try:
        body = agentflow_bundle(session_dir)
    except (RejectedDocument, ValueError):
        # session.json is not strict JSON (NaN, duplicate keys...): import it as it is, so the
        # ingest answer says what is wrong with it.
        body = (session_dir / AGENTFLOW_SESSION_FILE).read_bytes()
    return ImportSource(label=label, body=body, format_id="agentflow")


def agentflow_bundle(session_dir: Path) -> bytes:
    """The export bundle of one session folder, as deterministic UTF-8 JSON bytes."""
    session = parse_json_text(
        (session_dir / AGENTFLOW_SESSION_FILE).read_bytes().decode("utf-8-sig")
    )
    bundle: dict[str, Any] = {
        "_kind": "agentflow-export-bundle",
        "_version": 1,
        "_note": "built by manage.py import_sessions from an AgentFlow FileSystemStorage folder",
        "session": session,
    }
    notes: dict[str, str] = {}
    artifacts: list[dict[str, Any]] = []
    other_files: list[dict[str, Any]] = []
    artifacts_dir = session_dir / AGENTFLOW_ARTIFACTS_DIR
    for path in sorted(p for p in session_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(session_dir).as_posix()
        if relative == AGENTFLOW_SESSION_FILE:
            continue
        data = path.read_bytes()
        if artifacts_dir in path.parents:
            artifacts.append(_agentflow_artifact(path.relative_to(artifacts_dir).as_posix(), data))
            continue
        text = _clean_text(data)
        if relative == AGENTFLOW_HISTORY_FILE and text is not None:
            history = _strict_json(text, depth_used=1)
            if isinstance(history, list):
                bundle["history"] = history
                continue
        if text is not None and len(data) <= AGENTFLOW_INLINE_TEXT_BYTES:
            notes[relative] = text
        else:
            other_files.append(
                {"path": relative, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            )
    bundle["notes"] = notes
    bundle["artifacts"] = artifacts
    if other_files:
        bundle["other_files"] = other_files
    return json.dumps(bundle, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


def _agentflow_artifact(name: str, data: bytes) -> dict[str, Any]:
    suffix = Path(name).suffix.lower()
    text = _clean_text(data)
    media_type = _MEDIA_TYPES.get(suffix) or (
        "text/plain" if text is not None else "application/octet-stream"
    )
    entry: dict[str, Any] = {
        "name": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "media_type": media_type,
    }
    if text is not None and len(data) <= AGENTFLOW_INLINE_TEXT_BYTES:
        if media_type == "application/json":
            parsed = _strict_json(text, depth_used=_ARTIFACT_JSON_DEPTH)
            if parsed is not _NOT_JSON:
                entry["json"] = parsed
                return entry
            entry["json_error"] = "not valid JSON (or nested too deep); embedded as text"
        entry["text"] = text
    elif text is None and len(data) <= AGENTFLOW_INLINE_BINARY_BYTES:
        entry["base64"] = base64.b64encode(data).decode("ascii")
    else:
        entry["omitted"] = True
    return entry


_NOT_JSON = object()


def _clean_text(data: bytes) -> str | None:
    """The UTF-8 text of a file, or None when it is binary (or holds NUL, which no store
    keeps)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def _strict_json(text: str, *, depth_used: int) -> Any:
    """JSON under the ingest policy (strict, and within the depth left inside the bundle)."""
    limits = services.decode_limits()
    limits = dataclasses.replace(limits, max_depth=max(1, limits.max_depth - depth_used))
    try:
        value = parse_json_text(text)
        check_content(value, limits)
    except RejectedDocument:
        return _NOT_JSON
    return value


# --- SQLite session stores and multi-session JSON dumps --------------------------------------
#
# A file whose first bytes are the SQLite header is opened read-only (never written, never
# migrated) and recognised by its tables:
#
# - OpenAI Agents SQLiteSession (agent_sessions, agent_messages): one document per session,
#   {session_id, created_at, updated_at, items: [message_data parsed...]} (rule 7). A file that
#   also holds AdvancedSQLiteSession's message_structure/turn_usage tables, or a session with a
#   message_data that is not JSON, gives that session's rows as a one-session table dump instead
#   (rule 5: keeps turn usage and branches, and shows the unreadable row with a warning).
# - Google ADK SqliteSessionService / DatabaseSessionService schema v1 (sessions, events with
#   event_data, app_states, user_states): one ADK Session JSON per session, state merged as the
#   session service does (app:/user: prefixes restored), events from event_data ordered by
#   timestamp, create_time added from the database (rule 2, session-snake).
#
# Documents are serialised deterministically (rows in a fixed order, compact separators), so
# re-importing an unchanged store reports every session "unchanged". Anything else is one
# failure line that names the tables found.

SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_SUFFIXES = {".sqlite", ".sqlite3", ".db"}
_AGENTS_TABLES = frozenset({"agent_sessions", "agent_messages"})
_AGENTS_ADVANCED_TABLES = ("message_structure", "turn_usage")
_ADK_TABLES = frozenset({"sessions", "events"})


class _StoreError(Exception):
    """A session in a store that cannot be turned into a document (reported, never raised on)."""


def has_sqlite_header(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def is_sqlite_store_file(path: Path) -> bool:
    """What a folder walk picks up besides JSON: ``.sqlite``/``.sqlite3``/``.db`` files that
    really are SQLite databases (by their header, not only their name)."""
    return path.suffix.lower() in SQLITE_SUFFIXES and has_sqlite_header(path)


def read_sqlite_sources(path: Path) -> list[ImportSource]:
    """One source per session in an SQLite session store; one failing source when the file is
    not a store this importer knows."""
    label = str(path)
    try:
        connection = sqlite3.connect(_read_only_uri(path), uri=True)
    except sqlite3.Error as exc:
        return [_failed(label, "unreadable_database", str(exc))]
    try:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        sources: list[ImportSource] = []
        is_agents_store, is_adk_store = tables >= _AGENTS_TABLES, tables >= _ADK_TABLES
        if is_agents_store:
            sources.extend(_agents_store_sources(connection, label, tables))
        if is_adk_store:
            sources.extend(_adk_store_sources(connection, label, tables))
        if not (is_agents_store or is_adk_store):
            found = ", ".join(sorted(tables)) or "none"
            return [
                _failed(
                    label,
                    "unknown_sqlite_schema",
                    f"not a known session store (tables: {found}); supported: OpenAI Agents "
                    "SQLiteSession (agent_sessions, agent_messages) and Google ADK "
                    "SqliteSessionService/DatabaseSessionService (sessions, events, "
                    "app_states, user_states)",
                )
            ]
        return sources
    except sqlite3.Error as exc:
        return [_failed(label, "unreadable_database", str(exc))]
    finally:
        connection.close()


def _read_only_uri(path: Path) -> str:
    """Read-only, and leaving no trace: a WAL-mode database (SQLiteSession uses WAL) opened
    with mode=ro alone makes SQLite create -wal/-shm files beside it. Without a -wal file all
    the data is in the main file, so it is opened immutable (no locks, no side files); with one,
    the -wal holds committed data that must be read, so plain mode=ro."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    if not Path(f"{path}-wal").exists():
        uri += "&immutable=1"
    return uri


def _failed(label: str, code: str, message: str) -> ImportSource:
    return ImportSource(label=label, body=b"", error=f"{code}: {message}")


def _session_source(label: str, build, format_id: str) -> ImportSource:
    """A source from ``build()`` (a document), or a failing source naming what went wrong."""
    try:
        return ImportSource(label=label, body=_document_bytes(build()), format_id=format_id)
    except _StoreError as exc:
        return _failed(label, "unreadable_session", str(exc))
    except sqlite3.Error as exc:
        return _failed(label, "unreadable_database", str(exc))


def _document_bytes(doc: Any) -> bytes:
    try:
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:  # NaN/Infinity read from a REAL column
        raise _StoreError(f"not representable as JSON: {exc}") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (from a \\ud83d escape in a stored JSON string): keep it escaped, so
        # that the ingest answer points at it instead of this function failing.
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("ascii")


def _stored_json(text: Any, where: str) -> Any:
    """A JSON column value under the ingest policy (strict); _StoreError when it is not."""
    if not isinstance(text, str | bytes):
        raise _StoreError(f"{where} is {type(text).__name__}, not JSON text")
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        value = parse_json_text(text)
        check_content(value, services.decode_limits())
    except (RejectedDocument, UnicodeDecodeError) as exc:
        raise _StoreError(f"{where} is not valid JSON ({exc})") from None
    return value


def _rows(connection: sqlite3.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    cursor = connection.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _columns(connection: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')}


# OpenAI Agents SQLiteSession ------------------------------------------------------------------


def _agents_store_sources(
    connection: sqlite3.Connection, label: str, tables: set[str]
) -> list[ImportSource]:
    sessions = _rows(
        connection, "SELECT session_id, created_at, updated_at FROM agent_sessions ORDER BY rowid"
    )
    known = {row["session_id"] for row in sessions}
    # Message rows whose session has no agent_sessions row are a session all the same.
    orphans = _rows(
        connection,
        "SELECT session_id, NULL AS created_at, NULL AS updated_at FROM agent_messages "
        "GROUP BY session_id ORDER BY MIN(id)",
    )
    sessions.extend(row for row in orphans if row["session_id"] not in known)
    advanced = [table for table in _AGENTS_ADVANCED_TABLES if table in tables]
    return [
        _session_source(
            f"{label}#{row['session_id']}",
            lambda row=row: _agents_document(connection, row, advanced),
            "openai_agents",
        )
        for row in sessions
    ]


def _agents_document(
    connection: sqlite3.Connection, session: dict[str, Any], advanced: list[str]
) -> dict[str, Any]:
    session_id = session["session_id"]
    if not isinstance(session_id, str):
        raise _StoreError(f"session_id is {type(session_id).__name__}, not text")
    messages = _rows(
        connection,
        "SELECT id, session_id, message_data, created_at FROM agent_messages "
        "WHERE session_id = ? ORDER BY id",
        session_id,
    )
    items = []
    for message in messages:
        try:
            items.append(_stored_json(message["message_data"], f"message {message['id']}"))
        except _StoreError:
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
        "agent_messages": [{**m, "message_data": _as_text(m["message_data"])} for m in messages],
    }
    for table in advanced:
        dump[table] = _rows(
            connection, f'SELECT * FROM "{table}" WHERE session_id = ? ORDER BY rowid', session_id
        )
    return dump


def _as_text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value


# Google ADK SqliteSessionService / DatabaseSessionService --------------------------------------


def _adk_store_sources(
    connection: sqlite3.Connection, label: str, tables: set[str]
) -> list[ImportSource]:
    if "event_data" not in _columns(connection, "events"):
        return [
            _failed(
                label,
                "unsupported_adk_schema",
                "Google ADK DatabaseSessionService schema v0 (events stored column by column, "
                "actions pickled) is not supported; migrate the database to schema v1 with ADK "
                "first",
            )
        ]
    sessions = _rows(
        connection,
        "SELECT app_name, user_id, id, state, create_time, update_time FROM sessions "
        "ORDER BY app_name, user_id, id",
    )
    return [
        _session_source(
            f"{label}#{row['app_name']}/{row['user_id']}/{row['id']}",
            lambda row=row: _adk_document(connection, row, tables),
            "google_adk",
        )
        for row in sessions
    ]


def _adk_document(
    connection: sqlite3.Connection, session: dict[str, Any], tables: set[str]
) -> dict[str, Any]:
    app_name, user_id, session_id = session["app_name"], session["user_id"], session["id"]
    state = dict(_adk_state(session["state"], "sessions.state"))
    if "app_states" in tables:
        for row in _rows(connection, "SELECT state FROM app_states WHERE app_name = ?", app_name):
            for key, value in _adk_state(row["state"], "app_states.state").items():
                state[f"app:{key}"] = value
    if "user_states" in tables:
        for row in _rows(
            connection,
            "SELECT state FROM user_states WHERE app_name = ? AND user_id = ?",
            app_name,
            user_id,
        ):
            for key, value in _adk_state(row["state"], "user_states.state").items():
                state[f"user:{key}"] = value
    events = []
    for row in _rows(
        connection,
        "SELECT id, invocation_id, timestamp, event_data FROM events "
        "WHERE app_name = ? AND user_id = ? AND session_id = ? ORDER BY timestamp, rowid",
        app_name,
        user_id,
        session_id,
    ):
        try:
            events.append(_stored_json(row["event_data"], f"event {row['id']}"))
        except _StoreError:
            # Shown by the adapter as a log entry with a warning; the raw column is kept.
            events.append(
                {
                    "id": row["id"],
                    "invocation_id": row["invocation_id"],
                    "timestamp": _epoch(row["timestamp"]),
                    "unparseable_event_data": _as_text(row["event_data"]),
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


def _adk_state(value: Any, where: str) -> dict[str, Any]:
    state = _stored_json(value, where)
    if not isinstance(state, dict):
        raise _StoreError(f"{where} is not a JSON object")
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


# JSON dumps holding several sessions ------------------------------------------------------------

_SPLITTERS = {
    "openai_agents": openai_agents.split_sessions,
    "google_adk": google_adk.split_sessions,
}


def split_json_dump(label: str, data: bytes) -> Iterator[ImportSource]:
    """The document in a file, or one document per session when it is a table dump (or an ADK
    list_sessions answer) holding several sessions, which the API refuses as one document."""
    if b'"agent_sessions"' in data or b'"sessions"' in data:
        parts = _split(data)
        if parts:
            for key, part in parts:
                yield ImportSource(label=f"{label}#{key}", body=_document_bytes(part))
            return
    yield ImportSource(label=label, body=data)


def _split(data: bytes) -> list[tuple[str, Any]] | None:
    try:
        doc = decode_document(data, services.decode_limits())
        splitter = _SPLITTERS.get(detect_format(doc).format_id)
    except (RejectedDocument, InvalidDocument):
        return None  # the ingest of the whole file reports it
    return splitter(doc) if splitter else None
