"""The one keyset cursor codec behind every paged list (sessions, explorer, errors, timeline,
audit).

A cursor is a page's position as a JSON array, base64url-encoded without padding: opaque to
clients, and nothing a client can alter reaches a query unchecked. Each list decides what the
array holds (its order, the last sort value and id, a direction, a version and an offset) and
reads it back with the readers below, which type-check every element; a cursor that fails is a
:class:`MalformedCursor`, which the list reports as a 400 on ``cursor``, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sessions_api import bounds

Reader = Callable[[Any], Any]

MALFORMED = "malformed cursor"
OTHER_ORDER = "cursor does not belong to this order; start again"


class MalformedCursor(ValueError):
    """A cursor this list did not write (or wrote for another order); the message says which."""

    def __init__(self, message: str = MALFORMED) -> None:
        super().__init__(message)
        self.message = message


def encode_cursor(*position: Any) -> str:
    """The cursor for ``position`` (JSON values; datetimes are written in ISO 8601)."""
    values = [value.isoformat() if isinstance(value, datetime) else value for value in position]
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *readers: Reader, order: str | None = None) -> tuple[Any, ...]:
    """The position in ``cursor``, one element per reader, each as its reader returns it.

    With ``order`` the cursor's first element must be that order and is not returned: a cursor
    of another order (or of another list) is stale rather than malformed, so the client is
    told to start again.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise MalformedCursor() from None
    if order is not None:
        if not (isinstance(data, list) and len(data) == len(readers) + 1 and data[0] == order):
            raise MalformedCursor(OTHER_ORDER)
        data = data[1:]
    if not (isinstance(data, list) and len(data) == len(readers)):
        raise MalformedCursor()
    return tuple(read(value) for read, value in zip(readers, data, strict=True))


# --- readers: each returns the element as the query needs it, or raises MalformedCursor --------


def aware_datetime(value: Any) -> datetime:
    """An ISO 8601 time with its offset: cursors are written from aware times, and a naive one
    would compare wrongly against the database's."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise MalformedCursor() from None
    if moment.tzinfo is None or bounds.moment_problem(moment):
        raise MalformedCursor()
    return moment


def integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or bounds.integer_problem(value):
        raise MalformedCursor()
    return value


def session_id(value: Any) -> str:
    """A session's UUID: anything else in a UUID comparison is a database error."""
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise MalformedCursor() from None


def flag(value: Any) -> bool:
    """A direction written as 0 or 1."""
    if integer(value) not in (0, 1):
        raise MalformedCursor()
    return bool(value)


def sort_value(*, temporal: bool) -> Reader:
    """The sort key of a keyset list: a time for the time orders, an integer for the counts."""
    return aware_datetime if temporal else integer
