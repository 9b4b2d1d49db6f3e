"""The error feed: errors, warnings and tool failures across sessions, newest first.

It pages like every list, with a keyset cursor on (time, id), never OFFSET.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from sessions_api.errors import InvalidQuery
from sessions_api.models import SessionError
from sessions_api.sessions import cursors

ERRORS_MAX_PAGE = 200


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
