"""The session explorer: pages of sessions in either direction, exports, filter suggestions.

The explorer pages with keyset cursors in both directions on top of
:func:`selectors.filtered_sessions` (so the filters mean exactly what ``GET /api/v1/sessions``
means), plus a dashboard-only duration range that the overview's duration chart links to.
Lists never use OFFSET and never count exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import DurationField, ExpressionWrapper, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from sessions_api.errors import InvalidQuery
from sessions_api.models import ModelUsage, Session, ToolCallRecord
from sessions_api.sessions import cursors, selectors
from sessions_api.sessions.records import SessionRecord, record_from_row
from sessions_api.sessions.selectors import SessionFilters

EXPLORER_MAX_PAGE = 200
EXPORT_MAX_ROWS = 10_000


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
