"""Reads: lists, one session, its raw body, versions and timeline. Keyword-only, typed.

Lists page with keyset cursors (never OFFSET: it measured 300x slower at depth) and never
count exactly. The canonical view and the timeline are derived from the stored body when read,
and cached by (session, version): a version never changes, so the cache never needs
invalidating. The timeline is cached in pages of ``TIMELINE_CHUNK`` events beside its
length, and the canonical session on its own, so a request unpickles only what it shows.
"""

from __future__ import annotations

import dataclasses
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from django.core.cache import cache
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from sessions_api.domain import ParsedSession, SessionStatus
from sessions_api.domain import Session as CanonicalSession
from sessions_api.errors import AmbiguousSessionId, InvalidQuery, StoreUnavailable
from sessions_api.formats import FORMAT_IDS, parse_document
from sessions_api.models import DocumentVersion, ModelUsage, Session, ToolCallRecord
from sessions_api.search import matching
from sessions_api.search.query import SearchQuery, parse_query
from sessions_api.sessions import cursors
from sessions_api.sessions.records import (
    SessionRecord,
    VersionRecord,
    record_from_row,
    version_from_row,
)
from sessions_api.sessions.timeline import build_timeline
from sessions_api.storage import get_document_store, load_stored_document

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
#: The orders whose sort key is a time (the others are counts).
TIME_ORDER_FIELDS = frozenset({"updated_at", "started_at"})


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


# The filters that are one lookup on a column of the index row, applied when given.
_COLUMN_FILTERS = {
    "status": "status__in",
    "format": "format__in",
    "agent": "agent",
    "user": "user",
    "since": "updated_at__gte",
    "until": "updated_at__lt",
}


def filtered_sessions(filters: SessionFilters, *, search: bool = True) -> QuerySet[Session]:
    """The index rows a filter selects (shared by the list, exports and charts); ``search``
    False leaves ``q`` to the caller."""
    _refuse_nul(filters)
    _refuse_unknown_values(filters)
    rows = Session.objects.all()
    for name, lookup in _COLUMN_FILTERS.items():
        value = getattr(filters, name)
        if value:
            rows = rows.filter(**{lookup: value})
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
    if filters.q and search:
        rows = matching.filter_matching(rows, parse_query(filters.q))
    return rows


def _refuse_nul(filters: SessionFilters) -> None:
    """PostgreSQL refuses a NUL character in any query parameter (a database error, so a 500).
    Ingest never stores one, so such a filter could match nothing anyway: say so as an
    InvalidQuery."""
    for name in ("status", "format", "agent", "user", "model", "tool", "q"):
        value = getattr(filters, name)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(item, str) and "\x00" in item for item in values):
            raise InvalidQuery(f"{name} must not contain NUL (\\u0000)", path=name)


_STATUS_VALUES = tuple(status.value for status in SessionStatus)


def _refuse_unknown_values(filters: SessionFilters) -> None:
    """A status or format no session can have is a typo, not an empty result: say so, and
    which values there are, instead of answering an empty page."""
    for name, known in (("status", _STATUS_VALUES), ("format", FORMAT_IDS)):
        unknown = [value for value in getattr(filters, name) or [] if value not in known]
        if unknown:
            raise InvalidQuery(
                f"unknown {name} {unknown[0][:80]!r}; use one of: {', '.join(known)}", path=name
            )


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
    rows = filtered_sessions(filters, search=False).annotate(sort_key=sort_expr)
    if cursor:
        try:
            value, last_id = cursors.decode_cursor(
                cursor,
                cursors.sort_value(temporal=field_name in TIME_ORDER_FIELDS),
                cursors.session_id,
                order=order,
            )
        except cursors.MalformedCursor as exc:
            raise InvalidQuery(exc.message, path="cursor") from None
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
    ordering = (f"{direction}sort_key", f"{direction}id")
    query = parse_query(filters.q)
    page = None
    if query and matching.worth_walking(query):
        page = _first_holding(rows, ordering, query, limit + 1)
    if page is None:
        if query:
            rows = matching.filter_matching(rows, query)
        page = list(rows.order_by(*ordering)[: limit + 1])
    next_cursor = None
    if len(page) > limit:
        page = page[:limit]
        last = page[-1]
        next_cursor = cursors.encode_cursor(order, last.sort_key, str(last.id))
    return Page(items=[record_from_row(row) for row in page], next_cursor=next_cursor)


def _first_holding(
    rows: QuerySet[Session], ordering: tuple[str, str], query: SearchQuery, count: int
) -> list[Session] | None:
    """The first ``count`` of ``rows`` that hold ``query``, when they are among the first
    ``matching.WALK_PAGES`` pages' worth (bounded by keyset, so the walk stops there); None
    when fewer hold it there, and the index narrows the list instead."""
    window = count * matching.WALK_PAGES
    if matching.walks_in_pages():
        return matching.holding_in_order(rows.order_by(*ordering), query, count, window)
    edge = list(rows.order_by(*ordering).values_list("sort_key", "id")[window - 1 : window])
    bounded = rows
    if edge:
        value, last_id = edge[0]
        if ordering[0].startswith("-"):
            bounded = rows.filter(sort_key__gte=value).filter(
                Q(sort_key__gt=value) | Q(sort_key=value, id__gte=last_id)
            )
        else:
            bounded = rows.filter(sort_key__lte=value).filter(
                Q(sort_key__lt=value) | Q(sort_key=value, id__lte=last_id)
            )
    found = list(matching.filter_walking(bounded, query).order_by(*ordering)[:count])
    return found if len(found) == count or not edge else None


# --- one session ------------------------------------------------------------------------------


def get_session(*, session_id: str) -> SessionRecord | None:
    row = _session_row(session_id)
    return record_from_row(row) if row else None


def _session_row(session_id: str) -> Session | None:
    """The session named by its id, or else by the agent's own id (``external_id``) when that
    names exactly one session; AmbiguousSessionId when it names several (one per format)."""
    text = str(session_id)
    try:
        key = uuid.UUID(text)
    except ValueError:
        pass
    else:
        row = Session.objects.filter(id=key).first()
        if row is not None:
            return row
    return _row_by_external_id(text)


def _row_by_external_id(external_id: str) -> Session | None:
    rows = list(_with_external_id(external_id).order_by("format")[:10])
    if len(rows) > 1:
        raise AmbiguousSessionId(
            f"{len(rows)} sessions have the id {external_id[:80]!r} (formats: "
            f"{', '.join(row.format for row in rows)}); use the session's own id",
            details={"sessions": [{"id": str(row.id), "format": row.format} for row in rows]},
        )
    return rows[0] if rows else None


def resolve_session_id(*, session_id: str) -> str:
    """The session's id (a UUID) for its id or its unambiguous external id; the value as it
    came when no session matches (the caller answers 404)."""
    row = _session_row(session_id)
    return str(row.id) if row is not None else str(session_id)


def sessions_with_external_id(*, external_id: str) -> list[SessionRecord]:
    """Every session whose agent's own id is ``external_id`` (one per format at most)."""
    rows = _with_external_id(external_id).order_by("format")[:10]
    return [record_from_row(row) for row in rows]


def _with_external_id(external_id: str) -> QuerySet[Session]:
    # Naming every format lets both databases use the (format, external_id) unique index, one
    # probe per format, instead of scanning the table.
    return Session.objects.filter(
        format__in=FORMAT_IDS, external_id=unicodedata.normalize("NFC", external_id)
    )


def list_versions(*, session_id: str) -> list[VersionRecord]:
    """Every version, with how the store keeps it where the store says (a store that cannot
    be reached leaves that out rather than failing the list)."""
    rows = DocumentVersion.objects.filter(session_id=session_id).order_by("number")
    try:
        forms = get_document_store().stored_forms(session_id=str(session_id))
    except StoreUnavailable:
        forms = {}
    records = []
    for row in rows:
        record = version_from_row(row)
        form = forms.get(row.number)
        if form is not None:
            record = dataclasses.replace(
                record,
                stored_encoding=form.encoding,
                stored_base_version=form.base_version,
                stored_bytes=form.stored_bytes,
            )
        records.append(record)
    return records


def get_raw_body(*, session_id: str, version: int) -> bytes:
    return get_document_store().get(session_id=session_id, version=version)


# --- one version: the canonical session and its timeline, cached in parts ----------------------

# The timeline is cached in pages of this many events, so that a request unpickles only the pages
# it shows: a 10,000-message session is 50 small entries, not one 5 MB pickle (bench B5).
TIMELINE_CHUNK = 200
VERSION_CACHE_SECONDS = 3600


def _version_key(session_id: str, number: int, part: str) -> str:
    # A stored version never changes, so nothing here is ever invalidated. "v2" names the shape
    # of the cached values (events pages of TIMELINE_CHUNK): change it when they change.
    return f"version:v2:{session_id}:{number}:{part}"


def _head_key(session_id: str, number: int) -> str:
    """The number of events in the timeline; present only once every page was written."""
    return _version_key(session_id, number, "head")


def _page_key(session_id: str, number: int, page: int) -> str:
    return _version_key(session_id, number, f"events{TIMELINE_CHUNK}:{page}")


@dataclass(frozen=True)
class _Derived:
    session: CanonicalSession
    warnings: list[dict[str, str]]
    events: list[dict[str, Any]]


def _parse_and_cache(record: SessionRecord, number: int) -> _Derived:
    """Decode and parse a stored version, then cache what is derived from it."""
    doc = load_stored_document(session_id=record.id, version=number)
    _, parsed = parse_document(doc, format_id=record.format)
    return _cache_derived(record.id, number, parsed)


def _cache_derived(session_id: str, number: int, parsed: ParsedSession) -> _Derived:
    """Build the timeline of a parsed version and cache, each under its own key: the timeline
    in pages, its length, the parse warnings and the canonical session."""
    derived = _Derived(
        session=parsed.session,
        warnings=[{"code": w.code, "message": w.message, "path": w.path} for w in parsed.warnings],
        events=build_timeline(parsed.session),
    )
    values: dict[str, Any] = {
        _page_key(session_id, number, page): derived.events[first : first + TIMELINE_CHUNK]
        for page, first in enumerate(range(0, len(derived.events), TIMELINE_CHUNK))
    }
    values[_version_key(session_id, number, "warnings")] = derived.warnings
    # Cached now, though a timeline request does not need it: the session page's panels and
    # the API's detail do, and with a per-process cache the next of those in this process
    # would otherwise parse the body again (B5: 0.3 s to store at 10,000 messages, 1 s to parse).
    values[_version_key(session_id, number, "session")] = derived.session
    # The head goes last: a reader that finds it finds the pages too (unless evicted since,
    # which reads as a miss and rebuilds).
    values[_head_key(session_id, number)] = len(derived.events)
    cache.set_many(values, timeout=VERSION_CACHE_SECONDS)
    return derived


class ParsedVersion:
    """One stored version, parsed: ``session`` (canonical), ``warnings`` (the parse warnings as
    dicts) and ``events`` (the whole timeline).

    Each part is read from the cache only when it is first used, so a caller that needs the
    session never unpickles the timeline and the other way round. A part missing from the cache
    (evicted, or a cache outage) parses the stored body again."""

    def __init__(self, *, record: SessionRecord, number: int, derived: _Derived | None) -> None:
        self.record = record
        self.number = number
        self._derived = derived

    def _cached(self, part: str) -> Any:
        if self._derived is not None:
            return None
        return cache.get(_version_key(self.record.id, self.number, part))

    def _parse(self) -> _Derived:
        if self._derived is None:
            self._derived = _parse_and_cache(self.record, self.number)
        return self._derived

    @cached_property
    def session(self) -> CanonicalSession:
        cached = self._cached("session")
        return cached if cached is not None else self._parse().session

    @cached_property
    def warnings(self) -> list[dict[str, str]]:
        cached = self._cached("warnings")
        return cached if cached is not None else self._parse().warnings

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        total = self._cached("head")
        if total is not None:
            keys = [
                _page_key(self.record.id, self.number, page)
                for page in range(-(-total // TIMELINE_CHUNK))
            ]
            found = cache.get_many(keys)
            if len(found) == len(keys):
                return [event for key in keys for event in found[key]]
        return self._parse().events


def get_parsed_version(*, record: SessionRecord, version: int | None = None) -> ParsedVersion:
    """The canonical session, parse warnings and timeline of one stored version, each cached by
    (session, version) and loaded when first used (:class:`ParsedVersion`). A version that was
    never parsed (or fell out of the cache) is parsed here, so a missing body or an unreadable
    document raises now."""
    number = version or record.version
    if cache.get(_head_key(record.id, number)) is not None:
        return ParsedVersion(record=record, number=number, derived=None)
    return ParsedVersion(record=record, number=number, derived=_parse_and_cache(record, number))


def _timeline_slice(
    record: SessionRecord, number: int, start: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """(events [start, start + limit), total events) of one version's timeline, reading the
    cached length and only the pages that hold those events (one cache round trip)."""
    head = _head_key(record.id, number)
    pages = range(start // TIMELINE_CHUNK, (start + limit - 1) // TIMELINE_CHUNK + 1)
    page_keys = [_page_key(record.id, number, page) for page in pages]
    found = cache.get_many([head, *page_keys])
    total = found.get(head)
    if total is not None:
        stop = min(start + limit, total)
        if start >= stop:
            return [], total
        needed = page_keys[: (stop - 1) // TIMELINE_CHUNK - pages[0] + 1]
        if all(key in found for key in needed):
            offset = pages[0] * TIMELINE_CHUNK
            events = [event for key in needed for event in found[key]]
            return events[start - offset : stop - offset], total
    events = _parse_and_cache(record, number).events
    return events[start : start + limit], len(events)


@dataclass(frozen=True)
class TimelineWindow:
    version: int
    events: list[dict[str, Any]]
    start: int  # index of the first event in the window
    end: int  # index after the last event
    total: int


def get_timeline_window(
    *, record: SessionRecord, version: int | None = None, start: int = 0, limit: int = 200
) -> TimelineWindow:
    """Events [start, start + limit) of one version's timeline, by offset (the dashboard jumps to
    an event and loads in both directions). A start past the end gives an empty window at the
    end."""
    number = version or record.version
    limit = max(1, min(limit, MAX_TIMELINE_PAGE))
    start = max(0, start)
    events, total = _timeline_slice(record, number, start, limit)
    first = min(start, total)
    return TimelineWindow(
        version=number, events=events, start=first, end=first + len(events), total=total
    )


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
        try:
            version, start = cursors.decode_cursor(cursor, cursors.integer, cursors.integer)
        except cursors.MalformedCursor as exc:
            raise InvalidQuery(exc.message, path="cursor") from None
        # A cursor names a stored version and a non-negative offset: another version would be
        # a missing body (a 500), a negative offset would slice from the end.
        if not 1 <= version <= record.version or start < 0:
            raise InvalidQuery("malformed cursor", path="cursor")
    limit = max(1, min(limit, MAX_TIMELINE_PAGE))
    number = version or record.version
    events, total = _timeline_slice(record, number, start, limit)
    end = start + len(events)
    next_cursor = cursors.encode_cursor(number, end) if end < total else None
    return number, events, next_cursor, total
