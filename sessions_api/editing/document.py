"""Writes that change a session on someone's behalf: edits of state, status, expiry, hold, tags
and notes; reverts, checkpoints, restores, branches and deletes. Every one is audited.

The contract of a save:

1. a non-empty reason, and the version the editor started from (``expected_version``);
2. in one transaction: lock the session row first, compare ``expected_version`` with the
   latest version (a mismatch raises :class:`VersionConflict` carrying the current version and
   a JSON diff from what the editor saw to what is there now; nothing is written), build the new
   document in the framework's own shape (formats/editing.py), store it through the ingest
   path (``services.store_version_of_locked_session``: the adapter parses it again and refuses
   it if it is invalid), and record an :class:`AuditEntry` with who, when, why and the diff.

A save whose result equals the latest bytes changes nothing and records nothing. Index-only
changes (hold, tags, notes, an expiry the document cannot carry) follow the same rules but add
no document version.

Keyword-only, typed functions; ``now`` is passed in; ORM rows never leave this module.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max

from sessions_api import jsondiff
from sessions_api.errors import (
    BodyNotFound,
    BranchExists,
    CheckpointExists,
    CheckpointNotFound,
    EditError,
    NotFound,
    ReasonRequired,
    VersionConflict,
    VersionNotFound,
)
from sessions_api.formats import editing as document_editors
from sessions_api.formats import parse_document
from sessions_api.formats.editing import DocumentPatch
from sessions_api.ingest import services
from sessions_api.models import AuditEntry, Checkpoint, DocumentVersion, Session
from sessions_api.storage import decode_stored_body, get_document_store

Action = AuditEntry.Action
MAX_REASON_CHARS = 2000
MAX_NOTES_CHARS = 10_000
MAX_TAGS = 20
MAX_TAG_CHARS = 50
MAX_CHECKPOINT_NAME = 100
MAX_BRANCH_ATTEMPTS = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
__all__ = ["DocumentPatch"]


# --- who acts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a dashboard user, an API key, or the system."""

    label: str  # "user:alice", "key:agent-1 (ab12cd34ef56)", "system"
    user_id: int | None = None


SYSTEM = Actor(label="system")


# --- outcomes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EditOutcome:
    session_id: str
    external_id: str
    format: str
    version: int
    changed: bool
    audit_id: int | None = None
    diff: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class CheckpointOutcome:
    session_id: str
    name: str
    version: int
    note: str
    created_at: datetime
    audit_id: int


@dataclass(frozen=True)
class BranchOutcome:
    session_id: str
    external_id: str
    format: str
    version: int
    parent_id: str
    branched_from_version: int
    audit_id: int


# --- document edits ---------------------------------------------------------------------------


def save_document(
    *,
    session_id: str,
    body: bytes,
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
) -> EditOutcome:
    """Store ``body`` (a whole document of the session's format, keeping its id) as the next
    version: PUT /document and the dashboard's whole-document editor."""
    return _edit_document(
        session_id=session_id,
        expected_version=expected_version,
        actor=actor,
        reason=reason,
        now=now,
        action=Action.EDIT_DOCUMENT,
        build=lambda row, doc, old: body,
    )


def edit_state(
    *,
    session_id: str,
    part: str,
    value: Any,
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
) -> EditOutcome:
    """Replace one editable part (step state, session state, metadata, context) in place."""

    def change(row: Session, doc: Any) -> Any:
        return document_editors.edit_part(
            row.format, doc, part, value, now=now, revision=_next_revision(row)
        )

    return _edit_document(
        session_id=session_id,
        expected_version=expected_version,
        actor=actor,
        reason=reason,
        now=now,
        action=Action.EDIT_STATE,
        build=_as_body(change),
        details={"part": part},
    )


def edit_status(
    *,
    session_id: str,
    status: str,
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
) -> EditOutcome:
    """Set the document's own status field (formats that have one)."""

    def change(row: Session, doc: Any) -> Any:
        return document_editors.edit_status(
            row.format, doc, status, now=now, revision=_next_revision(row)
        )

    return _edit_document(
        session_id=session_id,
        expected_version=expected_version,
        actor=actor,
        reason=reason,
        now=now,
        action=Action.EDIT_STATUS,
        build=_as_body(change),
        details={"status": status},
    )


def patch_document(
    *,
    session_id: str,
    patch: DocumentPatch,
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
) -> EditOutcome:
    """Append messages, merge state and set status in one new version (PATCH /document)."""

    def change(row: Session, doc: Any) -> Any:
        return document_editors.apply_patch(
            row.format, doc, patch, now=now, revision=_next_revision(row)
        )

    return _edit_document(
        session_id=session_id,
        expected_version=expected_version,
        actor=actor,
        reason=reason,
        now=now,
        action=Action.PATCH,
        build=_as_body(change),
        details={
            "appended_messages": len(patch.messages),
            "merged_state": patch.state is not None,
            **({"status": patch.status} if patch.status else {}),
        },
    )


def revert_to_version(
    *,
    session_id: str,
    version: int,
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
) -> EditOutcome:
    """Store the bytes of an earlier version again, as the next version."""
    return _revert(
        session_id=session_id,
        version=version,
        expected_version=expected_version,
        actor=actor,
        reason=reason,
        now=now,
        action=Action.REVERT,
        details={"reverted_to": version},
    )


def restore_checkpoint(
    *,
    session_id: str,
    name: str,
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
) -> EditOutcome:
    """Revert to a checkpoint's version (the restore is itself a new version)."""
    checkpoint = Checkpoint.objects.filter(session_id=_uuid_or_none(session_id), name=name).first()
    if checkpoint is None:
        raise CheckpointNotFound(f"no checkpoint named {name[:100]!r}", path="checkpoint")
    return _revert(
        session_id=session_id,
        version=checkpoint.version,
        expected_version=expected_version,
        actor=actor,
        reason=reason,
        now=now,
        action=Action.RESTORE,
        details={"checkpoint": checkpoint.name, "reverted_to": checkpoint.version},
    )


def _revert(
    *,
    session_id: str,
    version: int,
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
    action: str,
    details: dict[str, Any],
) -> EditOutcome:
    def build(row: Session, doc: Any, old: bytes) -> bytes:
        _require_version(row, version)
        try:
            return get_document_store().get(session_id=str(row.id), version=version)
        except BodyNotFound:
            raise VersionNotFound(
                f"the body of version {version} is no longer stored", path="version"
            ) from None

    return _edit_document(
        session_id=session_id,
        expected_version=expected_version,
        actor=actor,
        reason=reason,
        now=now,
        action=action,
        build=build,
        details=details,
    )


def _as_body(
    change: Callable[[Session, Any], Any],
) -> Callable[[Session, Any, bytes], bytes]:
    """A body builder from a document change: the result encoded in the stored body's style,
    or the stored bytes themselves when the change returned the document untouched."""

    def build(row: Session, doc: Any, old: bytes) -> bytes:
        new = change(row, doc)
        return old if new is doc else document_editors.encode(new, like=old)

    return build


def _edit_document(
    *,
    session_id: str,
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
    action: str,
    build: Callable[[Session, Any, bytes], bytes],
    details: dict[str, Any] | None = None,
) -> EditOutcome:
    reason = require_reason(reason)
    with transaction.atomic():
        row = _lock(session_id)
        _check_version(row, expected_version)
        before_version = row.latest_version
        old_body = _body(row, before_version)
        old_doc = decode_stored_body(old_body)
        new_body = build(row, old_doc, old_body)
        outcome = services.store_version_of_locked_session(
            row=row, body=new_body, source=DocumentVersion.Source.EDIT, now=now
        )
        if not outcome.changed:
            return _unchanged(row)
        ops = jsondiff.diff(old_doc, decode_stored_body(new_body))
        entry = _record(
            row=row,
            actor=actor,
            action=action,
            reason=reason,
            from_version=before_version,
            to_version=outcome.version,
            diff=ops,
            details=details or {},
            now=now,
        )
    return EditOutcome(
        session_id=outcome.id,
        external_id=outcome.external_id,
        format=outcome.format,
        version=outcome.version,
        changed=True,
        audit_id=entry.id,
        diff=ops,
        warnings=[{"code": w.code, "message": w.message, "path": w.path} for w in outcome.warnings],
    )


# --- index-only edits: expiry, hold, tags, notes ----------------------------------------------


def set_expiry(
    *,
    session_id: str,
    expires_at: datetime | None,
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
) -> EditOutcome:
    """When the session expires (None: no expiry of its own; idle policy applies).

    Where the document carries its expiry (Picoflow v1 ``expireAfter``, counted from the save
    this edit makes) it is written there as a new version; otherwise it is kept on the index
    and survives later versions. A session marked expired whose new expiry lies ahead gets its
    previous status back.
    """
    if expires_at is not None and expires_at <= now:
        raise EditError("the new expiry must lie in the future", path="expires_at")
    reason = require_reason(reason)
    with transaction.atomic():
        row = _lock(session_id)
        _check_version(row, expected_version)
        old_body = _body(row, row.latest_version)
        old_doc = decode_stored_body(old_body)
        editor = document_editors.editor_for(row.format)
        if editor.expiry_pointer(old_doc) is not None:
            seconds = None if expires_at is None else math.ceil((expires_at - now).total_seconds())

            def change(r: Session, doc: Any) -> Any:
                return document_editors.edit_expire_after(
                    r.format, doc, seconds, now=now, revision=_next_revision(r)
                )

            row.expires_at_override = None
            row.save(update_fields=["expires_at_override"])
            return _edit_document(
                session_id=str(row.id),
                expected_version=expected_version,
                actor=actor,
                reason=reason,
                now=now,
                action=Action.SET_EXPIRY,
                build=_as_body(change),
                details={"expire_after_s": seconds, "scope": "document"},
            )
        before = row.expires_at
        if before == expires_at and row.expires_at_override == expires_at:
            return _unchanged(row)
        row.expires_at_override = expires_at
        row.expires_at = expires_at
        fields = ["expires_at_override", "expires_at"]
        if row.status == "expired" and (expires_at is None or expires_at > now):
            row.status = row.status_before_expiry or "unknown"
            row.status_before_expiry = ""
            row.expired_at = None
            fields += ["status", "status_before_expiry", "expired_at"]
        row.save(update_fields=fields)
        ops = [_index_op("expires_at", _iso(before), _iso(expires_at))]
        entry = _record(
            row=row,
            actor=actor,
            action=Action.SET_EXPIRY,
            reason=reason,
            from_version=row.latest_version,
            to_version=row.latest_version,
            diff=ops,
            details={"scope": "index"},
            now=now,
        )
    return _index_outcome(row, entry, ops)


def set_hold(
    *,
    session_id: str,
    on_hold: bool,
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
) -> EditOutcome:
    """Hold a session (expiry and purge leave it alone) or release it."""
    return _index_edit(
        session_id=session_id,
        expected_version=expected_version,
        actor=actor,
        reason=reason,
        now=now,
        action=Action.HOLD if on_hold else Action.RELEASE,
        column="on_hold",
        value=bool(on_hold),
    )


def set_tags(
    *,
    session_id: str,
    tags: list[str],
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
) -> EditOutcome:
    return _index_edit(
        session_id=session_id,
        expected_version=expected_version,
        actor=actor,
        reason=reason,
        now=now,
        action=Action.TAG,
        column="tags",
        value=clean_tags(tags),
    )


def set_notes(
    *,
    session_id: str,
    notes: str,
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
) -> EditOutcome:
    notes = (notes or "").replace("\x00", "").strip()
    if len(notes) > MAX_NOTES_CHARS:
        raise EditError(f"notes are limited to {MAX_NOTES_CHARS} characters", path="notes")
    return _index_edit(
        session_id=session_id,
        expected_version=expected_version,
        actor=actor,
        reason=reason,
        now=now,
        action=Action.NOTE,
        column="notes",
        value=notes,
    )


def clean_tags(tags: list[str]) -> list[str]:
    cleaned: list[str] = []
    for tag in tags:
        text = str(tag).strip()
        if not text:
            continue
        if len(text) > MAX_TAG_CHARS or _CONTROL.search(text):
            raise EditError(
                f"a tag is 1-{MAX_TAG_CHARS} printable characters: {text[:60]!r}", path="tags"
            )
        if text not in cleaned:
            cleaned.append(text)
    if len(cleaned) > MAX_TAGS:
        raise EditError(f"at most {MAX_TAGS} tags", path="tags")
    return cleaned


def _index_edit(
    *,
    session_id: str,
    expected_version: int,
    actor: Actor,
    reason: str,
    now: datetime,
    action: str,
    column: str,
    value: Any,
) -> EditOutcome:
    reason = require_reason(reason)
    with transaction.atomic():
        row = _lock(session_id)
        _check_version(row, expected_version)
        before = getattr(row, column)
        if jsondiff.same(before, value):
            return _unchanged(row)
        setattr(row, column, value)
        row.save(update_fields=[column])
        ops = [_index_op(column, before, value)]
        entry = _record(
            row=row,
            actor=actor,
            action=action,
            reason=reason,
            from_version=row.latest_version,
            to_version=row.latest_version,
            diff=ops,
            details={"scope": "index"},
            now=now,
        )
    return _index_outcome(row, entry, ops)


# --- checkpoints and branches -----------------------------------------------------------------


def create_checkpoint(
    *,
    session_id: str,
    name: str,
    version: int | None,
    note: str,
    actor: Actor,
    now: datetime,
) -> CheckpointOutcome:
    """Pin a version (default: the latest) under a name unique within the session."""
    name = (name or "").strip()
    if not name or len(name) > MAX_CHECKPOINT_NAME or _CONTROL.search(name):
        raise EditError(
            f"a checkpoint name is 1-{MAX_CHECKPOINT_NAME} printable characters", path="name"
        )
    note = (note or "").replace("\x00", "").strip()[:MAX_REASON_CHARS]
    with transaction.atomic():
        row = _lock(session_id)
        number = version or row.latest_version
        _require_version(row, number)
        if Checkpoint.objects.filter(session=row, name=name).exists():
            raise CheckpointExists(f"a checkpoint named {name!r} exists already", path="name")
        checkpoint = Checkpoint.objects.create(
            session=row,
            version=number,
            name=name,
            note=note,
            created_by_id=actor.user_id,
            created_by_label=actor.label,
            created_at=now,
        )
        entry = _record(
            row=row,
            actor=actor,
            action=Action.CHECKPOINT,
            reason=note,
            from_version=number,
            to_version=number,
            diff=[],
            details={"checkpoint": name, "version": number},
            now=now,
        )
    return CheckpointOutcome(
        session_id=str(row.id),
        name=name,
        version=number,
        note=note,
        created_at=checkpoint.created_at,
        audit_id=entry.id,
    )


def branch_session(
    *,
    session_id: str,
    version: int | None,
    new_id: str | None,
    actor: Actor,
    reason: str,
    now: datetime,
) -> BranchOutcome:
    """A new session whose first version is ``version`` (default: the latest) of this one,
    with its session id renamed to ``new_id`` (default ``<id>~branch-<n>``) where the document
    writes it. Both sessions link to each other; both get an audit entry."""
    reason = require_reason(reason)
    if new_id is not None:
        new_id = new_id.strip()
        if not new_id or len(new_id) > 200 or _CONTROL.search(new_id):
            raise EditError("a branch id is 1-200 printable characters", path="id")
    with transaction.atomic():
        parent = _lock(session_id)
        number = version or parent.latest_version
        _require_version(parent, number)
        body = _body(parent, number)
        doc = decode_stored_body(body)
        raw_id = document_editors.document_session_id(doc, parent.external_id)
        base = raw_id or parent.external_id
        candidates = (
            [new_id]
            if new_id
            else [f"{base}~branch-{n}" for n in range(1, MAX_BRANCH_ATTEMPTS + 1)]
        )
        for candidate in candidates:
            new_body, key = _branch_body(parent, doc, body, raw_id, candidate)
            if not Session.objects.filter(format=parent.format, external_id=key).exists():
                break
        else:
            raise BranchExists(f"a session {key!r} exists already; choose another id", path="id")
        outcome = services.ingest_document(
            body=new_body,
            format_id=parent.format,
            external_id=None if raw_id else key,
            source=DocumentVersion.Source.EDIT,
            now=now,
        )
        if not outcome.created or outcome.external_id != key:
            # Rolls the whole transaction back: nothing may land in another session.
            raise BranchExists(
                f"the branch would land in the existing session {outcome.external_id!r}",
                path="id",
            )
        Session.objects.filter(id=outcome.id).update(
            parent_session=parent, branched_from_version=number
        )
        child = Session.objects.get(id=outcome.id)
        details = {
            "parent_id": str(parent.id),
            "parent_external_id": parent.external_id,
            "branch_id": str(child.id),
            "branch_external_id": child.external_id,
            "from_version": number,
        }
        entry = _record(
            row=parent,
            actor=actor,
            action=Action.BRANCH,
            reason=reason,
            from_version=number,
            to_version=None,
            diff=[],
            details=details,
            now=now,
        )
        _record(
            row=child,
            actor=actor,
            action=Action.BRANCH,
            reason=reason,
            from_version=None,
            to_version=1,
            diff=jsondiff.diff(doc, decode_stored_body(new_body)),
            details=details,
            now=now,
        )
    return BranchOutcome(
        session_id=str(child.id),
        external_id=child.external_id,
        format=child.format,
        version=child.latest_version,
        parent_id=str(parent.id),
        branched_from_version=number,
        audit_id=entry.id,
    )


def _branch_body(
    parent: Session, doc: Any, body: bytes, raw_id: str | None, candidate: str
) -> tuple[bytes, str]:
    """(the branch's bytes, the external id the ingest path will give it)."""
    if raw_id is None:
        return body, candidate
    renamed = document_editors.rename_session(doc, old_id=raw_id, new_id=candidate)
    new_body = document_editors.encode(renamed, like=body)
    _, parsed = parse_document(renamed, format_id=parent.format)
    return new_body, parsed.session.external_id or candidate


# --- delete and refusals ----------------------------------------------------------------------


def delete_session(*, session_id: str, actor: Actor, reason: str, now: datetime) -> bool:
    """Delete a session with every version (admins). The audit entry outlives it."""
    reason = require_reason(reason)
    with transaction.atomic():
        row = _lock(session_id)
        _record(
            row=row,
            actor=actor,
            action=Action.DELETE,
            reason=reason,
            from_version=row.latest_version,
            to_version=None,
            diff=[],
            details={"format": row.format, "versions": row.latest_version},
            now=now,
        )
        return services.delete_session(session_id=str(row.id))


def record_refusal(
    *,
    actor: Actor,
    attempted: str,
    message: str,
    now: datetime,
    session_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Record an action someone was not allowed to take . Never raises for an
    unknown session: the attempt is what is recorded."""
    row = Session.objects.filter(id=_uuid_or_none(session_id)).first() if session_id else None
    entry = AuditEntry.objects.create(
        session=row,
        session_external_id=row.external_id if row else "",
        session_key=str(row.id) if row else "",
        actor_id=actor.user_id,
        actor_label=actor.label[:255],
        action=Action.REFUSED,
        reason=message[:MAX_REASON_CHARS],
        details={"attempted": attempted, **(details or {})},
        created_at=now,
    )
    return entry.id


# --- internals --------------------------------------------------------------------------------


def require_reason(reason: str | None) -> str:
    text = (reason or "").replace("\x00", "").strip()
    if not text:
        raise ReasonRequired("say why: every change needs a reason", path="reason")
    if len(text) > MAX_REASON_CHARS:
        raise ReasonRequired(f"a reason is at most {MAX_REASON_CHARS} characters", path="reason")
    return text


def _uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except (TypeError, ValueError):
        return None


def _lock(session_id: str) -> Session:
    key = _uuid_or_none(session_id)
    row = Session.objects.select_for_update().filter(id=key).first() if key else None
    if row is None:
        raise NotFound(f"no session with id {str(session_id)[:80]!r}")
    return row


def _check_version(row: Session, expected_version: int) -> None:
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise EditError("expected_version must be a version number", path="expected_version")
    if expected_version == row.latest_version:
        return
    raise VersionConflict(
        expected_version=expected_version,
        current_version=row.latest_version,
        diff=conflict_diff(row=row, seen_version=expected_version),
    )


def conflict_diff(*, row: Session, seen_version: int) -> list[dict[str, Any]] | None:
    """The JSON patch from the version an editor saw to the latest (None when unknown)."""
    if not 1 <= seen_version <= row.latest_version:
        return None
    try:
        seen = decode_stored_body(_body(row, seen_version))
        current = decode_stored_body(_body(row, row.latest_version))
    except BodyNotFound:
        return None
    return jsondiff.diff(seen, current, max_ops=500)


def _require_version(row: Session, number: int) -> None:
    if not DocumentVersion.objects.filter(session=row, number=number).exists():
        raise VersionNotFound(f"version {number} of this session does not exist", path="version")


def _body(row: Session, version: int) -> bytes:
    return get_document_store().get(session_id=str(row.id), version=version)


def _next_revision(row: Session) -> int | None:
    """One past every revision stored for this session (formats with a CAS revision)."""
    highest = DocumentVersion.objects.filter(session=row).aggregate(m=Max("revision"))["m"]
    return None if highest is None else highest + 1


def _record(
    *,
    row: Session,
    actor: Actor,
    action: str,
    reason: str,
    from_version: int | None,
    to_version: int | None,
    diff: list[dict[str, Any]],
    details: dict[str, Any],
    now: datetime,
) -> AuditEntry:
    return AuditEntry.objects.create(
        session=row,
        session_external_id=row.external_id[:512],
        session_key=str(row.id),
        actor_id=actor.user_id,
        actor_label=actor.label[:255],
        action=action,
        reason=reason,
        from_version=from_version,
        to_version=to_version,
        diff=_bounded(diff),
        details=details,
        created_at=now,
    )


def _bounded(ops: list[dict[str, Any]], max_chars: int = 256_000) -> list[dict[str, Any]]:
    """Keep audit rows small: ops beyond ``max_chars`` of JSON are summarised."""
    kept: list[dict[str, Any]] = []
    size = 0
    for index, op in enumerate(ops):
        text = json.dumps(op, ensure_ascii=False, default=str)
        if size + len(text) > max_chars:
            kept.append({"op": "truncated", "omitted": len(ops) - index})
            break
        kept.append(op)
        size += len(text)
    return kept


def _index_op(column: str, before: Any, after: Any) -> dict[str, Any]:
    return {"op": "replace", "path": f"/session/{column}", "value": after, "old": before}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _unchanged(row: Session) -> EditOutcome:
    return EditOutcome(
        session_id=str(row.id),
        external_id=row.external_id,
        format=row.format,
        version=row.latest_version,
        changed=False,
    )


def _index_outcome(row: Session, entry: AuditEntry, ops: list[dict[str, Any]]) -> EditOutcome:
    return EditOutcome(
        session_id=str(row.id),
        external_id=row.external_id,
        format=row.format,
        version=row.latest_version,
        changed=True,
        audit_id=entry.id,
        diff=ops,
    )
