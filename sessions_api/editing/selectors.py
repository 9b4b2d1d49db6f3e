"""Reads for editing: the latest document with its version, what an editor may change, the
audit log, checkpoints and branch links. Keyword-only, typed; frozen records, never ORM rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q

from sessions_api import jsondiff
from sessions_api.errors import InvalidQuery, NotEditable
from sessions_api.formats import editing as document_editors
from sessions_api.formats.editing import Capabilities
from sessions_api.models import AuditEntry, Checkpoint, Session
from sessions_api.sessions import cursors
from sessions_api.storage import decode_stored_body, get_document_store, load_stored_document

DOCUMENT_PART = "document"  # the dashboard's whole-document editor
AUDIT_ACTIONS: tuple[str, ...] = tuple(AuditEntry.Action.values)
MAX_AUDIT_PAGE = 200
MAX_LISTED_PATHS = 40


@dataclass(frozen=True)
class DocumentRecord:
    session_id: str
    format: str
    version: int
    body: bytes


@dataclass(frozen=True)
class CheckpointRecord:
    name: str
    version: int
    note: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class SessionLink:
    id: str
    external_id: str
    version: int | None  # the version branched from (parent side) or at (branch side)


@dataclass(frozen=True)
class SessionExtras:
    """What editing adds to a session: annotations, expiry override, lineage, checkpoints."""

    tags: list[str]
    notes: str
    on_hold: bool
    expires_at: datetime | None
    expires_at_override: datetime | None
    index_revision: int
    parent: SessionLink | None
    branches: list[SessionLink]
    checkpoints: list[CheckpointRecord]


@dataclass(frozen=True)
class PartChoice:
    key: str
    label: str


@dataclass(frozen=True)
class EditorView:
    version: int
    format: str
    capabilities: Capabilities
    parts: list[PartChoice]
    part: str  # the selected part's key ("document" for the whole document)
    part_label: str
    value: Any


@dataclass(frozen=True)
class AuditRecord:
    id: int
    session_id: str | None
    session_external_id: str
    actor: str
    action: str
    reason: str
    from_version: int | None
    to_version: int | None
    diff: list[dict[str, Any]]
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class AuditFilters:
    session: str | None = None  # a session id, or an external id
    actor: str | None = None  # "user:alice", "key:...", or a bare name (user or key)
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditRecord]
    next_cursor: str | None = None


@dataclass(frozen=True)
class ConflictView:
    """What a stale editor needs: both sides' values and the change to re-apply."""

    seen_version: int
    current_version: int
    theirs_diff: jsondiff.TextDiff  # what changed since the editor loaded the page
    mine_diff: jsondiff.TextDiff  # what the editor changed
    rebased: Any  # the editor's change re-applied on top of the latest
    conflicts: list[str] = field(default_factory=list)
    base_missing: bool = False
    # Every path that changed in the whole document since the editor's version (bounded).
    document_paths: list[str] = field(default_factory=list)
    more_document_paths: int = 0


# --- documents --------------------------------------------------------------------------------


def get_latest_document(*, session_id: str) -> DocumentRecord | None:
    row = _row(session_id)
    if row is None:
        return None
    body = get_document_store().get(session_id=str(row.id), version=row.latest_version)
    return DocumentRecord(
        session_id=str(row.id), format=row.format, version=row.latest_version, body=body
    )


def get_document_value(*, session_id: str, version: int) -> Any:
    return load_stored_document(session_id=session_id, version=version)


def editor_view(*, session_id: str, part: str | None = None) -> EditorView | None:
    """The latest version as an editor sees it: its editable parts and the selected value."""
    document = get_latest_document(session_id=session_id)
    if document is None:
        return None
    doc = decode_stored_body(document.body)
    caps = document_editors.capabilities(document.format, doc)
    choices = [PartChoice(key=p.key, label=p.label) for p in caps.parts]
    choices.append(PartChoice(key=DOCUMENT_PART, label="Whole document"))
    selected = part if part in {c.key for c in choices} else choices[0].key
    value = part_value(format_id=document.format, doc=doc, part=selected)
    label = next(c.label for c in choices if c.key == selected)
    return EditorView(
        version=document.version,
        format=document.format,
        capabilities=caps,
        parts=choices,
        part=selected,
        part_label=label,
        value=value,
    )


def part_value(*, format_id: str, doc: Any, part: str) -> Any:
    if part == DOCUMENT_PART:
        return doc
    return document_editors.get_part(format_id, doc, part)


def conflict_view(
    *, session_id: str, format_id: str, part: str, seen_version: int, mine: Any
) -> ConflictView:
    """Diffs for a stale save of ``part``: theirs (seen -> latest) and mine (seen -> mine),
    plus my change re-applied on top of the latest value."""
    row = _row(session_id)
    if row is None:
        raise NotEditable("the session no longer exists")
    current_doc = load_stored_document(session_id=str(row.id), version=row.latest_version)
    current = part_value(format_id=format_id, doc=current_doc, part=part)
    try:
        seen_doc = get_document_value(session_id=str(row.id), version=seen_version)
        seen = part_value(format_id=format_id, doc=seen_doc, part=part)
    except Exception:  # the version is gone (pruned) or never existed: no three-way merge
        return ConflictView(
            seen_version=seen_version,
            current_version=row.latest_version,
            theirs_diff=jsondiff.text_diff(jsondiff.MISSING, current, after_label="latest"),
            mine_diff=jsondiff.text_diff(current, mine, before_label="latest", after_label="yours"),
            rebased=mine,
            base_missing=True,
        )
    rebased = jsondiff.rebase(seen, mine, current)
    paths = jsondiff.changed_paths(jsondiff.diff(seen_doc, current_doc, max_ops=10_000))
    return ConflictView(
        seen_version=seen_version,
        current_version=row.latest_version,
        theirs_diff=jsondiff.text_diff(
            seen,
            current,
            before_label=f"v{seen_version} (what you saw)",
            after_label=f"v{row.latest_version} (latest)",
        ),
        mine_diff=jsondiff.text_diff(
            seen, mine, before_label=f"v{seen_version} (what you saw)", after_label="your edit"
        ),
        rebased=rebased.value,
        conflicts=rebased.conflicts,
        document_paths=paths[:MAX_LISTED_PATHS],
        more_document_paths=max(0, len(paths) - MAX_LISTED_PATHS),
    )


def session_extras(*, session_id: str) -> SessionExtras | None:
    row = (
        Session.objects.select_related("parent_session")
        .filter(id=_uuid_or_none(session_id))
        .first()
    )
    if row is None:
        return None
    parent = None
    if row.parent_session is not None:
        parent = SessionLink(
            id=str(row.parent_session.id),
            external_id=row.parent_session.external_id,
            version=row.branched_from_version,
        )
    branches = [
        SessionLink(id=str(b.id), external_id=b.external_id, version=b.branched_from_version)
        for b in row.branches.order_by("first_received_at", "id")[:100]
    ]
    return SessionExtras(
        tags=list(row.tags or []),
        notes=row.notes,
        on_hold=row.on_hold,
        expires_at=row.expires_at,
        expires_at_override=row.expires_at_override,
        index_revision=row.index_revision,
        parent=parent,
        branches=branches,
        checkpoints=list_checkpoints(session_id=str(row.id)),
    )


def list_checkpoints(*, session_id: str) -> list[CheckpointRecord]:
    rows = Checkpoint.objects.filter(session_id=_uuid_or_none(session_id)).order_by(
        "-created_at", "-id"
    )
    return [
        CheckpointRecord(
            name=c.name,
            version=c.version,
            note=c.note,
            created_by=c.created_by_label,
            created_at=c.created_at,
        )
        for c in rows[:200]
    ]


# --- the audit log ----------------------------------------------------------------------------


def list_audit(*, filters: AuditFilters, cursor: str | None = None, limit: int = 50) -> AuditPage:
    """Newest first, keyset-paged on (created_at, id)."""
    limit = max(1, min(limit, MAX_AUDIT_PAGE))
    for name in ("session", "actor", "action"):
        if "\x00" in (getattr(filters, name) or ""):
            raise InvalidQuery(f"{name} must not contain NUL (\\u0000)", path=name)
    if filters.action and filters.action not in AuditEntry.Action.values:
        raise InvalidQuery(
            f"action must be one of {', '.join(AuditEntry.Action.values)}", path="action"
        )
    rows = AuditEntry.objects.all()
    if filters.session:
        text = filters.session.strip()
        key = _uuid_or_none(text)
        rows = rows.filter(
            Q(session_key=key) | Q(session_external_id=text) if key else Q(session_external_id=text)
        )
    if filters.actor:
        actor = filters.actor.strip()
        if ":" in actor:
            rows = rows.filter(actor_label=actor)
        else:
            rows = rows.filter(
                Q(actor_label=f"user:{actor}") | Q(actor_label__startswith=f"key:{actor} (")
            )
    if filters.action:
        rows = rows.filter(action=filters.action)
    if filters.since:
        rows = rows.filter(created_at__gte=filters.since)
    if filters.until:
        rows = rows.filter(created_at__lt=filters.until)
    if cursor:
        try:
            at, last_id = cursors.decode_cursor(cursor, cursors.aware_datetime, cursors.integer)
        except cursors.MalformedCursor as exc:
            raise InvalidQuery(exc.message, path="cursor") from None
        rows = rows.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=last_id))
    page = list(rows.order_by("-created_at", "-id")[: limit + 1])
    next_cursor = None
    if len(page) > limit:
        page = page[:limit]
        next_cursor = cursors.encode_cursor(page[-1].created_at, page[-1].id)
    return AuditPage(items=[_audit_record(row) for row in page], next_cursor=next_cursor)


def audit_actor_choices(*, limit: int = 200) -> list[str]:
    return list(
        AuditEntry.objects.order_by("actor_label")
        .values_list("actor_label", flat=True)
        .distinct()[:limit]
    )


def _audit_record(row: AuditEntry) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        session_id=row.session_key or None,
        session_external_id=row.session_external_id,
        actor=row.actor_label,
        action=row.action,
        reason=row.reason,
        from_version=row.from_version,
        to_version=row.to_version,
        diff=list(row.diff or []),
        details=dict(row.details or {}),
        created_at=row.created_at,
    )


# --- internals --------------------------------------------------------------------------------


def _uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except (TypeError, ValueError):
        return None


def _row(session_id: str) -> Session | None:
    key = _uuid_or_none(session_id)
    return Session.objects.filter(id=key).first() if key else None
