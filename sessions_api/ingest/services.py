"""Writes: ingest and delete. Keyword-only functions; entry points stay thin.

Ingest contract: bytes are decoded strictly, the format detected (or forced), the document
parsed into the canonical session, and then, in one database transaction, the body is stored as
a new version unless it equals the latest one byte for byte, and the index row and its derived
rows are replaced. An outcome is returned only after that commit.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone

from sessions_api import db
from sessions_api.domain import ParseWarning
from sessions_api.domain import Session as CanonicalSession
from sessions_api.errors import DomainError, InvalidDocument, RejectedDocument, RevisionConflict
from sessions_api.formats import Detection, parse_document
from sessions_api.formats.base import json_type_name
from sessions_api.formats.decoding import (
    DecodeLimits,
    decode_document,
    decode_utf8,
    split_batch_documents,
)
from sessions_api.ingest.indexing import SessionIndex, build_index
from sessions_api.lifecycle.alerts.evaluate import note_session_saved
from sessions_api.models import (
    DocumentVersion,
    ModelUsage,
    Session,
    SessionError,
    ToolCallRecord,
)
from sessions_api.sessions.records import SessionSummary, summary_from_row
from sessions_api.storage import get_document_store

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
class _PreparedDocument:
    body: bytes
    detection: Detection
    session: CanonicalSession
    warnings: list[ParseWarning]
    key: str
    digest: str
    index: SessionIndex  # for a new session unless told first_received_at (_store_new_version)


def _prepare_document(
    *,
    body: bytes,
    format_id: str | None,
    external_id: str | None,
    received_at: datetime,
    first_received_at: datetime | None = None,
) -> _PreparedDocument:
    """Decode, detect (or force), parse and index: everything that needs no database, so none
    of it runs under the write lock. The index assumes a new session (first received now)
    unless ``first_received_at`` is given."""
    doc = decode_document(body, decode_limits())
    if not isinstance(doc, dict | list):
        raise InvalidDocument(
            f"expected a JSON object or array, got {json_type_name(doc)}", code="not_a_document"
        )
    detection, parsed = parse_document(doc, format_id=format_id)
    session = parsed.session
    warnings = list(parsed.warnings)

    if len(session.messages) > settings.INGEST_MAX_MESSAGES:
        raise RejectedDocument(
            "too_many_messages",
            f"{len(session.messages)} messages; the limit is {settings.INGEST_MAX_MESSAGES}",
        )
    key = _session_key(session.external_id, external_id, body, warnings)
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
        digest=hashlib.sha256(body).hexdigest(),
        index=index,
    )


def _store_prepared(
    prepared: _PreparedDocument,
    *,
    source: str,
    now: datetime,
    unchanged_if_stored_before: bool = False,
) -> IngestOutcome:
    """Inside the caller's transaction: insert a new session, or lock the existing one and
    store the next version."""
    detection, warnings = prepared.detection, prepared.warnings
    row = _insert_new_session(prepared, now=now)
    if row is not None:
        _put_body(session_id=str(row.id), version=1, body=prepared.body)
        _insert_version(row, prepared, number=1, source=source, now=now)
        _insert_derived_rows(row, prepared.index)
        note_session_saved(row, now=now)  # the alert outbox, in this transaction
        return _outcome(
            row, created=True, changed=True, warnings=warnings, detected_by=detection.rule
        )
    row = Session.objects.select_for_update().get(
        format=detection.format_id, external_id=prepared.key
    )
    if unchanged_if_stored_before and row.versions.filter(sha256=prepared.digest).exists():
        return _outcome(
            row, created=False, changed=False, warnings=warnings, detected_by=detection.rule
        )
    return _store_new_version(row, prepared, source=source, now=now)


def _insert_new_session(prepared: _PreparedDocument, *, now: datetime) -> Session | None:
    """The new session's index row, inserted; None when its (format, external id) exists.

    Inserting first (ON CONFLICT DO NOTHING, which SQLite and PostgreSQL both understand)
    makes a new session one statement with no lookup and no savepoint: a concurrent insert of
    the same key makes this one a no-op instead of an error that would abort the transaction.
    """
    row = Session(
        format=prepared.detection.format_id,
        external_id=prepared.key,
        detection_rule=prepared.detection.rule[:200],
        first_received_at=now,
        last_received_at=now,
        latest_version=1,
        **prepared.index.columns,
    )
    fields = Session._meta.concrete_fields
    values = [getattr(row, f.attname) for f in fields]
    if not db.insert_rows(Session, fields, [values], if_absent=True):
        return None
    row._state.adding = False
    row._state.db = DEFAULT_DB_ALIAS
    return row


def _store_new_version(
    row: Session, prepared: _PreparedDocument, *, source: str, now: datetime
) -> IngestOutcome:
    """Under ``row``'s lock: store the body as the next version unless it equals the latest,
    and replace the index row and its derived rows."""
    detection, session, warnings = prepared.detection, prepared.session, prepared.warnings
    latest = row.versions.order_by("-number").first()
    if latest is not None and latest.sha256 == prepared.digest:
        return _outcome(
            row, created=False, changed=False, warnings=warnings, detected_by=detection.rule
        )
    _check_revision(row, session.revision, prepared.digest)
    number = row.latest_version + 1
    _put_body(session_id=str(row.id), version=number, body=prepared.body)
    _insert_version(row, prepared, number=number, source=source, now=now)
    index = prepared.index
    if index.uses_first_received_at:
        # Built assuming the session was new; it started at its first receipt instead.
        index = build_index(
            session, warnings, first_received_at=row.first_received_at, received_at=now
        )
    _write_index(row, index, version=number, received_at=now, detection_rule=detection.rule)
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
    items = split_batch_documents(text)
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
            except RevisionConflict as exc:
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
        row.delete()
        if store.transactional_with_index:
            store.delete_session(session_id=key)
        else:
            transaction.on_commit(lambda: store.delete_session(session_id=key))
    return True


def _put_body(*, session_id: str, version: int, body: bytes) -> None:
    store = get_document_store()
    try:
        store.put(session_id=session_id, version=version, body=body)
    except ValueError:
        if store.transactional_with_index:
            raise
        # Different bytes already at this key, yet no index row for it (we hold the session's
        # row lock and `version` is one past the latest indexed): an orphan of a write whose
        # index transaction never committed. Replace it.
        store.delete_versions(session_id=session_id, versions=[version])
        store.put(session_id=session_id, version=version, body=body)


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
    names = ("session", "number", "sha256", "size_bytes", "received_at", "revision", "source")
    values = (row.pk, number, prepared.digest, len(prepared.body), now, prepared.session.revision)
    db.insert_rows(DocumentVersion, names, [(*values, source)])


def _write_index(
    row: Session, index: SessionIndex, *, version: int, received_at: datetime, detection_rule: str
) -> None:
    for column, value in index.columns.items():
        setattr(row, column, value)
    if row.expires_at_override is not None:
        # An editor's expiry for a format whose document records none (editing.document.set_expiry).
        row.expires_at = row.expires_at_override
    # A new document is new life: it supersedes earlier expiry and stuck marks.
    row.status_before_expiry = ""
    row.expired_at = None
    row.stuck_since = None
    row.latest_version = version
    row.last_received_at = received_at
    row.detection_rule = detection_rule[:200]
    row.save()
    ToolCallRecord.objects.filter(session=row).delete()
    SessionError.objects.filter(session=row).delete()
    ModelUsage.objects.filter(session=row).delete()
    _insert_derived_rows(row, index)


def _insert_derived_rows(row: Session, index: SessionIndex) -> None:
    for model, rows in (
        (ToolCallRecord, index.tool_calls),
        (SessionError, index.errors),
        (ModelUsage, index.model_usage),
    ):
        if rows:
            names = ("session", *rows[0].__dataclass_fields__)
            values = [(row.pk, *(getattr(r, name) for name in names[1:])) for r in rows]
            db.insert_rows(model, names, values)


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
