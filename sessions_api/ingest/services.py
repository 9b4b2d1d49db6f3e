"""Writes: ingest and delete. Keyword-only functions; entry points stay thin.

Ingest contract: bytes are decoded strictly, the format detected (or forced), the document
parsed into the canonical session, and then, in one database transaction, the body is stored as
a new version unless it equals the latest one byte for byte, and the index row and its derived
rows are replaced. An outcome is returned only after that commit.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import operator
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from sessions_api import db
from sessions_api.analytics import rollups
from sessions_api.domain import ParsedSession, ParseWarning
from sessions_api.domain import Session as CanonicalSession
from sessions_api.errors import (
    BodyNotFound,
    DomainError,
    InvalidDocument,
    RejectedDocument,
    RevisionConflict,
)
from sessions_api.formats import Detection, parse_resolved, resolve_format
from sessions_api.formats.base import json_type_name
from sessions_api.formats.decoding import (
    DecodeLimits,
    decode_document_laid_out,
    decode_utf8,
    split_batch_documents,
)
from sessions_api.formats.growing import GROWING_FORMATS, GrowingFormat
from sessions_api.formats.registry import FORCED_RULE
from sessions_api.ingest import appending, derived_rows, ids, incremental
from sessions_api.ingest.indexing import ModelUsageRow, SessionIndex, build_index
from sessions_api.lifecycle.alerts.evaluate import note_session_saved
from sessions_api.models import (
    DocumentVersion,
    ModelUsage,
    Session,
    SessionError,
    ToolCallRecord,
)
from sessions_api.search import index as search_index
from sessions_api.sessions.records import SessionSummary, summary_from_row
from sessions_api.storage import get_document_store
from sessions_api.storage.base import SharedPrefix

_EXTERNAL_ID_MAX = 512


@dataclass(frozen=True)
class IngestOutcome:
    id: str
    external_id: str
    format: str
    version: int
    created: bool
    changed: bool
    summary: SessionSummary
    warnings: list[ParseWarning]
    detected_by: str


@dataclass(frozen=True)
class BatchItemOutcome:
    index: int
    outcome: IngestOutcome | None = None
    error: DomainError | None = None  # the refusal, as a single ingest would raise it


@dataclass(frozen=True)
class BatchOutcome:
    results: list[BatchItemOutcome] = field(default_factory=list)


def decode_limits() -> DecodeLimits:
    return DecodeLimits(
        max_bytes=settings.INGEST_MAX_DOCUMENT_BYTES,
        max_depth=settings.INGEST_MAX_DEPTH,
        max_nodes=settings.INGEST_MAX_NODES,
    )


def ingest_document(
    *,
    body: bytes,
    format_id: str | None = None,
    external_id: str | None = None,
    source: str = DocumentVersion.Source.API,
    now: datetime | None = None,
    unchanged_if_stored_before: bool = False,
) -> IngestOutcome:
    """Store one document as received. Raises RejectedDocument, InvalidDocument or
    RevisionConflict; nothing is stored when it raises.

    ``unchanged_if_stored_before`` makes bytes equal to *any* stored version a no-op, not only
    the latest: bulk imports use it, so a folder holding two documents of one session (a
    LangGraph thread state and its history, say) does not add versions on every re-run. The API
    keeps the contract's rule (only the latest), so an agent can return to an earlier state.
    """
    now = now or timezone.now()
    prepared = _prepare_document(
        body=body, format_id=format_id, external_id=external_id, received_at=now
    )
    with transaction.atomic():
        return _store_prepared(
            prepared,
            source=source,
            now=now,
            unchanged_if_stored_before=unchanged_if_stored_before,
        )


def store_version_of_locked_session(
    *, row: Session, body: bytes, source: str, now: datetime
) -> IngestOutcome:
    """The ingest path for a caller that already holds ``row``'s lock (editing: it locks
    the row first, checks the version the editor started from, then writes).

    ``body`` is parsed as ``row``'s format and must keep ``row``'s id; it becomes the next
    version (or nothing changes when it equals the latest byte for byte). Must run inside the
    caller's transaction.
    """
    prepared = _prepare_document(
        body=body,
        format_id=row.format,
        external_id=row.external_id,
        received_at=now,
        first_received_at=row.first_received_at,
    )
    return _store_new_version(row, prepared, source=source, now=now)


@dataclass(frozen=True)
class _Growth:
    """A document whose messages start with every message of its session's latest version:
    parsed only in part until the session's lock says whether a merge applies
    (_derive_incrementally)."""

    hook: GrowingFormat
    doc: Any
    version: int  # the latest version when it was read
    # What the store needs to keep the body as a delta of that version without reading it:
    # its bytes, or (read from its append point) the length of the prefix the two share.
    previous: tuple[int, bytes] | SharedPrefix
    earlier: int  # raw messages of that version
    total: int  # raw messages of this document
    appended: ParsedSession  # the messages after those of that version, parsed
    external_id: str | None
    received_at: datetime


@dataclass(frozen=True)
class _PreparedDocument:
    body: bytes
    detection: Detection
    session: CanonicalSession  # with a growth: session-level fields only, no messages
    warnings: list[ParseWarning]
    key: str
    digest: str
    index: SessionIndex | None  # for a new session unless told first_received_at; None: growth
    growth: _Growth | None = None
    append_point: str | None = None  # where a later version may append to this one (JSON)


def _prepare_document(
    *,
    body: bytes,
    format_id: str | None,
    external_id: str | None,
    received_at: datetime,
    first_received_at: datetime | None = None,
    incremental_allowed: bool = True,
    format_detected: bool = False,
) -> _PreparedDocument:
    """Decode, detect (or force), parse and index: everything that needs no database, so none
    of it runs under the write lock. The index assumes a new session (first received now)
    unless ``first_received_at`` is given.

    A document that extends the latest version of its session (formats/growing.py) is parsed
    only as far as its id here: the rest waits for the session's lock (_store_new_version).
    When it repeats that version's bytes up to its last message (its append point), only what
    follows is even decoded (appending.py). ``format_detected``: ``format_id`` is what
    detection gave this very document (its whole parse after a growth)."""
    growth_allowed = incremental_allowed and first_received_at is None
    looked_up: dict[tuple[str, str], _Latest | None] = {}
    if growth_allowed:
        prepared = _prepare_appended(
            body,
            format_id=format_id,
            external_id=external_id,
            received_at=received_at,
            looked_up=looked_up,
        )
        if prepared is not None:
            return prepared
    laid_out = decode_document_laid_out(body, decode_limits())
    doc = laid_out.value
    if not isinstance(doc, dict | list):
        raise InvalidDocument(
            f"expected a JSON object or array, got {json_type_name(doc)}", code="not_a_document"
        )
    detection, envelope = resolve_format(doc, format_id=format_id)
    hook = GROWING_FORMATS.get(detection.format_id)
    digest, append_point = None, None
    if hook is not None and envelope is None:
        digest, append_point = appending.digest_and_point(
            body, laid_out, hook, detected=format_detected or not format_id
        )
    if hook is not None and envelope is None and growth_allowed:
        prepared = _prepare_growth(
            doc,
            body,
            detection,
            hook,
            external_id=external_id,
            received_at=received_at,
            looked_up=looked_up,
            digest=digest,
        )
        if prepared is not None:
            return dataclasses.replace(prepared, append_point=append_point)
    parsed = parse_resolved(doc, detection, envelope)
    session = parsed.session
    warnings = list(parsed.warnings)

    if len(session.messages) > settings.INGEST_MAX_MESSAGES:
        raise RejectedDocument(
            "too_many_messages",
            f"{len(session.messages)} messages; the limit is {settings.INGEST_MAX_MESSAGES}",
        )
    # Each call is an index row written under the write lock: bounded before the lock is taken.
    tool_calls = sum(len(message.tool_calls) for message in session.messages)
    if tool_calls > settings.INGEST_MAX_TOOL_CALLS:
        raise RejectedDocument(
            "too_many_tool_calls",
            f"{tool_calls} tool calls; the limit is {settings.INGEST_MAX_TOOL_CALLS}",
        )
    key = ids.normalized_session_key(
        _session_key(session.external_id, external_id, body, warnings),
        from_request=external_id is not None,
        warnings=warnings,
    )
    index = build_index(
        session,
        warnings,
        first_received_at=first_received_at or received_at,
        received_at=received_at,
    )
    return _PreparedDocument(
        body=body,
        detection=detection,
        session=session,
        warnings=warnings,
        key=key,
        digest=digest or hashlib.sha256(body).hexdigest(),
        index=index,
        append_point=append_point,
    )


def _prepare_appended(
    body: bytes,
    *,
    format_id: str | None,
    external_id: str | None,
    received_at: datetime,
    looked_up: dict[tuple[str, str], _Latest | None],
) -> _PreparedDocument | None:
    """The document prepared as a growth read from the append point of its session's latest
    version, or None when it is not one (appending.py): decoding only what follows the point.
    Sessions looked up are noted in ``looked_up`` for the whole path."""
    if len(body) < appending.MIN_BYTES:
        return None
    hooks = [GROWING_FORMATS[format_id]] if format_id in GROWING_FORMATS else []
    for hook in hooks if format_id else GROWING_FORMATS.values():
        prepared = _prepare_appended_as(
            body,
            hook,
            format_id=format_id,
            external_id=external_id,
            received_at=received_at,
            looked_up=looked_up,
        )
        if prepared is not None:
            return prepared
    return None


def _prepare_appended_as(
    body: bytes,
    hook: GrowingFormat,
    *,
    format_id: str | None,
    external_id: str | None,
    received_at: datetime,
    looked_up: dict[tuple[str, str], _Latest | None],
) -> _PreparedDocument | None:
    head = appending.read_head(body, hook)
    if head is None:
        return None
    # The session's key as the head tells it; checked again on the whole document below.
    found = _growth_header(hook, head.document(hook), 0, "", external_id, body)
    if found is None:
        return None
    key = found[1]
    latest = looked_up[(hook.format_id, key)] = _latest_version_of(hook.format_id, key)
    point = appending.AppendPoint.from_json(latest.append_point) if latest else None
    if latest is None or point is None:
        return None
    continued = appending.continue_from(
        body,
        hook,
        head,
        point,
        format_id=format_id,
        limits=decode_limits(),
        max_messages=settings.INGEST_MAX_MESSAGES,
    )
    if continued is None:
        return None
    total = point.messages + len(continued.appended)
    found = _growth_header(hook, continued.doc, total, continued.variant, external_id, body)
    if found is None or found[1] != key:
        return None
    header = found[0]
    try:
        appended = hook.parse_range(continued.doc, point.messages, total, variant=continued.variant)
    except InvalidDocument:
        return None  # the whole parse refuses it, with the error it would give anyway
    return _PreparedDocument(
        body=body,
        detection=continued.detection,
        session=header.session,
        warnings=[],
        key=key,
        digest=continued.digest,
        index=None,
        growth=_Growth(
            hook=hook,
            doc=continued.doc,
            version=latest.version,
            previous=SharedPrefix(version=latest.version, length=point.offset),
            earlier=point.messages,
            total=total,
            appended=appended,
            external_id=external_id,
            received_at=received_at,
        ),
        append_point=continued.point,
    )


def _growth_header(
    hook: GrowingFormat,
    doc: Any,
    total: int,
    variant: str,
    external_id: str | None,
    body: bytes,
) -> tuple[ParsedSession, str] | None:
    """The session-level fields of a growing document (no messages) and its session's key,
    or None when a whole parse is needed to be sure of them (a warning, no id of its own, an
    id the key normalises)."""
    warnings: list[ParseWarning] = []
    try:
        header = hook.parse_range(doc, total, total, variant=variant)
        if header.warnings or (header.session.external_id is None and external_id is None):
            return None
        key = ids.normalized_session_key(
            _session_key(header.session.external_id, external_id, body, warnings),
            from_request=external_id is not None,
            warnings=warnings,
        )
    except InvalidDocument:
        return None  # the whole parse refuses it, with the error it would give anyway
    if warnings:
        return None  # a normalised id: the whole parse reports it
    return header, key


def _prepare_growth(
    doc: Any,
    body: bytes,
    detection: Detection,
    hook: GrowingFormat,
    *,
    external_id: str | None,
    received_at: datetime,
    looked_up: dict[tuple[str, str], _Latest | None],
    digest: str | None,
) -> _PreparedDocument | None:
    """The document prepared as a growth of its session's latest version, or None when it is
    not one (a new session, an edited or shortened message list, no id of its own).
    ``looked_up``: sessions already looked up for this document; ``digest``: the body's, if
    known."""
    messages = hook.message_list(doc)
    # Checked on the whole document, before any look-up: it holds the earlier messages.
    if messages is None or len(messages) > settings.INGEST_MAX_MESSAGES or not hook.plain(messages):
        return None
    found = _growth_header(hook, doc, len(messages), detection.variant, external_id, body)
    if found is None:
        return None
    header, key = found
    lookup = (detection.format_id, key)
    latest = looked_up[lookup] if lookup in looked_up else _latest_version_of(*lookup)
    if latest is None:
        return None
    session_id, version = latest.session_id, latest.version
    try:
        previous_body = get_document_store().get(session_id=str(session_id), version=version)
    except BodyNotFound:
        return None
    try:
        previous_doc = orjson.loads(previous_body)  # it passed the strict decoding when stored
    except orjson.JSONDecodeError:
        return None
    if hook.message_context(previous_doc) != hook.message_context(doc):
        return None
    earlier_messages = hook.message_list(previous_doc)
    if earlier_messages is None or len(earlier_messages) > len(messages):
        return None
    try:
        # Compared as JSON text, not with ==, which takes 1 for 1.0 and for true.
        extends = orjson.dumps(messages[: len(earlier_messages)]) == orjson.dumps(earlier_messages)
    except TypeError:
        return None
    if not extends:
        return None
    try:
        # Refused here, outside any transaction, as the whole parse would refuse it: the
        # messages before these are those of a stored version.
        appended = hook.parse_range(
            doc, len(earlier_messages), len(messages), variant=detection.variant
        )
    except InvalidDocument:
        return None
    return _PreparedDocument(
        body=body,
        detection=detection,
        session=header.session,
        warnings=[],
        key=key,
        digest=digest or hashlib.sha256(body).hexdigest(),
        index=None,
        growth=_Growth(
            hook=hook,
            doc=doc,
            version=version,
            previous=(version, previous_body),
            earlier=len(earlier_messages),
            total=len(messages),
            appended=appended,
            external_id=external_id,
            received_at=received_at,
        ),
    )


@dataclass(frozen=True)
class _Latest:
    """A session's latest version as the growth paths look it up."""

    session_id: str
    version: int
    append_point: str | None  # of that version (JSON)


def _latest_version_of(format_id: str, external_id: str) -> _Latest | None:
    """The latest version of the session with that key and its append point, or None: one
    indexed SELECT without the ORM's query building, which cost a fresh document a fifth of its
    ingest."""
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute(_latest_version_sql(connection.vendor), [format_id, external_id])
        found = cursor.fetchone()
    if found is None:
        return None
    return _Latest(str(uuid.UUID(str(found[0]))), found[1], found[2])


@functools.cache
def _latest_version_sql(vendor: str) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    meta, version_meta = Session._meta, DocumentVersion._meta
    column = {
        name: quote(meta.get_field(name).column)
        for name in ("id", "latest_version", "format", "external_id")
    }
    version_column = {
        name: quote(version_meta.get_field(name).column)
        for name in ("session", "number", "append_point")
    }
    return (
        f"SELECT s.{column['id']}, s.{column['latest_version']}, v.{version_column['append_point']}"
        f" FROM {quote(meta.db_table)} s LEFT JOIN {quote(version_meta.db_table)} v"
        f" ON v.{version_column['session']} = s.{column['id']}"
        f" AND v.{version_column['number']} = s.{column['latest_version']}"
        f" WHERE s.{column['format']} = %s AND s.{column['external_id']} = %s"
    )


def _parsed_whole(prepared: _PreparedDocument) -> _PreparedDocument:
    """``prepared`` parsed and indexed whole (a growth that turned out not to merge)."""
    if prepared.growth is None:
        return prepared
    whole = _prepare_document(
        body=prepared.body,
        format_id=prepared.detection.format_id,
        external_id=prepared.growth.external_id,
        received_at=prepared.growth.received_at,
        incremental_allowed=False,
        format_detected=prepared.detection.rule != FORCED_RULE,
    )
    return dataclasses.replace(whole, detection=prepared.detection)


def _store_prepared(
    prepared: _PreparedDocument,
    *,
    source: str,
    now: datetime,
    unchanged_if_stored_before: bool = False,
) -> IngestOutcome:
    """Inside the caller's transaction: insert a new session, or lock the existing one and
    store the next version."""
    if prepared.growth is not None:
        row = _lock_session(prepared.detection.format_id, prepared.key)
        if row is not None:
            return _store_in_locked_session(
                row,
                prepared,
                source=source,
                now=now,
                unchanged_if_stored_before=unchanged_if_stored_before,
            )
        prepared = _parsed_whole(prepared)  # deleted since it was read: a new session after all
    detection, warnings = prepared.detection, prepared.warnings
    row = _insert_new_session(prepared, now=now)
    if row is not None:
        _put_body(session_id=str(row.id), version=1, body=prepared.body, sha256=prepared.digest)
        _insert_version(row, prepared, number=1, source=source, now=now)
        _insert_derived_rows(row, prepared.index)
        note_session_saved(row, now=now)  # the alert outbox, in this transaction
        return _outcome(
            row, created=True, changed=True, warnings=warnings, detected_by=detection.rule
        )
    row = _lock_session(detection.format_id, prepared.key)
    if row is None:  # deleted between the insert that found it and this lock: new after all
        return _store_prepared(
            prepared, source=source, now=now, unchanged_if_stored_before=unchanged_if_stored_before
        )
    return _store_in_locked_session(
        row, prepared, source=source, now=now, unchanged_if_stored_before=unchanged_if_stored_before
    )


def _lock_session(format_id: str, key: str) -> Session | None:
    """The session with that format and key, locked until the transaction ends; None when
    there is none."""
    rows = db.select_rows(Session, ("format", "external_id"), (format_id, key), for_update=True)
    return rows[0] if rows else None


def _store_in_locked_session(
    row: Session,
    prepared: _PreparedDocument,
    *,
    source: str,
    now: datetime,
    unchanged_if_stored_before: bool,
) -> IngestOutcome:
    if unchanged_if_stored_before and row.versions.filter(sha256=prepared.digest).exists():
        prepared = _parsed_whole(prepared)  # for its warnings
        return _outcome(
            row,
            created=False,
            changed=False,
            warnings=prepared.warnings,
            detected_by=prepared.detection.rule,
        )
    return _store_new_version(row, prepared, source=source, now=now)


def _insert_new_session(prepared: _PreparedDocument, *, now: datetime) -> Session | None:
    """The new session's index row, inserted; None when its (format, external id) exists.

    Inserting first (ON CONFLICT DO NOTHING, which SQLite and PostgreSQL both understand)
    makes a new session one statement with no lookup and no savepoint: a concurrent insert of
    the same key makes this one a no-op instead of an error that would abort the transaction.
    """
    given = {
        "format": prepared.detection.format_id,
        "external_id": prepared.key,
        "detection_rule": prepared.detection.rule[:200],
        "first_received_at": now,
        "last_received_at": now,
        "latest_version": 1,
        **prepared.index.columns,
    }
    names, attnames, fields = _session_fields()
    # What Session(**given) would hold, without building the instance first: its defaults
    # (a new id among them) for the fields the index does not set.
    values = [
        given[a] if a in given else f.get_default() for a, f in zip(attnames, fields, strict=True)
    ]
    if not db.insert_rows(Session, names, [values], if_absent=True):
        return None
    return Session.from_db(DEFAULT_DB_ALIAS, attnames, values)


@functools.cache
def _session_fields() -> tuple[tuple[str, ...], list[str], list[Any]]:
    """(names, attribute names, fields) of the session's columns: the insert's statement is
    cached by the names, which hash faster than the fields themselves."""
    fields = Session._meta.concrete_fields
    return tuple(f.name for f in fields), [f.attname for f in fields], list(fields)


def _store_new_version(
    row: Session, prepared: _PreparedDocument, *, source: str, now: datetime
) -> IngestOutcome:
    """Under ``row``'s lock: store the body as the next version unless it equals the latest,
    and replace the index row and its derived rows."""
    key = derived_rows.session_key(row)
    if derived_rows.latest_digest(key, row.latest_version) == prepared.digest:
        prepared = _parsed_whole(prepared)  # for its warnings
        return _outcome(
            row,
            created=False,
            changed=False,
            warnings=prepared.warnings,
            detected_by=prepared.detection.rule,
        )
    _check_revision(row, prepared.session.revision, prepared.digest)
    merged = previous = None
    growth = prepared.growth
    if growth is not None and growth.version == row.latest_version:
        merged = _derive_incrementally(row, key, growth, now=now)
        previous = growth.previous  # spares the store reading that version again
    if merged is None:
        prepared = _parsed_whole(prepared)
    elif merged.columns["tool_call_count"] > settings.INGEST_MAX_TOOL_CALLS:
        # The whole parse checks this before the lock; a merge knows the total only here.
        raise RejectedDocument(
            "too_many_tool_calls",
            f"{merged.columns['tool_call_count']} tool calls; "
            f"the limit is {settings.INGEST_MAX_TOOL_CALLS}",
        )
    detection, session, warnings = prepared.detection, prepared.session, prepared.warnings
    number = row.latest_version + 1
    # Where the session counted in the analytics rollups before this version: a merge moves
    # every derived row to the session's end, so its start and end say it; a whole parse
    # replaces the rows, so they are read.
    counted_at = [row.started_at, row.updated_at]
    if merged is None:
        counted_at = [row.started_at, *rollups.event_times_of(session_id=row.pk)]
    _put_body(
        session_id=str(row.id),
        version=number,
        body=prepared.body,
        previous=previous,
        sha256=prepared.digest,
    )
    _insert_version(row, prepared, number=number, source=source, now=now)
    if merged is not None:
        warnings = [*warnings, *merged.warnings]
        _write_merged_index(
            row, key, merged, version=number, received_at=now, detection_rule=detection.rule
        )
        rollups.note_session_moved(before=counted_at, after=[row.started_at, row.updated_at])
        note_session_saved(row, now=now)  # the alert outbox, in this transaction
        return _outcome(
            row, created=False, changed=True, warnings=warnings, detected_by=detection.rule
        )
    index = prepared.index
    assert index is not None
    if index.uses_first_received_at:
        # Built assuming the session was new; it started at its first receipt instead.
        index = build_index(
            session, warnings, first_received_at=row.first_received_at, received_at=now
        )
    _write_index(row, index, version=number, received_at=now, detection_rule=detection.rule)
    rollups.note_session_moved(
        before=counted_at,
        after=[
            row.started_at,
            *(call.occurred_at for call in index.tool_calls),
            *(error.occurred_at for error in index.errors),
        ],
    )
    note_session_saved(row, now=now)  # the alert outbox, in this transaction
    return _outcome(row, created=False, changed=True, warnings=warnings, detected_by=detection.rule)


# A batch is written in transactions of at most this many bytes of documents: few enough
# commits to be fast, bounded memory (parsed documents wait for their transaction) and a
# bounded time holding SQLite's write lock.
BATCH_TRANSACTION_BYTES = 4 * 1024 * 1024


def ingest_batch(
    *,
    body: bytes,
    format_id: str | None = None,
    source: str = DocumentVersion.Source.BATCH,
    now: datetime | None = None,
) -> BatchOutcome:
    """Ingest each document of ``{"documents": [...]}`` on its own: one bad item never blocks
    the others. Each item's stored bytes are exactly its bytes inside the batch body.

    Items are parsed before any transaction begins and then written together, a few MB of
    documents per transaction, each item in a savepoint of its own. A database failure fails
    the request; retrying it is safe, since stored items then answer "unchanged".
    """
    if len(body) > settings.INGEST_MAX_BATCH_BYTES:
        raise RejectedDocument(
            "too_large",
            f"batch is {len(body)} bytes; the limit is {settings.INGEST_MAX_BATCH_BYTES}",
        )
    text = decode_utf8(body)
    if not text.strip():
        raise RejectedDocument("empty_document", "empty request body")
    items = split_batch_documents(text, max_items=settings.INGEST_MAX_BATCH_ITEMS)
    if len(items) > settings.INGEST_MAX_BATCH_ITEMS:
        raise RejectedDocument(
            "too_many_documents",
            f"{len(items)} documents; the limit per batch is {settings.INGEST_MAX_BATCH_ITEMS}",
        )
    now = now or timezone.now()
    results: list[BatchItemOutcome] = []
    pending: list[tuple[int, _PreparedDocument]] = []
    pending_bytes = 0
    for index, item_text in enumerate(items):
        try:
            prepared = _prepare_document(
                body=item_text.encode("utf-8"),
                format_id=format_id,
                external_id=None,
                received_at=now,
            )
        except (RejectedDocument, InvalidDocument) as exc:
            results.append(BatchItemOutcome(index=index, error=exc))
            continue
        pending.append((index, prepared))
        pending_bytes += len(prepared.body)
        if pending_bytes >= BATCH_TRANSACTION_BYTES:
            results.extend(_store_batch_items(pending, source=source, now=now))
            pending, pending_bytes = [], 0
    results.extend(_store_batch_items(pending, source=source, now=now))
    results.sort(key=lambda result: result.index)
    return BatchOutcome(results=results)


def _store_batch_items(
    pending: list[tuple[int, _PreparedDocument]], *, source: str, now: datetime
) -> list[BatchItemOutcome]:
    results = []
    if not pending:
        return results
    with transaction.atomic():
        for index, prepared in pending:
            try:
                with transaction.atomic():
                    outcome = _store_prepared(prepared, source=source, now=now)
            except (RevisionConflict, RejectedDocument, InvalidDocument) as exc:
                # The last two only from a document whose growth did not merge, parsed whole
                # under the lock: refused as it would have been before the transaction.
                results.append(BatchItemOutcome(index=index, error=exc))
            else:
                results.append(BatchItemOutcome(index=index, outcome=outcome))
    return results


def delete_session(*, session_id: str) -> bool:
    """Delete a session with every version and derived row. False if there was none.

    The index goes first: bodies left behind by a failure after the commit are orphans the
    reconcile job removes, whereas an index row pointing at deleted bodies could not be repaired.
    """
    store = get_document_store()
    with transaction.atomic():
        row = Session.objects.select_for_update().filter(id=session_id).first()
        if row is None:
            return False
        key = str(row.id)
        # Its analytics hours shrink without any session in them changing.
        rollups.mark_hours_dirty(hours=rollups.hours_touched_by(session_ids=[row.pk]))
        row.delete()
        if store.transactional_with_index:
            store.delete_session(session_id=key)
        else:
            transaction.on_commit(lambda: store.delete_session(session_id=key))
    return True


def _put_body(
    *,
    session_id: str,
    version: int,
    body: bytes,
    previous: tuple[int, bytes] | SharedPrefix | None = None,
    sha256: str | None = None,
) -> None:
    store = get_document_store()
    try:
        store.put(
            session_id=session_id, version=version, body=body, previous=previous, sha256=sha256
        )
    except ValueError:
        if store.transactional_with_index:
            raise
        # Different bytes already at this key, yet no index row for it (we hold the session's
        # row lock and `version` is one past the latest indexed): an orphan of a write whose
        # index transaction never committed. Replace it.
        store.delete_versions(session_id=session_id, versions=[version])
        store.put(session_id=session_id, version=version, body=body, sha256=sha256)


# --- internals --------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _session_key(
    document_id: str | None, requested: str | None, body: bytes, warnings: list[ParseWarning]
) -> str:
    if requested is not None:
        requested = requested.strip()
        if not requested or len(requested) > _EXTERNAL_ID_MAX or _CONTROL.search(requested):
            raise InvalidDocument(
                "external_id must be 1-512 printable characters",
                code="invalid_external_id",
                path="?external_id",
            )
        if document_id is not None and document_id != requested:
            raise InvalidDocument(
                f"?external_id={requested!r} contradicts the document's own id {document_id!r}",
                code="external_id_conflict",
                path="?external_id",
            )
        return requested
    if document_id is not None:
        if len(document_id) > _EXTERNAL_ID_MAX:
            raise InvalidDocument(
                "session id is longer than 512 characters", path="/id", code="out_of_range"
            )
        return document_id
    # No id anywhere: a stable id from the content, so re-posting the same bytes does not
    # duplicate. A changed transcript becomes a new session, which is
    # why the warning asks for ?external_id=.
    derived = "sha256:" + hashlib.sha256(body).hexdigest()[:32]
    warnings.append(
        ParseWarning(
            code="derived_session_id",
            message="the document has no session id; derived one from its content. "
            "Pass ?external_id= to keep versions of one conversation together.",
        )
    )
    return derived


def _check_revision(row: Session, revision: int | None, digest: str) -> None:
    if revision is None:
        return
    clash = (
        row.versions.filter(revision=revision).exclude(sha256=digest).order_by("-number").first()
    )
    if clash is not None:
        raise RevisionConflict(
            f"revision {revision} of this session is already stored (version {clash.number}) "
            "with different content",
            details={
                "revision": revision,
                "stored_version": clash.number,
                "stored_sha256": clash.sha256,
            },
        )


def _insert_version(
    row: Session, prepared: _PreparedDocument, *, number: int, source: str, now: datetime
) -> None:
    names = (
        "session",
        "number",
        "sha256",
        "size_bytes",
        "received_at",
        "revision",
        "source",
        "append_point",
    )
    values = (row.pk, number, prepared.digest, len(prepared.body), now, prepared.session.revision)
    db.insert_rows(DocumentVersion, names, [(*values, source, prepared.append_point)])


def _derive_incrementally(
    row: Session, key: Any, growth: _Growth, *, now: datetime
) -> incremental.MergedIndex | None:
    """Under ``row``'s lock, with ``growth`` based on its latest version: the new version's
    index merged with the stored one, or None when only a whole parse is sure to be right."""
    if growth.earlier != row.message_count:
        return None  # raw and canonical messages are not one to one here: nothing to merge by
    stored_warnings = row.warnings or []
    first_pending = None
    if stored_warnings:
        if not incremental.may_merge(_stored_derivation(row, [], [], [])):
            return None
        first_pending = derived_rows.first_pending_call(key)
        if first_pending is None:
            return None
    start = min(growth.earlier, first_pending if first_pending is not None else growth.earlier)
    # The new document's variant (an "agent" role or a "variables" key can change it).
    hook, doc, variant = growth.hook, growth.doc, growth.appended.session.format_variant
    parsed = (
        growth.appended
        if start == growth.earlier
        else hook.parse_range(doc, start, growth.total, variant=variant)
    )
    call_ids = [call.call_id[:255] for m in parsed.session.messages for call in m.tool_calls]
    reused = derived_rows.reuses_call_id(key, call_ids, before=start)
    replaced_calls: list[tuple[str, str]] = []
    replaced_errors: list[tuple[str, bool]] = []
    if start < row.message_count:
        replaced_calls, replaced_errors = derived_rows.replaced_rows(key, start)
    return incremental.merge(
        _stored_derivation(
            row,
            derived_rows.model_usage(key),
            replaced_calls,
            replaced_errors,
            events_before_start=search_index.events_before(row.pk, start),
        ),
        parsed.session,
        list(parsed.warnings),
        start=start,
        earlier_call_ids_reused=reused,
        first_received_at=row.first_received_at,
        received_at=now,
    )


def _stored_derivation(
    row: Session,
    usage: list[ModelUsageRow],
    replaced_calls: list[tuple[str, str]],
    replaced_errors: list[tuple[str, bool]],
    *,
    events_before_start: int | None = None,
) -> incremental.StoredDerivation:
    return incremental.StoredDerivation(
        message_count=row.message_count,
        tool_call_count=row.tool_call_count,
        tool_error_count=row.tool_error_count,
        error_count=row.error_count,
        warning_count=row.warning_count,
        warnings=list(row.warnings or []),
        model_names=list(row.model_names or []),
        model_usage=usage,
        replaced_tool_calls=replaced_calls,
        replaced_errors=replaced_errors,
        events_before_start=events_before_start,
    )


def _write_merged_index(
    row: Session,
    key: Any,
    merged: incremental.MergedIndex,
    *,
    version: int,
    received_at: datetime,
    detection_rule: str,
) -> None:
    """The merge's rows written: those of the re-derived messages (search entries among them)
    replace the stored ones from ``merged.start`` on, the rest stay (with the session's new
    end as their time, which is every row's time when no message has one: a merge's
    condition)."""
    stored_rows = row.tool_call_count + row.error_count + row.warning_count > 0
    previous_updated_at = row.updated_at
    _update_session_row(
        row, merged.columns, version=version, received_at=received_at, detection_rule=detection_rule
    )
    if stored_rows:
        # The stored rows of the re-derived messages, and those of logs (a merged document
        # has none); both are written anew below.
        derived_rows.delete_from(key, merged.start)
        if row.updated_at != previous_updated_at:
            derived_rows.move_to_session_end(key, row.updated_at, before=merged.start)
    search_index.remove_from(row.pk, merged.first_event)
    derived_rows.delete_model_usage(key)
    _insert_derived_rows(
        row,
        SessionIndex(
            columns=merged.columns,
            tool_calls=merged.tool_calls,
            errors=merged.errors,
            model_usage=merged.model_usage,
            search_entries=merged.search_entries,
        ),
    )


def _write_index(
    row: Session, index: SessionIndex, *, version: int, received_at: datetime, detection_rule: str
) -> None:
    _update_session_row(
        row, index.columns, version=version, received_at=received_at, detection_rule=detection_rule
    )
    derived_rows.delete_all(derived_rows.session_key(row))
    search_index.write_entries(row.pk, [], replace=True)
    _insert_derived_rows(row, index)


def _update_session_row(
    row: Session,
    columns: dict[str, Any],
    *,
    version: int,
    received_at: datetime,
    detection_rule: str,
) -> None:
    values = {
        **columns,
        # A new document is new life: it supersedes earlier expiry and stuck marks.
        "status_before_expiry": "",
        "expired_at": None,
        "stuck_since": None,
        "latest_version": version,
        "last_received_at": received_at,
        "detection_rule": detection_rule[:200],
    }
    if row.expires_at_override is not None:
        # An editor's expiry for a format whose document records none (editing.document.set_expiry).
        values["expires_at"] = row.expires_at_override
    # Only the columns that change are written: a save of a growing session changes a few.
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    for name in changed:
        setattr(row, name, values[name])
    if changed:
        db.update_row(Session, row.pk, changed, [values[name] for name in changed])


def _insert_derived_rows(row: Session, index: SessionIndex) -> None:
    for model, rows in (
        (ToolCallRecord, index.tool_calls),
        (SessionError, index.errors),
        (ModelUsage, index.model_usage),
    ):
        if rows:
            names = ("session", *rows[0].__dataclass_fields__)
            values_of = operator.attrgetter(*names[1:])
            values = [(row.pk, *values_of(r)) for r in rows]
            db.insert_rows(model, names, values)
    search_index.write_entries(row.pk, index.search_entries)


def _outcome(
    row: Session, *, created: bool, changed: bool, warnings: list[ParseWarning], detected_by: str
) -> IngestOutcome:
    return IngestOutcome(
        id=str(row.id),
        external_id=row.external_id,
        format=row.format,
        version=row.latest_version,
        created=created,
        changed=changed,
        summary=summary_from_row(row),
        warnings=warnings,
        detected_by=detected_by,
    )
