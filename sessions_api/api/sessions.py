"""REST operations on sessions: thin wrappers over services and selectors."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, UnreadablePostError
from django.utils import timezone
from ninja import Router, Status

from sessions_api.access import roles
from sessions_api.api import auth
from sessions_api.api.errors import domain_error_answer
from sessions_api.api.params import Int64, Moment
from sessions_api.api.schemas import (
    BatchOut,
    IngestOut,
    SessionDetailOut,
    SessionListOut,
    TimelineOut,
    VersionsOut,
    error_responses,
)
from sessions_api.editing import lineage
from sessions_api.editing.values import EditRequest
from sessions_api.errors import BodyNotFound, InvalidRequest, NotFound
from sessions_api.formats import FORMAT_IDS
from sessions_api.ingest import services
from sessions_api.search import matching
from sessions_api.search.query import parse_query
from sessions_api.sessions import selectors
from sessions_api.sessions.records import SessionRecord

router = Router(tags=["sessions"])

_JSON_TYPES = ("application/json", "text/json", "text/plain")
_RAW_JSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"description": "The session document exactly as the framework saved it"}
            }
        },
    }
}
_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503, 507)


def read_json_body(request: HttpRequest, *, limit: int) -> bytes:
    """The request body, refused with 413 before reading when its declared length is too big,
    and with 415 when it does not claim to be JSON."""
    content_type = request.content_type or ""
    if content_type and not (content_type in _JSON_TYPES or content_type.endswith("+json")):
        raise InvalidRequest(
            "unsupported_media_type",
            f"send the document as application/json, not {content_type[:100]}",
        )
    if not request.META.get("CONTENT_LENGTH") and _is_chunked(request):
        return _read_chunked(request, limit=limit)
    declared = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(declared)
    except ValueError:
        length = -1
    if length < 0:
        raise InvalidRequest("bad_content_length", "Content-Length is not a non-negative number")
    if length > limit:
        raise InvalidRequest("too_large", f"body is {length} bytes; the limit is {limit}")
    try:
        body = request.body
    except RequestDataTooBig:
        # The length was absent or understated (a chunked body under ASGI) and Django's own
        # cap stopped the read: still the client's oversize body, not a server error.
        raise InvalidRequest("too_large", f"body is over the limit of {limit} bytes") from None
    except UnreadablePostError:
        raise InvalidRequest("unreadable_body", "the request body could not be read") from None
    if len(body) > limit:
        raise InvalidRequest("too_large", f"body is {len(body)} bytes; the limit is {limit}")
    return body


def _is_chunked(request: HttpRequest) -> bool:
    return "chunked" in (request.META.get("HTTP_TRANSFER_ENCODING") or "").lower()


def _read_chunked(request: HttpRequest, *, limit: int) -> bytes:
    """A chunked body (no Content-Length): the server decodes the chunks, and we read them
    under the same cap, stopping at one byte over it (413) so an endless stream costs at most
    the cap. Django's ``request.body`` would read such a body as empty."""
    stream = request.META.get("wsgi.input")
    if stream is None:
        raise InvalidRequest("length_required", "send a Content-Length with the body")
    parts: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            part = stream.read(min(1 << 20, limit + 1 - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
    except (OSError, ValueError):
        raise InvalidRequest("unreadable_body", "the request body could not be read") from None
    if size > limit:
        raise InvalidRequest("too_large", f"body is over the limit of {limit} bytes")
    return b"".join(parts)


def _format_param(format: str | None) -> str | None:
    if format is not None and format not in FORMAT_IDS:
        raise InvalidRequest(
            "unknown_format",
            f"unknown format id {format!r}; use one of: {', '.join(FORMAT_IDS)}",
            path="format",
        )
    return format or None


@router.post(
    "/sessions",
    response={200: IngestOut, 201: IngestOut, **_ERRORS},
    auth=auth.INGEST,
    openapi_extra=_RAW_JSON_BODY,
    summary="Ingest one document",
)
def ingest_session(request: HttpRequest, format: str | None = None, external_id: str | None = None):
    """Ingest one session document, body exactly as the framework saved it.

    201 for a new session, 200 for a new version or for bytes identical to the latest version
    (idempotent). The answer says which detection rule matched.
    """
    body = read_json_body(request, limit=settings.INGEST_MAX_DOCUMENT_BYTES)
    outcome = services.ingest_document(
        body=body, format_id=_format_param(format), external_id=external_id
    )
    return Status(201 if outcome.created else 200, outcome)


@router.post(
    "/sessions/batch",
    response={200: BatchOut, **_ERRORS},
    auth=auth.INGEST,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["documents"],
                        "properties": {"documents": {"type": "array", "items": {}}},
                    }
                }
            },
        }
    },
    summary="Ingest a batch of documents",
)
def ingest_batch(request: HttpRequest, format: str | None = None):
    """Ingest ``{"documents": [...]}``; each item gets its own result, and a bad item never
    blocks the others."""
    body = read_json_body(request, limit=settings.INGEST_MAX_BATCH_BYTES)
    batch = services.ingest_batch(body=body, format_id=_format_param(format))
    results = []
    for item in batch.results:
        if item.outcome is not None:
            results.append(
                {
                    "index": item.index,
                    "ok": True,
                    "id": item.outcome.id,
                    "external_id": item.outcome.external_id,
                    "version": item.outcome.version,
                    "created": item.outcome.created,
                    "changed": item.outcome.changed,
                }
            )
        elif item.error is not None:
            _, error, _ = domain_error_answer(item.error)
            results.append({"index": item.index, "ok": False, "error": error})
    return {"results": results}


@router.get(
    "/sessions", response={200: SessionListOut, **_ERRORS}, auth=auth.READ, summary="List sessions"
)
def list_sessions(
    request: HttpRequest,
    status: str | None = None,
    format: str | None = None,
    agent: str | None = None,
    user: str | None = None,
    model: str | None = None,
    tool: str | None = None,
    has_errors: bool | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    q: str | None = None,
    order: str = "-updated_at",
    cursor: str | None = None,
    limit: Int64 = 50,
):
    """Sessions matching every given filter, newest first by default; page with next_cursor.
    ``status`` and ``format`` take comma-separated lists."""
    filters = selectors.SessionFilters(
        status=_csv(status),
        format=_csv(format),
        agent=agent,
        user=user,
        model=model,
        tool=tool,
        has_errors=has_errors,
        since=since,
        until=until,
        q=q,
    )
    page = selectors.list_sessions(filters=filters, order=order, cursor=cursor, limit=limit)
    found = matching.first_matches([r.id for r in page.items], parse_query(q)) if q else {}
    return {
        "items": [_list_item(record, found.get(record.id)) for record in page.items],
        "next_cursor": page.next_cursor,
    }


@router.get(
    "/sessions/{session_id}",
    response={200: SessionDetailOut, **_ERRORS},
    auth=auth.READ,
    summary="Get a session's canonical view",
)
def get_session(request: HttpRequest, session_id: str):
    """Summary, steps (name, active, state, model), flows and namespaces, metadata, warnings."""
    record = require_session(session_id)
    parsed = selectors.get_parsed_version(record=record)
    canonical = parsed.session
    return {
        "id": record.id,
        "external_id": record.external_id,
        "format": record.format,
        "format_variant": record.format_variant,
        "detected_by": record.detection_rule,
        "version": record.version,
        "title": record.title,
        "raw_status": record.raw_status,
        "status_before_expiry": record.status_before_expiry,
        "on_hold": record.on_hold,
        "revision": record.revision,
        "parent_external_id": record.parent_external_id,
        "first_received_at": record.first_received_at,
        "last_received_at": record.last_received_at,
        "tokens_source": record.tokens_source,
        "summary": record.summary,
        "steps": [
            {
                "name": s.name,
                "order": s.order,
                "active": s.is_active,
                "state": s.state,
                "model": s.model,
                "model_params": s.model_params,
                "saved_at": s.saved_at,
                "level": s.level,
                "flow": s.flow,
            }
            for s in canonical.steps
        ],
        "flows": list(canonical.flows),
        "state": canonical.state,
        "context": canonical.context,
        "metadata": canonical.metadata,
        "log_counts": dict(Counter(entry.level.value for entry in canonical.logs)),
        "warnings": parsed.warnings,
    }


@router.get(
    "/sessions/{session_id}/raw",
    auth=auth.READ,
    response={200: Any, **_ERRORS},
    summary="Get a stored body, byte for byte",
)
def get_raw(request: HttpRequest, session_id: str, version: Int64 | None = None):
    """The document exactly as received; ``?version=N`` for an older one."""
    record = require_session(session_id)
    number = version or record.version
    try:
        body = selectors.get_raw_body(session_id=record.id, version=number)
    except BodyNotFound:
        raise NotFound(f"version {number} of this session does not exist", path="version") from None
    response = HttpResponse(body, content_type="application/json")
    response["ETag"] = f'"{number}"'
    response["X-Session-Version"] = str(number)
    return response


@router.get(
    "/sessions/{session_id}/timeline",
    response={200: TimelineOut, **_ERRORS},
    auth=auth.READ,
    summary="Get a session's timeline, paged",
)
def get_timeline(
    request: HttpRequest,
    session_id: str,
    cursor: str | None = None,
    limit: Int64 = 100,
    version: Int64 | None = None,
):
    """Ordered events: messages, tool calls with their paired results and status source, step
    changes and log entries. The cursor stays on the version it started with."""
    record = require_session(session_id)
    if version is not None and not 1 <= version <= record.version:
        raise NotFound(f"version {version} does not exist", path="version")
    number, events, next_cursor, total = selectors.get_timeline_page(
        record=record, cursor=cursor, limit=limit, version=version
    )
    return {
        "session_id": record.id,
        "version": number,
        "total": total,
        "items": events,
        "next_cursor": next_cursor,
        "events": events,
    }


@router.get(
    "/sessions/{session_id}/versions",
    response={200: VersionsOut, **_ERRORS},
    auth=auth.READ,
    summary="List a session's versions",
)
def list_versions(request: HttpRequest, session_id: str):
    record = require_session(session_id)
    versions = selectors.list_versions(session_id=record.id)
    return {"session_id": record.id, "items": versions, "next_cursor": None, "versions": versions}


@router.delete(
    "/sessions/{session_id}",
    response={204: None, **_ERRORS},
    auth=auth.ADMIN,
    summary="Delete a session with all its versions",
)
def delete_session(request: HttpRequest, session_id: str):
    """Delete with every version. Audited; ``X-Change-Reason`` says why (optional here)."""
    record = require_session(session_id)
    lineage.delete_session(
        edit=EditRequest(
            session_id=record.id,
            actor=roles.actor_for_key(request.auth),
            reason=request.headers.get("X-Change-Reason") or "deleted through the API",
            now=timezone.now(),
        )
    )
    return Status(204, None)


def require_session(session_id: str) -> SessionRecord:
    """The session's index record; NotFound (404) when there is none."""
    record = selectors.get_session(session_id=session_id)
    if record is None:
        raise NotFound(f"no session with id {session_id[:80]!r}")
    return record


def _list_item(record: SessionRecord, match: matching.SearchMatch | None) -> dict[str, Any]:
    return {
        "id": record.id,
        "external_id": record.external_id,
        "format": record.format,
        "version": record.version,
        "title": record.title,
        "has_errors": record.has_errors,
        "summary": record.summary,
        "match": None
        if match is None
        else {
            "event_index": match.event_index,
            "seq": match.seq,
            "kind": match.kind,
            "snippet": match.snippet.text,
            "highlights": list(match.snippet.highlights),
        },
    }


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]
