"""Every error the API answers, mapped once (django-ninja exception handlers).

Errors are JSON ``{"code", "message", "path"?, "details"?}`` with a fitting 4xx; anything
unexpected is a 500 that carries a correlation id and no internals.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError

from sessions_api.formats import InvalidDocument
from sessions_api.formats.decoding import RejectedDocument, printable
from sessions_api.ingest.services import RevisionConflict
from sessions_api.sessions.selectors import InvalidQuery
from sessions_api.storage import BodyNotFound, StoreUnavailable

logger = logging.getLogger("sessions_api.api")


class ApiError(Exception):
    """Raise from an operation to answer with a specific status and code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        path: str = "",
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        self.details = details
        self.headers = headers or {}


def error_body(code: str, message: str, path: str = "", details: Any = None) -> dict[str, Any]:
    # Messages and paths may quote the client's input: never let a lone surrogate in it turn
    # the error answer into a rendering failure (a 500).
    body: dict[str, Any] = {"code": code, "message": printable(message)}
    if path:
        body["path"] = printable(path)
    if details:
        body["details"] = details
    return body


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
    """(status, code, message, Retry-After) for a database that cannot take the request now
    (RELIABILITY F6, F8): busy, read-only, full or unreachable. None for anything else (a bug:
    the 500 path). The transaction was rolled back, so nothing partial is left behind."""
    cause = exc.__cause__
    sqlstate = str(getattr(cause, "sqlstate", "") or "")
    text = str(exc).lower()
    if sqlstate.startswith("53") or "disk is full" in text or "no space left" in text:
        return 507, "insufficient_storage", "the database is out of space", "60"
    if sqlstate == "25006" or "readonly database" in text or "read-only" in text:
        return 503, "database_read_only", "the database is read-only right now", "30"
    if sqlstate in {"55P03", "40001", "40P01"} or "is locked" in text:
        return 503, "database_busy", "the database is busy; retry shortly", "1"
    if isinstance(exc, OperationalError | InterfaceError):
        return 503, "database_unavailable", "the database is unavailable", "5"
    return None


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

    @api.exception_handler(ApiError)
    def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return respond(
            request,
            exc.status,
            error_body(exc.code, exc.message, exc.path, exc.details),
            exc.headers,
        )

    @api.exception_handler(RejectedDocument)
    def on_rejected(request: HttpRequest, exc: RejectedDocument) -> HttpResponse:
        return respond(request, exc.status, error_body(exc.code, exc.message, exc.path))

    @api.exception_handler(InvalidDocument)
    def on_invalid(request: HttpRequest, exc: InvalidDocument) -> HttpResponse:
        return respond(request, 422, error_body(exc.code, exc.message, exc.path))

    @api.exception_handler(RevisionConflict)
    def on_conflict(request: HttpRequest, exc: RevisionConflict) -> HttpResponse:
        return respond(
            request, 409, error_body("revision_conflict", exc.message, "/revision", exc.details)
        )

    @api.exception_handler(InvalidQuery)
    def on_invalid_query(request: HttpRequest, exc: InvalidQuery) -> HttpResponse:
        return respond(request, 400, error_body("invalid_query", exc.message, exc.path))

    @api.exception_handler(ValidationError)
    def on_validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        first = exc.errors[0] if exc.errors else {}
        message = first.get("msg", "invalid request")
        path = _loc_to_path(first.get("loc"))
        return respond(
            request,
            422,
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
            401,
            error_body(
                "unauthenticated", "a valid API key is required: Authorization: Bearer <key>"
            ),
            {"WWW-Authenticate": 'Bearer realm="api"'},
        )

    @api.exception_handler(AuthorizationError)
    def on_forbidden(request: HttpRequest, exc: AuthorizationError) -> HttpResponse:
        return respond(request, 403, error_body("forbidden", str(exc.message)))

    @api.exception_handler(Http404)
    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, error_body("not_found", str(exc) or "not found"))

    @api.exception_handler(HttpError)
    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return respond(request, exc.status_code, error_body("http_error", str(exc)))

    @api.exception_handler(BodyNotFound)
    def on_body_missing(request: HttpRequest, exc: BodyNotFound) -> HttpResponse:
        # A version whose body was pruned (or lost by the store) while its number is still
        # known: the client asked for something that is not there, not a server fault.
        return respond(
            request, 404, error_body("not_found", "that version's body is not stored", "version")
        )

    @api.exception_handler(StoreUnavailable)
    def on_store_down(request: HttpRequest, exc: StoreUnavailable) -> HttpResponse:
        if isinstance(exc.__cause__, DatabaseError):  # the orm store: say what the database said
            return on_database_error(request, exc.__cause__)
        return respond(
            request,
            503,
            error_body("store_unavailable", "the document store is unavailable"),
            {"Retry-After": "5"},
        )

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
