"""The session row lock and the expected-version check every edit starts with.

An edit locks the session row first, then compares the version the editor started from with
the latest one, so of two saves made from the same version exactly one wins: the other sees
the new version and is refused with a :class:`VersionConflict` carrying a JSON diff from what
it saw to what is there now.
"""

from __future__ import annotations

import uuid
from typing import Any

from sessions_api import jsondiff
from sessions_api.editing.values import EditRequest
from sessions_api.errors import BodyNotFound, EditError, IndexConflict, NotFound, VersionConflict
from sessions_api.models import AuditEntry, Session
from sessions_api.storage import decode_stored_body, get_document_store


def session_uuid(value: str | None) -> str | None:
    """The session id in its canonical form, or None when it is no UUID (so no session)."""
    try:
        return str(uuid.UUID(str(value)))
    except (TypeError, ValueError):
        return None


def lock_session(session_id: str) -> Session:
    """The session row, locked until the transaction ends; NotFound when there is none."""
    key = session_uuid(session_id)
    row = Session.objects.select_for_update().filter(id=key).first() if key else None
    if row is None:
        raise NotFound(f"no session with id {str(session_id)[:80]!r}")
    return row


def lock_for_edit(edit: EditRequest) -> Session:
    """The session row, locked, once ``edit`` is known to start from its latest version."""
    row = lock_session(edit.session_id)
    check_version(row, edit.expected_version)
    return row


def check_version(row: Session, expected_version: int | None) -> None:
    """Refuse an edit made on any version but the latest of a locked row."""
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise EditError("expected_version must be a version number", path="expected_version")
    if expected_version == row.latest_version:
        return
    raise VersionConflict(
        expected_version=expected_version,
        current_version=row.latest_version,
        diff=conflict_diff(row=row, seen_version=expected_version),
    )


def check_index_revision(row: Session, expected_index_revision: int | None) -> None:
    """Refuse an index-only edit made from a form that showed an older index revision.

    Callers without a form to go stale (the system, scripts) pass None and are not checked."""
    if expected_index_revision is None:
        return
    if isinstance(expected_index_revision, bool) or not isinstance(expected_index_revision, int):
        raise EditError(
            "expected_index_revision must be a whole number", path="expected_index_revision"
        )
    if expected_index_revision == row.index_revision:
        return
    raise IndexConflict(
        version=row.latest_version,
        expected_index_revision=expected_index_revision,
        current_index_revision=row.index_revision,
        changes=index_changes_since(row=row, seen=expected_index_revision),
    )


def index_changes_since(*, row: Session, seen: int) -> list[dict[str, Any]]:
    """The index edits made after revision ``seen``, newest first, as their audit diffs."""
    missed = max(0, min(row.index_revision - seen, 20))
    if missed == 0:
        return []
    entries = AuditEntry.objects.filter(session=row, details__scope="index").order_by("-id")[
        :missed
    ]
    changes: list[dict[str, Any]] = []
    for entry in entries:
        for op in entry.diff or []:
            changes.append(
                {
                    **op,
                    "actor": entry.actor_label,
                    "reason": entry.reason,
                    "old_text": _readable(op.get("old")),
                    "value_text": _readable(op.get("value")),
                }
            )
    return changes


def _readable(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def conflict_diff(*, row: Session, seen_version: int) -> list[dict[str, Any]] | None:
    """The JSON patch from the version an editor saw to the latest (None when unknown)."""
    if not 1 <= seen_version <= row.latest_version:
        return None
    try:
        seen = decode_stored_body(stored_body(row, seen_version))
        current = decode_stored_body(stored_body(row, row.latest_version))
    except BodyNotFound:
        return None
    return jsondiff.diff(seen, current, max_ops=500)


def stored_body(row: Session, version: int) -> bytes:
    return get_document_store().get(session_id=str(row.id), version=version)
