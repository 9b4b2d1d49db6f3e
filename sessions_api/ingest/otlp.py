"""OpenTelemetry in: an OTLP trace export becomes spans appended to sessions of format ``otel``.

An export (``ExportTraceServiceRequest``, protobuf or OTLP/JSON, decoded with the official
``opentelemetry-proto`` classes) is read span by span into the JSON objects of the ``otel``
document (sessions_api/formats/otel/parse.py). Spans are grouped into sessions by
``gen_ai.conversation.id``, else OpenInference's ``session.id``, else their trace id; a span
without either goes where its trace goes (``OtelTrace`` remembers a trace's session across
exports). Each session's new spans are appended to its latest document, in start-time then
span-id order, and stored through the ordinary ingest path, so versions, the index, editing,
expiry and analytics treat it like any other session. A span id already stored changes
nothing, so an exporter's retry is harmless.

A span that cannot be stored is counted in ``rejected_spans`` with its reason: a malformed
trace or span id, a string no store can keep, or a session its spans would make too large.
The answer is given only after every accepted span is committed.
"""

from __future__ import annotations

import base64
import math
import re
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from sessions_api import conf, db
from sessions_api.errors import DomainError, InvalidRequest, RejectedDocument
from sessions_api.ingest.services import (
    delete_session,
    ingest_document,
    store_version_of_locked_session,
)
from sessions_api.models import DocumentVersion, OtelSpan, OtelTrace, Session
from sessions_api.storage import get_document_store

FORMAT_ID = "otel"
GROUP_KEYS = ("gen_ai.conversation.id", "session.id")
_KEY_MAX = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# AnyValue nests (arrays, key-value lists); deeper values are kept as their text.
_MAX_VALUE_DEPTH = 8
_MAX_SAFE_INTEGER = 2**53 - 1
_SPAN_KINDS = {number: name.removeprefix("SPAN_KIND_") for name, number in Span.SpanKind.items()}
_STATUS_CODES = {
    number: name.removeprefix("STATUS_CODE_") for name, number in Status.StatusCode.items()
}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class _RejectedSpan(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ExportOutcome:
    accepted_spans: int = 0
    rejected_spans: int = 0
    # reason -> how many spans it cost
    reasons: Counter = field(default_factory=Counter)
    sessions: list[str] = field(default_factory=list)  # ids of the sessions that changed

    def merge_dropped(self, folded: FoldResult) -> None:
        """Spans a fold could not append count as rejected: the answer has not gone yet."""
        self.accepted_spans -= folded.dropped_spans
        self.rejected_spans += folded.dropped_spans
        self.reasons.update(folded.dropped_reasons)

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejected_spans += count
        self.reasons[reason] += count

    @property
    def error_message(self) -> str:
        return "; ".join(
            f"{count} span{'s' if count != 1 else ''}: {reason}"
            for reason, count in self.reasons.most_common()
        )


# --- decoding -----------------------------------------------------------------------------


def decode_export(
    *, body: bytes, content_type: str, content_encoding: str
) -> ExportTraceServiceRequest:
    """The export in ``body``; InvalidRequest (400) when it does not decode, RejectedDocument
    (413) when it is larger than the batch limit, compressed or not."""
    limit = settings.INGEST_MAX_BATCH_BYTES
    if len(body) > limit:
        raise RejectedDocument("too_large", f"export is {len(body)} bytes; the limit is {limit}")
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        body = _gunzip(body, limit)
    elif encoding not in ("", "identity"):
        raise InvalidRequest(
            "unsupported_media_type", f"Content-Encoding {encoding[:40]!r}; use gzip or none"
        )
    media = content_type.split(";")[0].strip().lower()
    request = ExportTraceServiceRequest()
    if not body:
        return request  # an export of nothing, in any encoding
    if media == "application/x-protobuf":
        try:
            request.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise InvalidRequest("unreadable_body", f"not an OTLP protobuf export: {exc}") from None
    elif media == "application/json":
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest("unreadable_body", f"not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise InvalidRequest("unreadable_body", "an OTLP/JSON export is a JSON object")
        try:
            json_format.ParseDict(_ids_as_base64(value), request, ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
            raise InvalidRequest(
                "unreadable_body", f"not an OTLP/JSON export: {str(exc)[:300]}"
            ) from None
    else:
        raise InvalidRequest(
            "unsupported_media_type",
            f"Content-Type {media[:60]!r}; use application/x-protobuf or application/json",
        )
    return request


def _gunzip(body: bytes, limit: int) -> bytes:
    """Decompress at most ``limit`` bytes: a small bomb is refused, not inflated."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidRequest("unreadable_body", f"not gzip: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise RejectedDocument("too_large", f"export inflates past the limit of {limit} bytes")
    return data


def _ids_as_base64(value: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping of bytes is
    base64: convert them (a malformed id becomes empty, and its span is rejected)."""
    if isinstance(value, dict):
        converted = {}
        for key, item in value.items():
            if key in _ID_FIELDS and isinstance(item, str):
                try:
                    item = base64.b64encode(bytes.fromhex(item)).decode("ascii")
                except ValueError:
                    item = ""
            else:
                item = _ids_as_base64(item)
            converted[key] = item
        return converted
    if isinstance(value, list):
        return [_ids_as_base64(item) for item in value]
    return value


# --- spans into JSON ----------------------------------------------------------------------


def _value(value: AnyValue, depth: int = 0) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
        if "\x00" in text:
            raise _RejectedSpan("a string holds NUL (\\u0000), which no store can keep")
        return text
    if kind == "int_value":
        number = value.int_value
        return number if -_MAX_SAFE_INTEGER <= number <= _MAX_SAFE_INTEGER else str(number)
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else str(number)
    if kind == "bool_value":
        return value.bool_value
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if depth >= _MAX_VALUE_DEPTH:
        return str(value)[:1000]
    if kind == "array_value":
        return [_value(item, depth + 1) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values, depth + 1)
    return None


def _attributes(pairs: Any, depth: int = 0) -> dict[str, Any]:
    attributes = {}
    for pair in pairs:
        if "\x00" in pair.key:
            raise _RejectedSpan("an attribute key holds NUL (\\u0000)")
        attributes[pair.key] = _value(pair.value, depth)
    return attributes


def _span_json(span: Span, resource: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    if len(span.trace_id) != 16 or not any(span.trace_id):
        raise _RejectedSpan("trace_id is not 16 bytes, or is all zero")
    if len(span.span_id) != 8 or not any(span.span_id):
        raise _RejectedSpan("span_id is not 8 bytes, or is all zero")
    if "\x00" in span.name:
        raise _RejectedSpan("the span name holds NUL (\\u0000)")
    out: dict[str, Any] = {"trace_id": span.trace_id.hex(), "span_id": span.span_id.hex()}
    if len(span.parent_span_id) == 8 and any(span.parent_span_id):
        out["parent_span_id"] = span.parent_span_id.hex()
    out["name"] = span.name
    out["kind"] = _SPAN_KINDS.get(span.kind, "UNSPECIFIED")
    # Strings, as OTLP/JSON writes them: nanoseconds since 1970 exceed 2^53.
    out["start_time_unix_nano"] = str(span.start_time_unix_nano)
    out["end_time_unix_nano"] = str(span.end_time_unix_nano)
    if span.status.code or span.status.message:
        if "\x00" in span.status.message:
            raise _RejectedSpan("the status message holds NUL (\\u0000)")
        out["status"] = {
            "code": _STATUS_CODES.get(span.status.code, "UNSET"),
            "message": span.status.message,
        }
    out["attributes"] = _attributes(span.attributes)
    if span.events:
        out["events"] = [
            {
                "name": event.name.replace("\x00", "\ufffd"),
                "time_unix_nano": str(event.time_unix_nano),
                "attributes": _attributes(event.attributes),
            }
            for event in span.events
        ]
    out["resource"] = resource
    out["scope"] = scope
    return out


def _group_key(attributes: dict[str, Any]) -> tuple[str, str] | None:
    for name in GROUP_KEYS:
        value = attributes.get(name)
        if isinstance(value, str):
            value = value.strip()
            if value and len(value) <= _KEY_MAX and not _CONTROL.search(value):
                return value, name
    return None


@dataclass
class _Group:
    key: str
    grouped_by: str
    spans: dict[str, dict[str, Any]] = field(default_factory=dict)  # span id -> span


def read_export(
    request: ExportTraceServiceRequest, outcome: ExportOutcome
) -> tuple[list[tuple[dict[str, Any], tuple[str, str] | None]], set[str]]:
    """Every storable span with its own group key (or None), and the trace ids seen."""
    spans = []
    traces: set[str] = set()
    for resource_spans in request.resource_spans:
        try:
            resource = _attributes(resource_spans.resource.attributes)
        except _RejectedSpan as exc:
            outcome.reject(f"resource: {exc.reason}", _count_spans(resource_spans))
            continue
        for scope_spans in resource_spans.scope_spans:
            scope = {"name": scope_spans.scope.name, "version": scope_spans.scope.version}
            if "\x00" in scope["name"] + scope["version"]:
                outcome.reject("scope: a string holds NUL (\\u0000)", len(scope_spans.spans))
                continue
            for span in scope_spans.spans:
                try:
                    converted = _span_json(span, resource, scope)
                except _RejectedSpan as exc:
                    outcome.reject(exc.reason)
                    continue
                spans.append((converted, _group_key(converted["attributes"])))
                traces.add(converted["trace_id"])
    return spans, traces


def _count_spans(resource_spans: Any) -> int:
    return sum(len(scope_spans.spans) for scope_spans in resource_spans.scope_spans)


# --- receiving: spans are durable before the answer ------------------------------------------

_PENDING_FIELDS = (
    "trace_id",
    "span_id",
    "session_key",
    "grouped_by",
    "body",
    "received_at",
)


def receive_export(
    *, request: ExportTraceServiceRequest, now: datetime | None = None
) -> ExportOutcome:
    """Store the export's spans as pending, in one transaction, and return what was refused.

    A 200 is answered only after this commits, so an acknowledged span survives any restart;
    the ``fold_otel_spans`` job then appends pending spans to their sessions. A span already
    pending (an exporter's retry) is not stored twice."""
    now = now or timezone.now()
    outcome = ExportOutcome()
    spans, _traces = read_export(request, outcome)
    rows = [
        (
            span["trace_id"],
            span["span_id"],
            key[0] if key else "",
            key[1] if key else "",
            orjson.dumps(span),
            now,
        )
        for span, key in spans
    ]
    if rows:
        with transaction.atomic():
            db.insert_rows(OtelSpan, _PENDING_FIELDS, rows, if_absent=True, batch_size=1000)
    outcome.accepted_spans = len(rows)
    if 0 < len(rows) <= conf.otel_inline_fold_spans():
        # A small export: append it now rather than at the next fold (its spans are
        # committed already; a fold running meanwhile skips span ids stored twice).
        folded = fold_otel_spans(now=now, only={(row[0], row[1]) for row in rows})
        outcome.merge_dropped(folded)
    return outcome


# --- folding: pending spans appended to their sessions ------------------------------------


@dataclass(frozen=True)
class FoldResult:
    dry_run: bool
    folded_spans: int
    sessions_changed: int
    dropped_spans: int
    pending_spans: int
    # reason -> spans dropped for it (a session the spans would make too large, ...)
    dropped_reasons: dict[str, int] = field(default_factory=dict)
    forgotten_traces: int = 0  # remembered traces past OTEL_TRACE_MEMORY, deleted

    def counts(self) -> dict[str, int]:
        return {
            "folded_spans": self.folded_spans,
            "sessions_changed": self.sessions_changed,
            "dropped_spans": self.dropped_spans,
            "pending_spans": self.pending_spans,
            "forgotten_traces": self.forgotten_traces,
        }

    def details(self) -> dict[str, Any]:
        return {"dropped_reasons": self.dropped_reasons}

    @property
    def nothing_to_do(self) -> str:
        """Why the run had nothing to do ("" when it folded or dropped something)."""
        if (
            self.folded_spans
            or self.dropped_spans
            or self.pending_spans
            or self.sessions_changed
            or self.forgotten_traces
        ):
            return ""
        return "no spans waiting to be folded"


def fold_otel_spans(
    *,
    now: datetime,
    batch_size: int = 5000,
    dry_run: bool = False,
    checkpoint: Callable[[], None] = lambda: None,
    only: set[tuple[str, str]] | None = None,
) -> FoldResult:
    """Append every pending span to its session, ``batch_size`` spans at a time, oldest first.

    Each session's append and the deletion of its pending spans commit together, so a run
    killed midway leaves every span either pending or in its session, never lost or doubled
    (a span id already in the document is skipped). Spans the session cannot take (it would
    grow past the document limits) are dropped and counted with the reason."""
    if dry_run:
        pending = OtelSpan.objects.count()
        return FoldResult(True, 0, 0, 0, pending)
    outcome = ExportOutcome()
    changed: set[str] = set()
    last_id = 0
    while True:
        pending = OtelSpan.objects.filter(id__gt=last_id)
        if only is not None:  # (trace id, span id) of one export
            pending = pending.filter(span_id__in=sorted({span_id for _, span_id in only}))
        rows = list(
            pending.order_by("id").values_list(
                "id", "trace_id", "span_id", "session_key", "grouped_by", "body"
            )[:batch_size]
        )
        if not rows:
            break
        last_id = rows[-1][0]
        if only is not None:
            rows = [row for row in rows if (row[1], row[2]) in only]
            if not rows:
                continue
        spans = [
            _Pending(
                row_id=row_id,
                span=orjson.loads(body),
                key=(key, grouped_by) if key else None,
            )
            for row_id, _trace_id, _span_id, key, grouped_by, body in rows
        ]
        changed.update(_store_spans(spans, outcome, now=now))
        checkpoint()
    forgotten = _forget_old_traces(now=now, checkpoint=checkpoint) if only is None else 0
    return FoldResult(
        dry_run=False,
        folded_spans=outcome.accepted_spans,
        sessions_changed=len(changed),
        dropped_spans=outcome.rejected_spans,
        pending_spans=OtelSpan.objects.count(),
        dropped_reasons=dict(outcome.reasons),
        forgotten_traces=forgotten,
    )


# Traces forgotten per transaction: a short hold of SQLite's write lock.
_FORGET_BATCH = 2000


def _forget_old_traces(*, now: datetime, checkpoint: Callable[[], None]) -> int:
    """Forget the traces that received no span for OTEL_TRACE_MEMORY; how many went."""
    memory = conf.otel_trace_memory()
    if memory is None:
        return 0
    forgotten = 0
    while True:
        with transaction.atomic():
            ids = list(
                OtelTrace.objects.filter(received_at__lt=now - memory)
                .order_by("received_at")
                .values_list("trace_id", flat=True)[:_FORGET_BATCH]
            )
            if ids:
                OtelTrace.objects.filter(trace_id__in=ids).delete()
        forgotten += len(ids)
        if len(ids) < _FORGET_BATCH:
            return forgotten
        checkpoint()


def ingest_export(
    *, request: ExportTraceServiceRequest, now: datetime | None = None
) -> ExportOutcome:
    """Receive and fold at once: the export's spans in their sessions when this returns
    (imports, tests, and callers that want no job in between)."""
    now = now or timezone.now()
    outcome = receive_export(request=request, now=now)
    outcome.merge_dropped(fold_otel_spans(now=now))
    return outcome


@dataclass
class _Pending:
    row_id: int
    span: dict[str, Any]
    key: tuple[str, str] | None


@dataclass
class _Group:
    key: str
    grouped_by: str
    spans: dict[str, dict[str, Any]] = field(default_factory=dict)  # span id -> span
    row_ids: list[int] = field(default_factory=list)
    # Traces first stored as sessions of their own that turn out to belong here.
    absorb: list[str] = field(default_factory=list)


def _store_spans(pending: list[_Pending], outcome: ExportOutcome, *, now: datetime) -> set[str]:
    """Group the spans into sessions and append each group; the ids of changed sessions."""
    # A trace goes to the session its spans name; else where it went before; else its own.
    trace_keys: dict[str, tuple[str, str]] = {}
    for item in pending:
        if item.key is not None:
            trace_keys.setdefault(item.span["trace_id"], item.key)
    traces = {item.span["trace_id"] for item in pending}
    known = {
        row.trace_id: row
        for row in OtelTrace.objects.filter(trace_id__in=sorted(traces)).only(
            "trace_id", "session_key", "grouped_by", "received_at"
        )
    }
    for trace_id in traces:
        if trace_id not in trace_keys:
            row = known.get(trace_id)
            trace_keys[trace_id] = (
                (row.session_key, row.grouped_by) if row is not None else (trace_id, "trace_id")
            )

    groups: dict[str, _Group] = {}
    for item in pending:
        session_key, grouped_by = item.key or trace_keys[item.span["trace_id"]]
        group = groups.get(session_key)
        if group is None:
            group = groups[session_key] = _Group(session_key, grouped_by)
        group.spans.setdefault(item.span["span_id"], item.span)
        group.row_ids.append(item.row_id)
    for trace_id, (session_key, _) in trace_keys.items():
        row = known.get(trace_id)
        if row is not None and row.grouped_by == "trace_id" and session_key != trace_id:
            groups[session_key].absorb.append(trace_id)

    _remember_traces(trace_keys, known, now)
    changed = set()
    for group in groups.values():
        try:
            session_id = _append_spans(group, now=now)
        except DomainError as exc:
            with transaction.atomic():
                OtelSpan.objects.filter(id__in=group.row_ids).delete()
            outcome.reject(f"session {group.key[:80]!r}: {exc.message}", len(group.spans))
            continue
        outcome.accepted_spans += len(group.spans)
        if session_id is not None:
            changed.add(session_id)
    return changed


_TRACE_MEMORY_REFRESH = timedelta(hours=1)


def _remember_traces(
    trace_keys: dict[str, tuple[str, str]], known: dict[str, OtelTrace], now: datetime
) -> None:
    new_rows = [
        (trace_id, key, grouped_by, now)
        for trace_id, (key, grouped_by) in trace_keys.items()
        if trace_id not in known
    ]
    db.insert_rows(
        OtelTrace,
        ("trace_id", "session_key", "grouped_by", "received_at"),
        new_rows,
        if_absent=True,
    )
    # A trace still sending spans is remembered from its latest; written at most once an hour,
    # in one statement for all those whose session stays the same.
    stale = now - _TRACE_MEMORY_REFRESH
    refreshed = []
    for trace_id, (key, grouped_by) in trace_keys.items():
        row = known.get(trace_id)
        if row is None:
            continue
        if (row.session_key, row.grouped_by) != (key, grouped_by):
            OtelTrace.objects.filter(trace_id=trace_id).update(
                session_key=key, grouped_by=grouped_by, received_at=now
            )
        elif row.received_at < stale:
            refreshed.append(trace_id)
    if refreshed:
        OtelTrace.objects.filter(trace_id__in=refreshed).update(received_at=now)


def _absorb_trace_sessions(group: _Group) -> None:
    """The spans of sessions keyed by a trace id join ``group``; those sessions go."""
    for trace_id in group.absorb:
        row = Session.objects.filter(format=FORMAT_ID, external_id=trace_id).first()
        if row is None:
            continue
        for span in _stored_spans(row):
            group.spans.setdefault(span["span_id"], span)
        delete_session(session_id=str(row.id))


def _stored_spans(row: Session) -> list[dict[str, Any]]:
    body = get_document_store().get(session_id=str(row.id), version=row.latest_version)
    spans = orjson.loads(body).get("spans")
    return [span for span in spans if isinstance(span, dict)] if isinstance(spans, list) else []


class _LostRace(Exception):
    """Another request created the session between our look and our insert."""


def _append_spans(group: _Group, *, now: datetime) -> str | None:
    """Append the group's spans not yet stored to its session's document and delete them from
    the pending spans, in one transaction; the session's id, or None when nothing changed.
    Tries again when a concurrent fold created the session first."""
    for _attempt in range(3):
        try:
            with transaction.atomic():
                _absorb_trace_sessions(group)
                spans = sorted(
                    group.spans.values(),
                    key=lambda s: (int(s["start_time_unix_nano"]), s["span_id"]),
                )
                OtelSpan.objects.filter(id__in=group.row_ids).delete()
                row = (
                    Session.objects.select_for_update()
                    .filter(format=FORMAT_ID, external_id=group.key)
                    .first()
                )
                if row is None:
                    outcome = ingest_document(
                        body=render_document(group.key, group.grouped_by, spans),
                        format_id=FORMAT_ID,
                        source=DocumentVersion.Source.API,
                        now=now,
                    )
                    if not outcome.created:
                        raise _LostRace
                    return outcome.id
                body = get_document_store().get(session_id=str(row.id), version=row.latest_version)
                stored = {
                    span.get("span_id")
                    for span in orjson.loads(body).get("spans") or []
                    if isinstance(span, dict)
                }
                fresh = [span for span in spans if span["span_id"] not in stored]
                if not fresh:
                    return None
                outcome = store_version_of_locked_session(
                    row=row,
                    body=append_to_document(body, fresh),
                    source=DocumentVersion.Source.API,
                    now=now,
                )
                return outcome.id if outcome.changed else None
        except _LostRace:
            continue
    raise RejectedDocument("busy", "the session was being created concurrently; retry")


_TAIL = b"\n]}"


def render_document(key: str, grouped_by: str, spans: list[dict[str, Any]]) -> bytes:
    """A session's document: a header line, then one span per line, so that appending spans
    appends bytes (the versions store keeps such a version as a small delta)."""
    header = orjson.dumps({"id": key, "grouped_by": grouped_by})
    lines = b",\n".join(orjson.dumps(span) for span in spans)
    return b'{"otel_session":' + header + b',"spans":[\n' + lines + _TAIL


def append_to_document(body: bytes, spans: list[dict[str, Any]]) -> bytes:
    lines = b",\n".join(orjson.dumps(span) for span in spans)
    if body.endswith(_TAIL) and not body.endswith(b"[\n" + _TAIL[1:]):
        return body[: -len(_TAIL)] + b",\n" + lines + _TAIL
    # Not the shape render_document writes (an empty list, or a document from elsewhere):
    # write it again from its values.
    doc = orjson.loads(body)
    header = doc.get("otel_session") or {}
    existing = [span for span in doc.get("spans") or [] if isinstance(span, dict)]
    return render_document(
        str(header.get("id")), str(header.get("grouped_by") or "trace_id"), existing + spans
    )
