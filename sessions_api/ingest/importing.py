"""Bulk import from files: single JSON documents, JSONL, and folders of them (recursively).

Each document goes through the same ingest as the API, so re-running an import stores nothing
twice (identical bytes are "unchanged"). A bad file or line is reported and never stops the rest.

An AgentFlow ``FileSystemStorage`` session folder (``sessions/<id>/session.json`` with its notes
and artifacts) is one unit: the walk yields the folder instead of its files, and it is imported
as one ``agentflow`` export bundle (``formats/agentflow/stores.py`` builds it).

SQLite session stores (an OpenAI Agents ``SQLiteSession`` file, a Google ADK
``SqliteSessionService``/``DatabaseSessionService`` file) are recognised by their first bytes and
their tables, and every session in them is one document (:func:`read_sqlite_sources`; each
format's ``stores.py`` reads its own tables); a JSON dump holding several sessions is split into
one document per session (:func:`split_json_dump`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessions_api.errors import InvalidDocument, RejectedDocument, RevisionConflict
from sessions_api.formats import detect_format
from sessions_api.formats.agentflow import stores as agentflow_stores
from sessions_api.formats.decoding import decode_document
from sessions_api.formats.google_adk import parse as google_adk
from sessions_api.formats.google_adk import stores as google_adk_stores
from sessions_api.formats.openai_agents import parse as openai_agents
from sessions_api.formats.openai_agents import stores as openai_agents_stores
from sessions_api.formats.stores import connect_read_only, document_bytes, table_names
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
            units = agentflow_stores.session_folders(path)
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
        elif path.name == agentflow_stores.SESSION_FILE and agentflow_stores.is_session_folder(
            path.parent
        ):
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


def read_agentflow_session(session_dir: Path) -> ImportSource:
    """One AgentFlow session folder as one document to import (format ``agentflow``)."""
    label = str(session_dir)
    try:
        body = agentflow_stores.export_bundle(session_dir, limits=services.decode_limits())
    except (RejectedDocument, ValueError):
        # session.json is not strict JSON (NaN, duplicate keys...): import it as it is, so the
        # ingest answer says what is wrong with it.
        body = (session_dir / agentflow_stores.SESSION_FILE).read_bytes()
    return ImportSource(label=label, body=body, format_id="agentflow")


# --- SQLite session stores ------------------------------------------------------------------
#
# A file whose first bytes are the SQLite header is opened read-only and recognised by its
# tables; each format's stores.py turns its tables into one document per session. Anything else
# is one failure line that names the tables found.

SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_SUFFIXES = {".sqlite", ".sqlite3", ".db"}


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
        connection = connect_read_only(path)
    except sqlite3.Error as exc:
        return [_failed(label, "unreadable_database", str(exc))]
    try:
        tables = table_names(connection)
        limits = services.decode_limits()
        sessions = []
        is_agents_store = tables >= openai_agents_stores.TABLES
        is_adk_store = tables >= google_adk_stores.TABLES
        if is_agents_store:
            sessions.extend(
                openai_agents_stores.read_sqlite_store(connection, tables=tables, limits=limits)
            )
        if is_adk_store:
            sessions.extend(
                google_adk_stores.read_sqlite_store(connection, tables=tables, limits=limits)
            )
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
    except sqlite3.Error as exc:
        return [_failed(label, "unreadable_database", str(exc))]
    finally:
        connection.close()
    return [
        ImportSource(
            label=label if session.key is None else f"{label}#{session.key}",
            body=session.body,
            format_id=session.format_id,
            error=session.error,
        )
        for session in sessions
    ]


def _failed(label: str, code: str, message: str) -> ImportSource:
    return ImportSource(label=label, body=b"", error=f"{code}: {message}")


# --- JSON dumps holding several sessions ------------------------------------------------

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
                yield ImportSource(label=f"{label}#{key}", body=document_bytes(part))
            return
    yield ImportSource(label=label, body=data)


def _split(data: bytes) -> list[tuple[str, Any]] | None:
    try:
        doc = decode_document(data, services.decode_limits())
        splitter = _SPLITTERS.get(detect_format(doc).format_id)
    except (RejectedDocument, InvalidDocument):
        return None  # the ingest of the whole file reports it
    return splitter(doc) if splitter else None
