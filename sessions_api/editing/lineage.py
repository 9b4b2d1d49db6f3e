"""Where a session's versions come from and go: reverts to an earlier version, checkpoints
(pinned versions) and their restores, branches into a new session, and deleting the session
with every version. Each one is audited (audit.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import transaction

from sessions_api import jsondiff
from sessions_api.editing.audit import MAX_REASON_CHARS, record_change, require_reason
from sessions_api.editing.document import BodyBuilder, edit_document
from sessions_api.editing.locking import lock_session, session_uuid, stored_body
from sessions_api.editing.values import EditOutcome, EditRequest, is_printable
from sessions_api.errors import (
    BodyNotFound,
    BranchExists,
    CheckpointExists,
    CheckpointNotFound,
    EditError,
    VersionNotFound,
)
from sessions_api.formats import editing as document_editors
from sessions_api.formats import parse_document
from sessions_api.ingest import services as ingest_services
from sessions_api.models import AuditEntry, Checkpoint, DocumentVersion, Session
from sessions_api.storage import decode_stored_body

Action = AuditEntry.Action
MAX_CHECKPOINT_NAME = 100
MAX_BRANCH_ATTEMPTS = 50


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


# --- reverts and restores ---------------------------------------------------------------------


def revert_to_version(*, edit: EditRequest, version: int) -> EditOutcome:
    """Store the bytes of an earlier version again, as the next version."""
    return edit_document(
        edit=edit,
        action=Action.REVERT,
        build=_body_of_version(version),
        details={"reverted_to": version},
    )


def restore_checkpoint(*, edit: EditRequest, name: str) -> EditOutcome:
    """Revert to a checkpoint's version (the restore is itself a new version)."""
    checkpoint = Checkpoint.objects.filter(
        session_id=session_uuid(edit.session_id), name=name
    ).first()
    if checkpoint is None:
        raise CheckpointNotFound(f"no checkpoint named {name[:100]!r}", path="checkpoint")
    return edit_document(
        edit=edit,
        action=Action.RESTORE,
        build=_body_of_version(checkpoint.version),
        details={"checkpoint": checkpoint.name, "reverted_to": checkpoint.version},
    )


def _body_of_version(version: int) -> BodyBuilder:
    """The stored bytes of ``version`` of the session, to be saved again as its next version."""

    def build(row: Session, doc: Any, old: bytes) -> bytes:
        _require_version(row, version)
        try:
            return stored_body(row, version)
        except BodyNotFound:
            raise VersionNotFound(
                f"the body of version {version} is no longer stored", path="version"
            ) from None

    return build


def _require_version(row: Session, number: int) -> None:
    if not DocumentVersion.objects.filter(session=row, number=number).exists():
        raise VersionNotFound(f"version {number} of this session does not exist", path="version")


# --- checkpoints and branches -----------------------------------------------------------------


def create_checkpoint(*, edit: EditRequest, name: str, version: int | None) -> CheckpointOutcome:
    """Pin a version (default: the latest) under a name unique within the session.

    ``edit.reason`` is the checkpoint's note: optional, as pinning changes nothing."""
    name = (name or "").strip()
    if not name or len(name) > MAX_CHECKPOINT_NAME or not is_printable(name):
        raise EditError(
            f"a checkpoint name is 1-{MAX_CHECKPOINT_NAME} printable characters", path="name"
        )
    note = (edit.reason or "").replace("\x00", "").strip()[:MAX_REASON_CHARS]
    edit = replace(edit, reason=note)
    with transaction.atomic():
        row = lock_session(edit.session_id)
        number = version or row.latest_version
        _require_version(row, number)
        if Checkpoint.objects.filter(session=row, name=name).exists():
            raise CheckpointExists(f"a checkpoint named {name!r} exists already", path="name")
        checkpoint = Checkpoint.objects.create(
            session=row,
            version=number,
            name=name,
            note=note,
            created_by_id=edit.actor.user_id,
            created_by_label=edit.actor.label,
            created_at=edit.now,
        )
        entry = record_change(
            row=row,
            edit=edit,
            action=Action.CHECKPOINT,
            from_version=number,
            to_version=number,
            diff=[],
            details={"checkpoint": name, "version": number},
        )
    return CheckpointOutcome(
        session_id=str(row.id),
        name=name,
        version=number,
        note=note,
        created_at=checkpoint.created_at,
        audit_id=entry.id,
    )


def branch_session(*, edit: EditRequest, version: int | None, new_id: str | None) -> BranchOutcome:
    """A new session whose first version is ``version`` (default: the latest) of this one,
    with its session id renamed to ``new_id`` (default ``<id>~branch-<n>``) where the document
    writes it. Both sessions link to each other; both get an audit entry."""
    edit = require_reason(edit)
    if new_id is not None:
        new_id = new_id.strip()
        if not new_id or len(new_id) > 200 or not is_printable(new_id):
            raise EditError("a branch id is 1-200 printable characters", path="id")
    with transaction.atomic():
        parent = lock_session(edit.session_id)
        number = version or parent.latest_version
        _require_version(parent, number)
        body = stored_body(parent, number)
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
        outcome = ingest_services.ingest_document(
            body=new_body,
            format_id=parent.format,
            external_id=None if raw_id else key,
            source=DocumentVersion.Source.EDIT,
            now=edit.now,
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
        entry = record_change(
            row=parent,
            edit=edit,
            action=Action.BRANCH,
            from_version=number,
            to_version=None,
            diff=[],
            details=details,
        )
        record_change(
            row=child,
            edit=edit,
            action=Action.BRANCH,
            from_version=None,
            to_version=1,
            diff=jsondiff.diff(doc, decode_stored_body(new_body)),
            details=details,
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


# --- deletion ---------------------------------------------------------------------------------


def delete_session(*, edit: EditRequest) -> bool:
    """Delete a session with every version and checkpoint (admins). The audit entry outlives
    it."""
    edit = require_reason(edit)
    with transaction.atomic():
        row = lock_session(edit.session_id)
        record_change(
            row=row,
            edit=edit,
            action=Action.DELETE,
            from_version=row.latest_version,
            to_version=None,
            diff=[],
            details={"format": row.format, "versions": row.latest_version},
        )
        return ingest_services.delete_session(session_id=str(row.id))
