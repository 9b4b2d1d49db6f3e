"""Edits of the session itself: its state, status and expiry, written as a new version of the
framework's own document, and its hold. Every one is audited (audit.py).

The contract of a save:

1. an :class:`EditRequest` with a non-empty reason and the version the editor started from
   (``expected_version``);
2. in one transaction: lock the session row first, compare ``expected_version`` with the
   latest version (locking.py: a mismatch raises :class:`VersionConflict` carrying the current
   version and a JSON diff from what the editor saw to what is there now; nothing is written),
   build the new document in the framework's own shape (formats/editing.py), store it through
   the ingest path (``store_version_of_locked_session``: the adapter parses it again and
   refuses it if it is invalid), and record an :class:`AuditEntry` with who, when, why and the
   diff.

A save whose result equals the latest bytes changes nothing and records nothing. Index-only
changes (hold, tags, notes, an expiry the document cannot carry) follow the same rules but add
no document version.

Keyword-only, typed functions; ``now`` comes with the request; ORM rows never leave the editing
package.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max

from sessions_api import jsondiff
from sessions_api.editing.audit import record_change, require_reason
from sessions_api.editing.locking import check_index_revision, lock_for_edit, stored_body
from sessions_api.editing.values import EditOutcome, EditRequest
from sessions_api.errors import EditError
from sessions_api.formats import editing as document_editors
from sessions_api.formats.editing import DocumentPatch
from sessions_api.ingest import services as ingest_services
from sessions_api.models import AuditEntry, DocumentVersion, Session
from sessions_api.storage import decode_stored_body

Action = AuditEntry.Action
# Builds the next body from the locked row, the latest document and its stored bytes.
BodyBuilder = Callable[[Session, Any, bytes], bytes]


# --- document edits ---------------------------------------------------------------------------


def save_document(*, edit: EditRequest, body: bytes) -> EditOutcome:
    """Store ``body`` (a whole document of the session's format, keeping its id) as the next
    version: PUT /document and the dashboard's whole-document editor."""
    return edit_document(edit=edit, action=Action.EDIT_DOCUMENT, build=lambda row, doc, old: body)


def edit_state(*, edit: EditRequest, part: str, value: Any) -> EditOutcome:
    """Replace one editable part (step state, session state, metadata, context) in place."""

    def change(row: Session, doc: Any) -> Any:
        return document_editors.edit_part(
            row.format, doc, part, value, now=edit.now, revision=_next_revision(row)
        )

    return edit_document(
        edit=edit, action=Action.EDIT_STATE, build=_as_body(change), details={"part": part}
    )


def edit_status(*, edit: EditRequest, status: str) -> EditOutcome:
    """Set the document's own status field (formats that have one)."""

    def change(row: Session, doc: Any) -> Any:
        return document_editors.edit_status(
            row.format, doc, status, now=edit.now, revision=_next_revision(row)
        )

    return edit_document(
        edit=edit, action=Action.EDIT_STATUS, build=_as_body(change), details={"status": status}
    )


def patch_document(*, edit: EditRequest, patch: DocumentPatch) -> EditOutcome:
    """Append messages, merge state and set status in one new version (PATCH /document)."""

    def change(row: Session, doc: Any) -> Any:
        return document_editors.apply_patch(
            row.format, doc, patch, now=edit.now, revision=_next_revision(row)
        )

    return edit_document(
        edit=edit,
        action=Action.PATCH,
        build=_as_body(change),
        details={
            "appended_messages": len(patch.messages),
            "merged_state": patch.state is not None,
            **({"status": patch.status} if patch.status else {}),
        },
    )


def edit_document(
    *,
    edit: EditRequest,
    action: str,
    build: BodyBuilder,
    details: dict[str, Any] | None = None,
) -> EditOutcome:
    """The save every document edit (and every revert) makes: lock, check the version, store
    what ``build`` returns as the next version, audit it."""
    edit = require_reason(edit)
    with transaction.atomic():
        row = lock_for_edit(edit)
        before_version = row.latest_version
        old_body = stored_body(row, before_version)
        old_doc = decode_stored_body(old_body)
        new_body = build(row, old_doc, old_body)
        outcome = ingest_services.store_version_of_locked_session(
            row=row, body=new_body, source=DocumentVersion.Source.EDIT, now=edit.now
        )
        if not outcome.changed:
            return _unchanged(row)
        ops = jsondiff.diff(old_doc, decode_stored_body(new_body))
        entry = record_change(
            row=row,
            edit=edit,
            action=action,
            from_version=before_version,
            to_version=outcome.version,
            diff=ops,
            details=details or {},
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


def _as_body(change: Callable[[Session, Any], Any]) -> BodyBuilder:
    """A body builder from a document change: the result encoded in the stored body's style,
    or the stored bytes themselves when the change returned the document untouched."""

    def build(row: Session, doc: Any, old: bytes) -> bytes:
        new = change(row, doc)
        return old if new is doc else document_editors.encode(new, like=old)

    return build


def _next_revision(row: Session) -> int | None:
    """One past every revision stored for this session (formats with a CAS revision)."""
    highest = DocumentVersion.objects.filter(session=row).aggregate(m=Max("revision"))["m"]
    return None if highest is None else highest + 1


# --- expiry and hold --------------------------------------------------------------------------


def set_expiry(*, edit: EditRequest, expires_at: datetime | None) -> EditOutcome:
    """When the session expires (None: no expiry of its own; idle policy applies).

    Where the document carries its expiry (Picoflow v1 ``expireAfter``, counted from the save
    this edit makes) it is written there as a new version; otherwise it is kept on the index
    and survives later versions. A session marked expired whose new expiry lies ahead gets its
    previous status back.
    """
    now = edit.now
    if expires_at is not None and expires_at <= now:
        raise EditError("the new expiry must lie in the future", path="expires_at")
    edit = require_reason(edit)
    with transaction.atomic():
        row = lock_for_edit(edit)
        old_body = stored_body(row, row.latest_version)
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
            return edit_document(
                edit=replace(edit, session_id=str(row.id)),
                action=Action.SET_EXPIRY,
                build=_as_body(change),
                details={"expire_after_s": seconds, "scope": "document"},
            )
        check_index_revision(row, edit.expected_index_revision)
        before = row.expires_at
        if before == expires_at and row.expires_at_override == expires_at:
            return _unchanged(row)
        row.expires_at_override = expires_at
        row.expires_at = expires_at
        row.index_revision += 1
        fields = ["expires_at_override", "expires_at", "index_revision"]
        if row.status == "expired" and (expires_at is None or expires_at > now):
            row.status = row.status_before_expiry or "unknown"
            row.status_before_expiry = ""
            row.expired_at = None
            fields += ["status", "status_before_expiry", "expired_at"]
        row.save(update_fields=fields)
        ops = [_index_op("expires_at", _iso(before), _iso(expires_at))]
        entry = record_change(
            row=row,
            edit=edit,
            action=Action.SET_EXPIRY,
            from_version=row.latest_version,
            to_version=row.latest_version,
            diff=ops,
            details={"scope": "index"},
        )
    return _index_outcome(row, entry, ops)


def set_hold(*, edit: EditRequest, on_hold: bool) -> EditOutcome:
    """Hold a session (expiry and purge leave it alone) or release it."""
    return edit_index_column(
        edit=edit,
        action=Action.HOLD if on_hold else Action.RELEASE,
        column="on_hold",
        value=bool(on_hold),
    )


# --- index-only edits -------------------------------------------------------------------------


def edit_index_column(*, edit: EditRequest, action: str, column: str, value: Any) -> EditOutcome:
    """Set one column of the session row (hold, tags, notes): same lock, version check and
    audit as a document save, but no new document version; the index revision counts it, so
    of two forms showing the same index revision exactly one saves."""
    edit = require_reason(edit)
    with transaction.atomic():
        row = lock_for_edit(edit)
        check_index_revision(row, edit.expected_index_revision)
        before = getattr(row, column)
        if jsondiff.same(before, value):
            return _unchanged(row)
        setattr(row, column, value)
        row.index_revision += 1
        row.save(update_fields=[column, "index_revision"])
        ops = [_index_op(column, before, value)]
        entry = record_change(
            row=row,
            edit=edit,
            action=action,
            from_version=row.latest_version,
            to_version=row.latest_version,
            diff=ops,
            details={"scope": "index"},
        )
    return _index_outcome(row, entry, ops)


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
        index_revision=row.index_revision,
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
        index_revision=row.index_revision,
    )
