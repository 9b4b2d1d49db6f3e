"""Every error the API answers, mapped once (django-ninja exception handlers).

Errors are JSON ``{"code", "message", "path"?, "details"?}`` with a fitting 4xx; anything
unexpected is a 500 that carries a correlation id and no internals. The domain raises
:class:`~sessions_api.errors.DomainError` with a stable code and never names a status:
``STATUS_BY_CODE`` below is the one place a code becomes an HTTP status.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError

from sessions_api.api.params import OUT_OF_RANGE
from sessions_api.errors import (
    DomainError,
    RateLimited,
    StoreUnavailable,
    VersionConflict,
    printable,
)

logger = logging.getLogger("sessions_api.api")

# A refusal whose code is not listed is a 422: the request was understood but not acceptable.
# That covers the many codes of InvalidDocument (``missing_field``, ``wrong_type``, ...) and
# NotEditable (``invalid_patch``, ...), which each format names for itself.
DEFAULT_STATUS = 422
STATUS_BY_CODE: dict[str, int] = {
    # the request itself
    "bad_content_length": 400,
    "unreadable_body": 400,
    "length_required": 411,
    "invalid_if_match": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "too_large": 413,
    "unsupported_media_type": 415,
    "invalid_request": 422,
    "unknown_format": 422,
    "precondition_failed": 412,
    "precondition_required": 428,
    "rate_limited": 429,
    # bytes that are not a strict, bounded JSON document
    "empty_document": 400,
    "invalid_utf8": 400,
    "invalid_json": 400,
    "duplicate_key": 400,
    "non_finite_number": 400,
    "number_out_of_range": 400,
    "too_deep": 400,
    "too_many_values": 413,
    "too_many_messages": 413,
    "too_many_documents": 413,
    "too_many_tool_calls": 413,
    "nul_character": 422,
    "lone_surrogate": 422,
    "missing_documents": 422,
    # documents and edits refused on their content
    "invalid_document": 422,
    "not_editable": 422,
    "invalid_edit": 422,
    "invalid_alert": 422,
    "reason_required": 422,
    "version_conflict": 412,
    "ambiguous_session_id": 409,  # answered as precondition_failed, with the current ETag
    # queries and lookups
    "invalid_query": 400,
    "not_found": 404,
    "version_not_found": 404,
    "checkpoint_not_found": 404,
    "run_not_found": 404,
    "alert_not_found": 404,
    # conflicts with what is stored
    "revision_conflict": 409,
    "checkpoint_exists": 409,
    "branch_exists": 409,
    "duplicate_price": 409,
    # jobs
    "unknown_job": 422,
    "invalid_params": 422,
    # dependencies
    "store_unavailable": 503,
    "source_unavailable": 503,
    "dispatch_failed": 503,
    "database_unavailable": 503,
    "database_busy": 503,
    "database_read_only": 503,
    "insufficient_storage": 507,
}
# Seconds a client should wait before retrying, for the answers that invite a retry.
_RETRY_AFTER = {
    "store_unavailable": "5",
    "database_unavailable": "5",
    "database_busy": "1",
    "database_read_only": "30",
    "insufficient_storage": "60",
}


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code, DEFAULT_STATUS)


def error_body(code: str, message: str, path: str = "", details: Any = None) -> dict[str, Any]:
    # Messages and paths may quote the client's input: never let a lone surrogate in it turn
    # the error answer into a rendering failure (a 500).
    body: dict[str, Any] = {"code": code, "message": printable(message)}
    if path:
        body["path"] = printable(path)
    if details:
        body["details"] = details
    return body


def etag_of(version: int) -> str:
    return f'"{version}"'


def domain_error_answer(exc: DomainError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) for a refusal: the one translation of a DomainError, used by
    the exception handler and by each failed item of a batch."""
    if isinstance(exc, VersionConflict):
        # Over HTTP the version an editor started from is the If-Match ETag: a stale one is a
        # failed precondition, answered with the current ETag and the diff to catch up.
        details = {
            "current_version": exc.current_version,
            "current_etag": etag_of(exc.current_version),
            "expected_version": exc.expected_version,
            "diff": exc.diff,
        }
        body = error_body("precondition_failed", exc.message, "If-Match", details)
        return status_for("precondition_failed"), body, {"ETag": etag_of(exc.current_version)}
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    elif exc.code in _RETRY_AFTER:
        headers["Retry-After"] = _RETRY_AFTER[exc.code]
    body = error_body(exc.code, exc.message, exc.path, exc.details)
    return status_for(exc.code), body, headers


def _loc_to_path(loc: Any) -> str:
    parts = [str(part) for part in loc or ()]
    # ninja prefixes the location with where the value came from ("query", "body", ...).
    if parts and parts[0] in {"query", "path", "body", "header", "cookie", "form"}:
        source, rest = parts[0], parts[1:]
        if source == "body":
            return "/" + "/".join(rest)
        return ".".join(rest) if rest else source
    return "/" + "/".join(parts)


def database_failure(exc: DatabaseError) -> tuple[int, str, str, str] | None:
    """(status, code, message, Retry-After) for a database that cannot take the request now:
    busy, read-only, full or unreachable. None for anything else (a bug: the 500 path). The
    transaction was rolled back, so nothing partial is left behind."""
    cause = exc.__cause__
    sqlstate = str(getattr(cause, "sqlstate", "") or "")
    text = str(exc).lower()
    if sqlstate.startswith("53") or "disk is full" in text or "no space left" in text:
        code, message = "insufficient_storage", "the database is out of space"
    elif sqlstate == "25006" or "readonly database" in text or "read-only" in text:
        code, message = "database_read_only", "the database is read-only right now"
    elif sqlstate in {"55P03", "40001", "40P01"} or "is locked" in text:
        code, message = "database_busy", "the database is busy; retry shortly"
    elif isinstance(exc, OperationalError | InterfaceError):
        code, message = "database_unavailable", "the database is unavailable"
    else:
        return None
    return status_for(code), code, message, _RETRY_AFTER[code]


def unknown_api_path(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any path under /api/ that no operation serves: the API's JSON 404, not the dashboard's
    HTML page, so a client with a typo in a path reads an error it can parse."""
    return JsonResponse(
        error_body("not_found", f"no API operation at {request.path}"),
        status=status_for("not_found"),
    )


def install_error_handlers(api: NinjaAPI) -> None:
    def respond(
        request: HttpRequest,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        response = api.create_response(request, body, status=status)
        for name, value in (headers or {}).items():
            response[name] = value
        return response

    @api.exception_handler(DomainError)
    def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
        if isinstance(exc, StoreUnavailable) and isinstance(exc.__cause__, DatabaseError):
            return on_database_error(request, exc.__cause__)  # the orm store: say what it said
        status, body, headers = domain_error_answer(exc)
        return respond(request, status, body, headers)

    @api.exception_handler(ValidationError)
    def on_validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        out_of_range = [e for e in exc.errors if e.get("type") == OUT_OF_RANGE]
        if out_of_range:
            # A readable value outside what can be stored or compared: the query's fault, 400.
            path = _loc_to_path(out_of_range[0].get("loc"))
            message = out_of_range[0].get("msg", "out of range")
            return respond(
                request,
                status_for("invalid_query"),
                error_body("invalid_query", f"{path}: {message}", path),
            )
        first = exc.errors[0] if exc.errors else {}
        message = first.get("msg", "invalid request")
        path = _loc_to_path(first.get("loc"))
        return respond(
            request,
            status_for("invalid_request"),
            error_body(
                "invalid_request",
                f"{path}: {message}" if path else message,
                path,
                {
                    "errors": [
                        {"path": _loc_to_path(e.get("loc")), "message": e.get("msg", "")}
                        for e in exc.errors[:20]
                    ]
                },
            ),
        )

    @api.exception_handler(AuthenticationError)
    def on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return respond(
            request,
            status_for("unauthenticated"),
            error_body(
                "unauthenticated", "a valid API key is required: Authorization: Bearer <key>"
            ),
            {"WWW-Authenticate": 'Bearer realm="api"'},
        )

    @api.exception_handler(AuthorizationError)
    def on_forbidden(request: HttpRequest, exc: AuthorizationError) -> HttpResponse:
        return respond(request, status_for("forbidden"), error_body("forbidden", str(exc.message)))

    @api.exception_handler(Http404)
    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(
            request, status_for("not_found"), error_body("not_found", str(exc) or "not found")
        )

    @api.exception_handler(HttpError)
    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return respond(request, exc.status_code, error_body("http_error", str(exc)))

    @api.exception_handler(DatabaseError)
    def on_database_error(request: HttpRequest, exc: DatabaseError) -> HttpResponse:
        failure = database_failure(exc)
        if failure is None:
            return on_unexpected(request, exc)
        status, code, message, retry_after = failure
        logger.warning(
            "database refused the request: %s", code, extra={"error": type(exc).__name__}
        )
        return respond(request, status, error_body(code, message), {"Retry-After": retry_after})

    @api.exception_handler(Exception)
    def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        # The request's X-Request-ID (config.middleware): the same id is on every log line of
        # this request and in the response header.
        correlation_id = getattr(request, "request_id", None) or uuid.uuid4().hex
        logger.exception("unhandled API error", extra={"correlation_id": correlation_id})
        return respond(
            request,
            500,
            error_body(
                "internal_error",
                "internal error; quote the correlation id when reporting it",
                details={"correlation_id": correlation_id},
            ),
        )
