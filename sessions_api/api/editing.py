"""REST for the audit log, checkpoints, restores and branches. Thin: every write is an editing
service, every read an editing selector; their refusals answer through api/errors.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema, Status
from pydantic import Field

from sessions_api.access import roles
from sessions_api.api.documents import (
    _ERRORS,
    READ,
    WRITE,
    edit_request,
    expected_version,
    header_reason,
    saved,
)
from sessions_api.api.documents import SaveOut as EditOut
from sessions_api.api.errors import etag_of
from sessions_api.api.params import Int64, Moment
from sessions_api.api.schemas import deprecated_list
from sessions_api.api.sessions import require_session
from sessions_api.editing import lineage
from sessions_api.editing import selectors as editing_selectors
from sessions_api.errors import InvalidRequest

router = Router(tags=["editing"])
MAX_VERSION = 2**31 - 1  # version numbers are 32-bit columns: larger ones cannot exist


class AuditEntryOut(Schema):
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


class AuditPageOut(Schema):
    session_id: str
    items: list[AuditEntryOut]
    next_cursor: str | None


class CheckpointIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="default: the latest version"
    )
    note: str = Field(default="", max_length=2000)


class CheckpointOut(Schema):
    session_id: str
    name: str
    version: int
    note: str
    created_by: str | None = None
    created_at: datetime
    audit_id: int | None = None


class CheckpointListOut(Schema):
    session_id: str
    items: list[CheckpointOut]
    next_cursor: str | None = Field(description="always null: every checkpoint is listed at once")
    checkpoints: list[CheckpointOut] = deprecated_list("checkpoints")


class RestoreIn(Schema):
    checkpoint: str | None = Field(default=None, description="restore this checkpoint, or")
    version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="revert to this version"
    )
    reason: str = Field(default="", max_length=2000)
    expected_version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_VERSION,
        description="instead of If-Match: the version you started from",
    )


class BranchIn(Schema):
    version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="default: the latest version"
    )
    id: str | None = Field(
        default=None,
        max_length=200,
        description="the branch's session id as its document writes it (default: <id>~branch-<n>)",
    )
    reason: str = Field(default="", max_length=2000)


class BranchOut(Schema):
    id: str
    external_id: str
    format: str
    version: int
    parent_id: str
    branched_from_version: int
    audit_id: int


@router.get(
    "/sessions/{session_id}/audit",
    auth=READ,
    response={200: AuditPageOut, **_ERRORS},
    summary="List a session's audit entries",
)
def list_audit(
    request: HttpRequest,
    session_id: str,
    action: str | None = None,
    actor: str | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    cursor: str | None = None,
    limit: Int64 = 50,
):
    """Who changed what, when and why (with a JSON diff), newest first; page with
    ``next_cursor``. Entries of deleted sessions stay in the dashboard's /audit/ page."""
    record = require_session(session_id)
    page = editing_selectors.list_audit(
        filters=editing_selectors.AuditFilters(
            session=record.id, actor=actor, action=action, since=since, until=until
        ),
        cursor=cursor,
        limit=limit,
    )
    return {"session_id": record.id, "items": page.items, "next_cursor": page.next_cursor}


@router.get(
    "/sessions/{session_id}/checkpoints",
    auth=READ,
    response={200: CheckpointListOut, **_ERRORS},
    summary="List a session's checkpoints",
)
def list_checkpoints(request: HttpRequest, session_id: str):
    record = require_session(session_id)
    checkpoints = [
        {"session_id": record.id, **vars_of(c)}
        for c in editing_selectors.list_checkpoints(session_id=record.id)
    ]
    return {
        "session_id": record.id,
        "items": checkpoints,
        "next_cursor": None,
        "checkpoints": checkpoints,
    }


@router.post(
    "/sessions/{session_id}/checkpoints",
    auth=WRITE,
    response={201: CheckpointOut, **_ERRORS},
    summary="Pin a version as a named checkpoint",
)
def create_checkpoint(request: HttpRequest, session_id: str, payload: CheckpointIn):
    """Pinned versions are never pruned. Names are unique per session (409 otherwise)."""
    outcome = lineage.create_checkpoint(
        edit=edit_request(request, session_id=session_id, reason=payload.note),
        name=payload.name,
        version=payload.version,
    )
    return Status(
        201,
        {
            "session_id": outcome.session_id,
            "name": outcome.name,
            "version": outcome.version,
            "note": outcome.note,
            "created_by": roles.actor_for_key(request.auth).label,
            "created_at": outcome.created_at,
            "audit_id": outcome.audit_id,
        },
    )


@router.post(
    "/sessions/{session_id}/restore",
    auth=WRITE,
    response={200: EditOut, **_ERRORS},
    summary="Restore a checkpoint or revert to a version",
)
def restore(request: HttpRequest, response: HttpResponse, session_id: str, payload: RestoreIn):
    """``{"checkpoint": name}`` or ``{"version": N}``: the old bytes become the next version.
    Needs ``If-Match`` (or ``expected_version``) and a reason, like every save."""
    if (payload.checkpoint is None) == (payload.version is None):
        raise InvalidRequest("invalid_request", "name either a checkpoint or a version", path="/")
    expected = expected_version(request, fallback=payload.expected_version)
    edit = edit_request(
        request,
        session_id=session_id,
        reason=payload.reason or header_reason(request),
        expected_version=expected,
    )
    if payload.checkpoint is not None:
        outcome = lineage.restore_checkpoint(edit=edit, name=payload.checkpoint)
    else:
        outcome = lineage.revert_to_version(edit=edit, version=payload.version or 0)
    return saved(outcome, response)


@router.post(
    "/sessions/{session_id}/branch",
    auth=WRITE,
    response={201: BranchOut, **_ERRORS},
    summary="Branch a session from a version into a new session",
)
def branch(request: HttpRequest, response: HttpResponse, session_id: str, payload: BranchIn):
    """A new session whose first version is the chosen version, with a new id; both sessions
    show the link (``GET /sessions/{id}`` of either; the dashboard's session page)."""
    outcome = lineage.branch_session(
        edit=edit_request(
            request, session_id=session_id, reason=payload.reason or header_reason(request)
        ),
        version=payload.version,
        new_id=payload.id,
    )
    response["ETag"] = etag_of(outcome.version)
    return Status(
        201,
        {
            "id": outcome.session_id,
            "external_id": outcome.external_id,
            "format": outcome.format,
            "version": outcome.version,
            "parent_id": outcome.parent_id,
            "branched_from_version": outcome.branched_from_version,
            "audit_id": outcome.audit_id,
        },
    )


def vars_of(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__dataclass_fields__}
