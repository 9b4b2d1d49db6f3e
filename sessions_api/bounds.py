"""The ranges every date, number and cursor element a client sends must fall in.

One check for all of them, used by the API's parameters, the dashboard's forms and the cursor
readers, so an out-of-range value is a 400 naming the parameter before any query runs or any
export starts streaming, never an overflow deep inside a query (a 500, or a file cut short).

Moments: Python's datetime spans years 1 to 9999, but an aware value near either end can leave
that span once converted to UTC (``0001-01-01T00:00:00+14:00``), which is what the database
layer does. Accepted moments are those whose UTC value lies a day inside the span, so a
conversion to any offset, or a day's arithmetic, still fits. Integers: what a 64-bit database
column holds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sessions_api.errors import InvalidQuery

EARLIEST = datetime(1, 1, 1, tzinfo=UTC) + timedelta(days=1)
LATEST = datetime(9999, 12, 31, tzinfo=UTC) - timedelta(days=1)
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def moment_problem(value: datetime) -> str:
    """Why ``value`` is out of range ("" when it is not). Naive values are taken as UTC."""
    try:
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        return f"{value.isoformat()} is out of range (UTC years 0001 to 9999)"
    return ""


def integer_problem(value: int, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX) -> str:
    if not minimum <= value <= maximum:
        shown = str(value) if len(str(value)) <= 30 else f"{str(value)[:30]}…"
        return f"{shown} is out of range ({minimum} to {maximum})"
    return ""


def check_moment(value: datetime | None, *, name: str) -> datetime | None:
    """``value`` unchanged, or InvalidQuery (400) naming the parameter."""
    if value is not None and (problem := moment_problem(value)):
        raise InvalidQuery(f"{name}: {problem}", path=name)
    return value


def check_integer(
    value: int | None, *, name: str, minimum: int = INT64_MIN, maximum: int = INT64_MAX
) -> int | None:
    """``value`` unchanged, or InvalidQuery (400) naming the parameter."""
    if value is not None and (problem := integer_problem(value, minimum=minimum, maximum=maximum)):
        raise InvalidQuery(f"{name}: {problem}", path=name)
    return value
