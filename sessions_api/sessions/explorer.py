"""Reads that only the dashboard needs, over the same index.

The session explorer pages with keyset cursors in both directions on top of
:func:`selectors.filtered_sessions` (so the filters mean exactly what ``GET /api/v1/sessions``
means), plus a dashboard-only duration range that the overview's duration chart links to.
Lists never use OFFSET and never count exactly.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import DurationField, ExpressionWrapper, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from sessions_api.models import ModelUsage, Session, SessionError, ToolCallRecord
from sessions_api.sessions import cursors, selectors
from sessions_api.sessions.records import SessionRecord, record_from_row
from sessions_api.sessions.selectors import InvalidQuery, SessionFilters

EXPLORER_MAX_PAGE = 200
EXPORT_MAX_ROWS = 10_000
ERRORS_MAX_PAGE = 200


# --- session explorer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExplorerPage:
    items: list[SessionRecord]
    next_cursor: str | None
    prev_cursor: str | None


def explorer_sessions(
    *,
    filters: SessionFilters,
    min_duration_s: int | None = None,
    max_duration_s: int | None = None,
) -> QuerySet[Session]:
    rows = selectors.filtered_sessions(filters)
    if min_duration_s is not None or max_duration_s is not None:
        rows = rows.annotate(
            duration=ExpressionWrapper(
                F("updated_at") - F("started_at"), output_field=DurationField()
            )
        )
        if min_duration_s is not None:
            rows = rows.filter(duration__gte=timedelta(seconds=min_duration_s))
        if max_duration_s is not None:
            rows = rows.filter(duration__lt=timedelta(seconds=max_duration_s))
    return rows


def explorer_page(
    *,
    filters: SessionFilters,
    order: str = "-updated_at",
    cursor: str | None = None,
    limit: int = 50,
    min_duration_s: int | None = None,
    max_duration_s: int | None = None,
) -> ExplorerPage:
    """One page of sessions; ``cursor`` is a ``next_cursor`` or a ``prev_cursor`` of an earlier
    page. Orders are those of the REST list (``selectors.ORDER_FIELDS``)."""
    field_name = order.lstrip("-")
    if field_name not in selectors.ORDER_FIELDS:
        raise InvalidQuery(
            f"order must be one of {', '.join(sorted(selectors.ORDER_FIELDS))}", path="order"
        )
    descending = order.startswith("-")
    limit = max(1, min(limit, EXPLORER_MAX_PAGE))
    nullable = selectors.ORDER_FIELDS[field_name]
    sort_expr = Coalesce(F(field_name), Value(-1)) if nullable else F(field_name)
    rows = explorer_sessions(
        filters=filters, min_duration_s=min_duration_s, max_duration_s=max_duration_s
    ).annotate(sort_key=sort_expr)

    backwards = False
    if cursor:
        try:
            value, last_id, backwards = cursors.decode_cursor(
                cursor,
                cursors.sort_value(temporal=field_name in selectors.TIME_ORDER_FIELDS),
                cursors.session_id,
                cursors.flag,
                order=order,
            )
        except cursors.MalformedCursor as exc:
            raise InvalidQuery(exc.message, path="cursor") from None
        # Walking back (towards the first page) flips the comparison and the order.
        after = descending != backwards
        if after:
            rows = rows.filter(Q(sort_key__lt=value) | Q(sort_key=value, id__lt=last_id))
        else:
            rows = rows.filter(Q(sort_key__gt=value) | Q(sort_key=value, id__gt=last_id))
    direction = "-" if descending != backwards else ""
    page = list(rows.order_by(f"{direction}sort_key", f"{direction}id")[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    if backwards:
        page.reverse()
    next_cursor = prev_cursor = None
    if page:
        if (not backwards and has_more) or (backwards and cursor):
            next_cursor = cursors.encode_cursor(order, page[-1].sort_key, str(page[-1].id), 0)
        if (not backwards and cursor) or (backwards and has_more):
            prev_cursor = cursors.encode_cursor(order, page[0].sort_key, str(page[0].id), 1)
    return ExplorerPage(
        items=[record_from_row(row) for row in page],
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
    )


def export_pages(
    *,
    filters: SessionFilters,
    order: str = "-updated_at",
    max_rows: int = EXPORT_MAX_ROWS,
    min_duration_s: int | None = None,
    max_duration_s: int | None = None,
) -> Iterator[list[SessionRecord]]:
    """Every session a filter selects, page by page (keyset), at most ``max_rows`` in all."""
    cursor = None
    sent = 0
    while sent < max_rows:
        page = explorer_page(
            filters=filters,
            order=order,
            cursor=cursor,
            limit=min(EXPLORER_MAX_PAGE, max_rows - sent),
            min_duration_s=min_duration_s,
            max_duration_s=max_duration_s,
        )
        if page.items:
            yield page.items
        sent += len(page.items)
        if not page.next_cursor:
            return
        cursor = page.next_cursor


@dataclass(frozen=True)
class FilterChoices:
    """Suggestions for the filter bar (recently seen values, bounded)."""

    agents: list[str]
    users: list[str]
    models: list[str]
    tools: list[str]
    formats: list[str]


def filter_choices(*, now: datetime | None = None, limit: int = 200) -> FilterChoices:
    cached = cache.get("dashboard:filter-choices:v2")
    if cached is not None:
        return cached
    since = (now or timezone.now()) - timedelta(days=30)
    recent = Session.objects.filter(updated_at__gte=since)

    def distinct(rows: QuerySet, column: str) -> list[str]:
        values = rows.exclude(**{column: ""}).values_list(column, flat=True).distinct()
        return list(values.order_by(column)[:limit])

    choices = FilterChoices(
        agents=distinct(recent, "agent"),
        users=distinct(recent, "user"),
        models=distinct(ModelUsage.objects.filter(session__updated_at__gte=since), "model"),
        tools=distinct(ToolCallRecord.objects.filter(occurred_at__gte=since), "name"),
        formats=distinct(recent, "format"),
    )
    cache.set("dashboard:filter-choices:v2", choices, timeout=60)
    return choices


# --- errors across sessions ---------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorItem:
    id: int
    kind: str
    message: str
    occurred_at: datetime
    message_seq: int | None
    tool_name: str
    heuristic: bool
    session_id: str
    session_external_id: str
    session_format: str
    agent: str
    user: str


@dataclass(frozen=True)
class ErrorPage:
    items: list[ErrorItem]
    next_cursor: str | None


def list_errors(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    agent: str | None = None,
    tool: str | None = None,
    kinds: list[str] | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> ErrorPage:
    """Errors and warnings across sessions, newest first (keyset on time, id)."""
    rows = SessionError.objects.select_related("session")
    if since:
        rows = rows.filter(occurred_at__gte=since)
    if until:
        rows = rows.filter(occurred_at__lt=until)
    if agent:
        rows = rows.filter(session__agent=agent)
    if tool:
        rows = rows.filter(tool_name=tool)
    if kinds:
        rows = rows.filter(kind__in=kinds)
    if cursor:
        try:
            when, last_id = cursors.decode_cursor(cursor, cursors.aware_datetime, cursors.integer)
        except cursors.MalformedCursor as exc:
            raise InvalidQuery(exc.message, path="cursor") from None
        rows = rows.filter(Q(occurred_at__lt=when) | Q(occurred_at=when, id__lt=last_id))
    limit = max(1, min(limit, ERRORS_MAX_PAGE))
    page = list(rows.order_by("-occurred_at", "-id")[: limit + 1])
    next_cursor = None
    if len(page) > limit:
        page = page[:limit]
        next_cursor = cursors.encode_cursor(page[-1].occurred_at, page[-1].id)
    return ErrorPage(
        items=[
            ErrorItem(
                id=row.id,
                kind=row.kind,
                message=row.message,
                occurred_at=row.occurred_at,
                message_seq=row.message_seq,
                tool_name=row.tool_name,
                heuristic=row.heuristic,
                session_id=str(row.session_id),
                session_external_id=row.session.external_id,
                session_format=row.session.format,
                agent=row.session.agent,
                user=row.session.user,
            )
            for row in page
        ],
        next_cursor=next_cursor,
    )


# --- one session: timeline windows, panels, raw, diffs ------------------------------------------


# A stored version never changes, so what is derived from it is cached without invalidation.
# Caching the small page-sized results (not just the whole parsed session) keeps a warm page of
# a 10,000-message session as cheap as a short one: no large object is unpickled per request.
DERIVED_CACHE_SECONDS = 3600


def _cached(key: str, build: Callable[[], Any]) -> Any:
    value = cache.get(key)
    if value is None:
        value = build()
        cache.set(key, value, timeout=DERIVED_CACHE_SECONDS)
    return value


def event_index_of_seq(
    *, record: SessionRecord, seq: int, version: int | None = None
) -> int | None:
    """Where in the timeline the first event of document position ``seq`` is."""
    number = version or record.version

    def build() -> dict[int, int]:
        positions: dict[int, int] = {}
        for event in selectors.get_parsed_version(record=record, version=number).events:
            if event.get("seq") is not None:
                positions.setdefault(event["seq"], event["index"])
            # A paired tool result has no event of its own: it lives in its call.
            if event.get("kind") == "tool_call" and event.get("result_seq") is not None:
                positions.setdefault(event["result_seq"], event["index"])
        return positions

    return _cached(f"dash:positions:v1:{record.id}:{number}", build).get(seq)


@dataclass(frozen=True)
class StepView:
    name: str
    order: int
    level: int
    flow: str | None
    active: bool | None
    model: str | None
    model_params: Any
    state: Any
    saved_at: datetime | None


@dataclass(frozen=True)
class LogView:
    level: str
    message: str
    timestamp: datetime | None
    extra: Any


@dataclass(frozen=True)
class SessionPanels:
    steps: list[StepView]
    logs: list[LogView]
    logs_total: int
    warnings: list[dict[str, str]]
    state: Any
    context: Any
    metadata: dict[str, Any]
    flows: list[dict[str, Any]]
    models: list[str]
    # Files that travel with a session (AgentFlow notes and artifacts), from its metadata.
    notes: list[dict[str, Any]]
    artifacts: list[dict[str, Any]]


# Metadata keys shown in their own panels rather than in the raw metadata dump.
_FILE_METADATA_KEYS = ("notes", "artifacts")


def session_panels(
    *, record: SessionRecord, version: int | None = None, max_logs: int = 500
) -> SessionPanels:
    """The side panels of the session page: steps with their state, logs, parse warnings."""
    number = version or record.version
    return _cached(
        f"dash:panels:v2:{record.id}:{number}:{max_logs}",
        lambda: _build_panels(record, number, max_logs),
    )


def _build_panels(record: SessionRecord, version: int, max_logs: int) -> SessionPanels:
    parsed = selectors.get_parsed_version(record=record, version=version)
    session = parsed.session
    steps = sorted(session.steps, key=lambda s: (s.order, s.name))
    logs = list(session.logs)
    return SessionPanels(
        steps=[
            StepView(
                name=s.name,
                order=s.order,
                level=s.level,
                flow=s.flow,
                active=s.is_active,
                model=s.model,
                model_params=s.model_params,
                state=s.state,
                saved_at=s.saved_at,
            )
            for s in steps
        ],
        logs=[
            LogView(level=e.level.value, message=e.message, timestamp=e.timestamp, extra=e.extra)
            for e in logs[:max_logs]
        ],
        logs_total=len(logs),
        warnings=parsed.warnings,
        state=session.state,
        context=session.context,
        metadata={k: v for k, v in session.metadata.items() if k not in _FILE_METADATA_KEYS},
        flows=list(session.flows),
        models=session.models,
        notes=_dicts(session.metadata.get("notes")),
        artifacts=_dicts(session.metadata.get("artifacts")),
    )


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


@dataclass(frozen=True)
class PrettyBody:
    text: str
    size_bytes: int
    truncated: bool
    is_json: bool


def pretty_body(*, session_id: str, version: int, max_chars: int = 2_000_000) -> PrettyBody:
    """A stored body, pretty-printed (2-space JSON) and cut at ``max_chars``."""
    body = selectors.get_raw_body(session_id=session_id, version=version)
    text, is_json = _pretty(body)
    return PrettyBody(
        text=text[:max_chars],
        size_bytes=len(body),
        truncated=len(text) > max_chars,
        is_json=is_json,
    )


def _pretty(body: bytes) -> tuple[str, bool]:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False), True
    except (ValueError, RecursionError):
        return body.decode("utf-8", errors="replace"), False


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del", "hunk", "ctx", "meta"
    text: str


@dataclass(frozen=True)
class VersionDiff:
    a: int
    b: int
    lines: list[DiffLine]
    added: int
    removed: int
    truncated: bool
    too_large: bool = False


DIFF_MAX_INPUT_LINES = 200_000


def diff_versions(
    *, session_id: str, a: int, b: int, context: int = 3, max_lines: int = 5000
) -> VersionDiff:
    """A unified diff of two versions' pretty-printed JSON (server-side, bounded)."""
    left = _pretty(selectors.get_raw_body(session_id=session_id, version=a))[0].splitlines()
    right = _pretty(selectors.get_raw_body(session_id=session_id, version=b))[0].splitlines()
    if len(left) + len(right) > DIFF_MAX_INPUT_LINES:
        return VersionDiff(a=a, b=b, lines=[], added=0, removed=0, truncated=False, too_large=True)
    lines: list[DiffLine] = []
    added = removed = 0
    truncated = False
    for line in difflib.unified_diff(
        left, right, fromfile=f"v{a}", tofile=f"v{b}", n=context, lineterm=""
    ):
        if line.startswith(("---", "+++")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
            added += 1
        elif line.startswith("-"):
            kind = "del"
            removed += 1
        else:
            kind = "ctx"
        if len(lines) < max_lines:
            lines.append(DiffLine(kind=kind, text=line))
        else:
            truncated = True
    return VersionDiff(a=a, b=b, lines=lines, added=added, removed=removed, truncated=truncated)
