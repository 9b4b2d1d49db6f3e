"""The session API agents load from and save to: the latest document with its version as
ETag, full saves and patches guarded by If-Match.

- ``GET /sessions/{id}/document``: the latest body byte for byte, ``ETag: "<version>"``
  (``If-None-Match`` with the current ETag answers 304). Scope ``read``.
- ``PUT /sessions/{id}/document``: a whole new document in the framework's shape (keeping the
  session's id). ``If-Match: "<version>"`` is required (428 without it); a stale one is a 412
  whose details carry the current ETag and a JSON diff from that version to the latest. Scope
  ``write``.
- ``PATCH /sessions/{id}/document``: one turn instead of the whole document: ``{"messages":
  [...], "state": {...}, "step"?, "namespace"?, "status"?}`` appends the messages (in the
  framework's own message shape), merges ``state`` (RFC 7386) and sets the status
  (sessions_api/formats/editing.py documents where each format keeps them). Same If-Match rules.

Every save needs a reason: the ``X-Change-Reason`` header (percent-encode non-ASCII text) or,
for PATCH, ``"reason"`` in the body. A successful save answers 200 with the new ``ETag``; an
unchanged document (same bytes) answers 200 with ``changed: false`` and the same ETag.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Router, Schema
from ninja.errors import AuthorizationError

from sessions_api.access import roles
from sessions_api.api.auth import ApiKeyAuth
from sessions_api.api.errors import etag_of
from sessions_api.api.schemas import WarningOut, error_responses
from sessions_api.api.sessions import read_json_body, require_session
from sessions_api.editing import document as document_edits
from sessions_api.editing import selectors as editing_selectors
from sessions_api.editing.values import EditOutcome, EditRequest
from sessions_api.errors import InvalidRequest, NotFound
from sessions_api.formats.decoding import decode_document
from sessions_api.formats.editing import parse_patch
from sessions_api.sessions import selectors

router = Router(tags=["agent session API"])

REASON_HEADER = "X-Change-Reason"
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,12})"?\s*$')
_ERRORS = error_responses(400, 401, 403, 404, 409, 412, 413, 415, 422, 428, 429, 503, 507)


class AuditedKeyAuth(ApiKeyAuth):
    """The API key check, plus an audit entry for every call refused for a missing scope."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        try:
            return super().authenticate(request, token)
        except AuthorizationError:
            match = getattr(request, "resolver_match", None)
            session_id = match.kwargs.get("session_id") if match else None
            roles.record_key_refusal(request, token=token, scope=self.scope, session_id=session_id)
            raise


READ = AuditedKeyAuth("read")
WRITE = AuditedKeyAuth("write")


class SaveOut(Schema):
    id: str
    external_id: str
    format: str
    version: int
    changed: bool
    audit_id: int | None
    etag: str
    warnings: list[WarningOut]


_PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "messages": {
                            "type": "array",
                            "items": {"type": "object"},
                            "description": "messages in the framework's own shape, appended",
                        },
                        "state": {
                            "type": "object",
                            "description": "RFC 7386 merge patch onto the session state "
                            "(Picoflow: the current or named step's state)",
                        },
                        "step": {"type": "string"},
                        "namespace": {"type": "string"},
                        "status": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                }
            }
        },
    }
}
_DOCUMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"description": "The whole session document in its framework's shape"}
            }
        },
    }
}


@router.get(
    "/sessions/{session_id}/document",
    auth=READ,
    response={200: Any, 304: None, **_ERRORS},
    summary="Load a session's latest document",
)
def get_document(request: HttpRequest, session_id: str):
    """The latest version's body exactly as stored, with ``ETag: "<version>"``."""
    document = editing_selectors.get_latest_document(
        session_id=selectors.resolve_session_id(session_id=session_id)
    )
    if document is None:
        raise NotFound(f"no session with id {session_id[:80]!r}")
    etag = etag_of(document.version)
    if _etags(request.headers.get("If-None-Match")) == [document.version]:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(document.body, content_type="application/json")
    response["ETag"] = etag
    response["X-Session-Version"] = str(document.version)
    response["Cache-Control"] = "no-cache"
    return response


@router.put(
    "/sessions/{session_id}/document",
    auth=WRITE,
    response={200: SaveOut, **_ERRORS},
    openapi_extra=_DOCUMENT_BODY,
    summary="Save a whole new document (If-Match required)",
)
def put_document(request: HttpRequest, response: HttpResponse, session_id: str):
    """Store the body as the next version if ``If-Match`` names the latest version."""
    expected = expected_version(request)
    body = read_json_body(request, limit=settings.INGEST_MAX_DOCUMENT_BYTES)
    outcome = document_edits.save_document(
        edit=edit_request(
            request, session_id=session_id, reason=header_reason(request), expected_version=expected
        ),
        body=body,
    )
    return saved(outcome, response)


@router.patch(
    "/sessions/{session_id}/document",
    auth=WRITE,
    response={200: SaveOut, **_ERRORS},
    openapi_extra=_PATCH_BODY,
    summary="Append messages and merge state (If-Match required)",
)
def patch_document(request: HttpRequest, response: HttpResponse, session_id: str):
    """Append one turn's messages, merge state and set the status in one new version."""
    expected = expected_version(request)
    body = read_json_body(request, limit=settings.INGEST_MAX_DOCUMENT_BYTES)
    value = decode_document(body)
    reason = value.get("reason") if isinstance(value, dict) else None
    if reason is not None and not isinstance(reason, str):
        raise InvalidRequest("invalid_patch", "reason must be a string", path="/reason")
    require_session(session_id)
    patch = parse_patch(value, statuses=_STATUSES)
    outcome = document_edits.patch_document(
        edit=edit_request(
            request,
            session_id=session_id,
            reason=reason or header_reason(request),
            expected_version=expected,
        ),
        patch=patch,
    )
    return saved(outcome, response)


_STATUSES = ("running", "completed", "aborted", "abandoned", "error")


# --- shared by the editing routers ------------------------------------------------------------


def _etags(header: str | None) -> list[int]:
    if not header:
        return []
    found = []
    for part in header.split(","):
        match = _ETAG.match(part)
        if match:
            found.append(int(match.group(1)))
    return found


def expected_version(request: HttpRequest, fallback: int | None = None) -> int:
    """The version named by ``If-Match`` (or ``fallback`` from the body); 428 without one."""
    header = request.headers.get("If-Match")
    if header is None:
        if fallback is not None:
            return fallback
        raise InvalidRequest(
            "precondition_required",
            'send If-Match: "<version>" with the ETag you loaded (GET .../document)',
            path="If-Match",
        )
    if header.strip() == "*":
        # "any version" is no precondition at all: a save must name the version it started from.
        raise InvalidRequest(
            "precondition_required",
            'If-Match: * names no version; send If-Match: "<version>" with the ETag you loaded',
            path="If-Match",
        )
    versions = _etags(header)
    if len(versions) != 1 or header.count(",") != 0:
        raise InvalidRequest(
            "invalid_if_match",
            'If-Match must name exactly one version, like If-Match: "7"',
            path="If-Match",
        )
    return versions[0]


def header_reason(request: HttpRequest) -> str:
    return unquote(request.headers.get(REASON_HEADER, "") or "")


def edit_request(
    request: HttpRequest, *, session_id: str, reason: str, expected_version: int | None = None
) -> EditRequest:
    """The edit an API call asks for, made by its key, now (the session named by its id or its
    unambiguous external id)."""
    return EditRequest(
        session_id=selectors.resolve_session_id(session_id=session_id),
        actor=roles.actor_for_key(request.auth),
        reason=reason,
        now=timezone.now(),
        expected_version=expected_version,
    )


def saved(outcome: EditOutcome, response: HttpResponse) -> dict[str, Any]:
    """The answer to a save; ``response`` is ninja's temporal response (for the headers)."""
    response["ETag"] = etag_of(outcome.version)
    response["X-Session-Version"] = str(outcome.version)
    return {
        "id": outcome.session_id,
        "external_id": outcome.external_id,
        "format": outcome.format,
        "version": outcome.version,
        "changed": outcome.changed,
        "audit_id": outcome.audit_id,
        "etag": etag_of(outcome.version),
        "warnings": outcome.warnings,
    }
