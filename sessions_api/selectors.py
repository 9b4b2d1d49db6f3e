"""Reads: lists, one session, its raw body, versions and timeline. Keyword-only, typed.

Lists page with keyset cursors (never OFFSET: PERFORMANCE.md measured OFFSET 300x slower at
depth) and never count exactly. The canonical view and the timeline are derived from the stored
body when read, and cached by (session, version): a version never changes, so the cache never
needs invalidating.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from sessions_api.domain import Session as CanonicalSession
from sessions_api.formats import parse_document
from sessions_api.formats.decoding import DecodeLimits, decode_document
from sessions_api.models import DocumentVersion, ModelUsage, Session, ToolCallRecord
from sessions_api.records import SessionRecord, VersionRecord, record_from_row, version_from_row
from sessions_api.storage import get_document_store
from sessions_api.timeline import build_timeline

MAX_PAGE_SIZE = 200
MAX_TIMELINE_PAGE = 500
# Field name -> nullable? Nullable fields sort with nulls as -1 (tokens a document did not report).
ORDER_FIELDS = {
    "updated_at": False,
    "started_at": False,
    "message_count": False,
    "tool_call_count": False,
    "tool_error_count": False,
    "error_count": False,
    "total_tokens": True,
}


class InvalidQuery(ValueError):
    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class SessionFilters:
    status: list[str] = field(default_factory=list)
    format: list[str] = field(default_factory=list)
    agent: str | None = None
    user: str | None = None
    model: str | None = None
    tool: str | None = None
    has_errors: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


# --- lists ------------------------------------------------------------------------------------


def filtered_sessions(filters: SessionFilters) -> QuerySet[Session]:
    """The index rows a filter selects (shared by the list, exports and charts)."""
    _refuse_nul(filters)
    rows = Session.objects.all()
    if filters.status:
        rows = rows.filter(status__in=filters.status)
    if filters.format:
        rows = rows.filter(format__in=filters.format)
    if filters.agent:
        rows = rows.filter(agent=filters.agent)
    if filters.user:
        rows = rows.filter(user=filters.user)
    if filters.model:
        rows = rows.filter(
            Exists(ModelUsage.objects.filter(session=OuterRef("pk"), model=filters.model))
        )
    if filters.tool:
        rows = rows.filter(
            Exists(ToolCallRecord.objects.filter(session=OuterRef("pk"), name=filters.tool))
        )
    if filters.has_errors is not None:
        rows = rows.filter(has_errors=filters.has_errors)
    if filters.since:
        rows = rows.filter(updated_at__gte=filters.since)
    if filters.until:
        rows = rows.filter(updated_at__lt=filters.until)
    if filters.q:
        text = filters.q.strip()[:200]
        rows = rows.filter(
            Q(external_id__icontains=text)
            | Q(search_text__icontains=text)
            | Q(title__icontains=text)
        )
    return rows


def _refuse_nul(filters: SessionFilters) -> None:
    """PostgreSQL refuses a NUL character in any query parameter (a database error, so a 500).
    Ingest never stores one, so such a filter could match nothing anyway: say so as a 400."""
    for name in ("status", "format", "agent", "user", "model", "tool", "q"):
        value = getattr(filters, name)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(item, str) and "\x00" in item for item in values):
            raise InvalidQuery(f"{name} must not contain NUL (\\u0000)", path=name)


def list_sessions(
    *,
    filters: SessionFilters,
    order: str = "-updated_at",
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    descending = order.startswith("-")
    # Exactly one optional "-": lstrip("-") would accept "--updated_at" and then write
    # cursors that no decoder of that order can read.
    field_name = order[1:] if descending else order
    if field_name not in ORDER_FIELDS:
        raise InvalidQuery(
            f"order must be one of {', '.join(sorted(ORDER_FIELDS))} (prefix - for descending)",
            path="order",
        )
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    sort_expr = Coalesce(F(field_name), Value(-1)) if ORDER_FIELDS[field_name] else F(field_name)
    rows = filtered_sessions(filters).annotate(sort_key=sort_expr)
    if cursor:
        value, last_id = _decode_list_cursor(cursor, order)
        # The leading range term selects the same rows but lets SQLite seek into the index
        # instead of walking it from the top (bench B4: 150 ms -> 5 ms at page 10,000).
        if descending:
            rows = rows.filter(sort_key__lte=value).filter(
                Q(sort_key__lt=value) | Q(sort_key=value, id__lt=last_id)
            )
        else:
            rows = rows.filter(sort_key__gte=value).filter(
                Q(sort_key__gt=value) | Q(sort_key=value, id__gt=last_id)
            )
    direction = "-" if descending else ""
    page = list(rows.order_by(f"{direction}sort_key", f"{direction}id")[: limit + 1])
    next_cursor = None
    if len(page) > limit:
        page = page[:limit]
        last = page[-1]
        next_cursor = _encode_cursor([order, _cursor_value(last.sort_key), str(last.id)])
    return Page(items=[record_from_row(row) for row in page], next_cursor=next_cursor)


def _cursor_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _decode_list_cursor(cursor: str, order: str) -> tuple[Any, str]:
    data = _decode_cursor(cursor)
    if not (isinstance(data, list) and len(data) == 3 and data[0] == order):
        raise InvalidQuery("cursor does not belong to this order; start again", path="cursor")
    _, value, last_id = data
    if order.lstrip("-") in ("updated_at", "started_at"):
        try:
            value = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise InvalidQuery("malformed cursor", path="cursor") from None
        if value.tzinfo is None:
            # Cursors we write are always aware; a naive one compares wrongly (and warns).
            raise InvalidQuery("malformed cursor", path="cursor")
    elif isinstance(value, bool) or not isinstance(value, int):
        raise InvalidQuery("malformed cursor", path="cursor")
    # The id goes into a UUID comparison: anything else would be a database error (a 500).
    try:
        last_id = str(uuid.UUID(last_id))
    except (TypeError, ValueError, AttributeError):
        raise InvalidQuery("malformed cursor", path="cursor") from None
    return value, last_id


def _encode_cursor(data: Any) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidQuery("malformed cursor", path="cursor") from None


# --- one session ------------------------------------------------------------------------------


def get_session(*, session_id: str) -> SessionRecord | None:
    row = _session_row(session_id)
    return record_from_row(row) if row else None


def _session_row(session_id: str) -> Session | None:
    try:
        uuid.UUID(str(session_id))
    except ValueError:
        return None
    return Session.objects.filter(id=session_id).first()


def list_versions(*, session_id: str) -> list[VersionRecord]:
    rows = DocumentVersion.objects.filter(session_id=session_id).order_by("number")
    return [version_from_row(row) for row in rows]


def get_raw_body(*, session_id: str, version: int) -> bytes:
    return get_document_store().get(session_id=session_id, version=version)


@dataclass(frozen=True)
class ParsedVersion:
    session: CanonicalSession
    warnings: list[dict[str, str]]
    events: list[dict[str, Any]]


def get_parsed_version(*, record: SessionRecord, version: int | None = None) -> ParsedVersion:
    """The canonical session and timeline of one stored version, cached by (session, version)."""
    number = version or record.version
    key = f"parsed:v1:{record.id}:{number}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    body = get_raw_body(session_id=record.id, version=number)
    # Stored bodies passed these limits on the way in; parse them with generous ones so a
    # later tightening of the limits never makes history unreadable.
    doc = decode_document(
        body, DecodeLimits(max_bytes=len(body), max_depth=10_000, max_nodes=10**9)
    )
    _, parsed = parse_document(doc, format_id=record.format)
    result = ParsedVersion(
        session=parsed.session,
        warnings=[{"code": w.code, "message": w.message, "path": w.path} for w in parsed.warnings],
        events=build_timeline(parsed.session),
    )
    cache.set(key, result, timeout=3600)
    return result


def get_timeline_page(
    *,
    record: SessionRecord,
    cursor: str | None = None,
    limit: int = 100,
    version: int | None = None,
) -> tuple[int, list[dict[str, Any]], str | None, int]:
    """(version, events, next_cursor, total events). The cursor pins the version it started on,
    so paging stays consistent while new versions arrive."""
    start = 0
    if cursor:
        data = _decode_cursor(cursor)
        if not (
            isinstance(data, list)
            and len(data) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in data)
        ):
            raise InvalidQuery("malformed cursor", path="cursor")
        version, start = data
        # A cursor names a stored version and a non-negative offset: another version would be
        # a missing body (a 500), a negative offset would slice from the end.
        if not 1 <= version <= record.version or start < 0:
            raise InvalidQuery("malformed cursor", path="cursor")
    limit = max(1, min(limit, MAX_TIMELINE_PAGE))
    number = version or record.version
    parsed = get_parsed_version(record=record, version=number)
    events = parsed.events[start : start + limit]
    end = start + len(events)
    next_cursor = _encode_cursor([number, end]) if end < len(parsed.events) else None
    return number, events, next_cursor, len(parsed.events)
