"""``POST /v1/traces``: OTLP/HTTP trace export, as an OpenTelemetry SDK sends it.

Standard exporter settings work unchanged: ``OTEL_EXPORTER_OTLP_ENDPOINT=http://host:8000``
(the SDK appends ``/v1/traces``) and ``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<key>``
(a key with the ``ingest`` scope). Bodies are ``application/x-protobuf`` or
``application/json``, optionally ``Content-Encoding: gzip``.

A 200 means every span it does not count as rejected is durably stored: appended to its
session already when the export is small (``OTEL_INLINE_FOLD_SPANS``), else pending until the
``fold_otel_spans`` job appends it (every 15 seconds by default).

Answers are OTLP's own, in the request's content type: 200 with an ``ExportTraceServiceResponse``
(``partial_success`` counts the spans not stored and says why); a refusal is a
``google.rpc.Status`` with a fitting 4xx (400 for a body that does not decode), or 429/503 with
``Retry-After``, which exporters retry. Never a 500 for anything a client sent.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from sessions_api.access import keys
from sessions_api.api import ratelimit
from sessions_api.api.errors import database_failure, domain_error_answer
from sessions_api.errors import DomainError, StoreUnavailable
from sessions_api.ingest import otlp

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_GRPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    405: code_pb2.UNIMPLEMENTED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
    507: code_pb2.RESOURCE_EXHAUSTED,
}


@csrf_exempt
def traces(request: HttpRequest) -> HttpResponse:
    media = JSON if request.content_type == JSON else PROTOBUF
    if request.method != "POST":
        response = _status(media, 405, "use POST")
        response["Allow"] = "POST"
        return response
    try:
        _authenticate(request)
        export = otlp.decode_export(
            body=request.body,
            content_type=request.content_type or "",
            content_encoding=request.headers.get("Content-Encoding", ""),
        )
        outcome = otlp.receive_export(request=export, now=timezone.now())
    except DomainError as exc:
        if isinstance(exc, StoreUnavailable) and isinstance(exc.__cause__, DatabaseError):
            return _database_failure(media, exc.__cause__)
        status, body, headers = domain_error_answer(exc)
        response = _status(media, status, body["message"])
        for name, value in headers.items():
            response[name] = value
        return response
    except DatabaseError as exc:
        return _database_failure(media, exc)
    answer = ExportTraceServiceResponse()
    if outcome.rejected_spans:
        answer.partial_success.CopyFrom(
            ExportTracePartialSuccess(
                rejected_spans=outcome.rejected_spans, error_message=outcome.error_message
            )
        )
    return _message(media, 200, answer)


class _Refused(DomainError):
    pass


def _authenticate(request: HttpRequest) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _Refused("unauthenticated", "send Authorization: Bearer <key> (an ingest key)")
    key = keys.authenticate(token=token.strip())
    if key is None:
        raise _Refused("unauthenticated", "unknown or revoked API key")
    if not key.holds("ingest"):
        raise _Refused("forbidden", "this API key lacks the 'ingest' scope")
    ratelimit.check(key.id)  # RateLimited: a 429 with Retry-After
    keys.record_use(key=key, now=timezone.now())


def _database_failure(media: str, exc: DatabaseError) -> HttpResponse:
    failure = database_failure(exc)
    if failure is None:
        log.exception("OTLP export failed in the database")
        failure = (503, "database_unavailable", "the export could not be stored; retry", "5")
    status, _code, message, retry_after = failure
    response = _status(media, status, message)
    response["Retry-After"] = retry_after
    return response


def _status(media: str, status: int, message: str) -> HttpResponse:
    code = _GRPC_CODES.get(status, code_pb2.INVALID_ARGUMENT)
    return _message(media, status, status_pb2.Status(code=code, message=message))


def _message(media: str, status: int, message) -> HttpResponse:
    if media == JSON:
        body = json_format.MessageToJson(message, indent=None).encode("utf-8")
    else:
        body = message.SerializeToString()
    return HttpResponse(body, status=status, content_type=media)
