"""Aggregates for the dashboard: typed, bounded by a time range, portable across databases.

Every function takes keyword-only ``since``/``until`` (timezone-aware) and returns frozen
dataclasses, never ORM rows.

What is counted in a range [since, until):

- sessions, their tokens, durations, agents and users: the sessions that *started* in it;
- tool calls and errors: those that *happened* in it (``occurred_at``).

Where the numbers come from (so a page view does not aggregate a million index rows): whole
hours up to the last rollup run are read from the ``RollupBucket`` rows that
:mod:`sessions_api.analytics.rollups` keeps (whole days as daily rows), and only the open edges, the
partial hour at the start and everything from the hour the last run happened in, from the
index, with the very queries that fill the rollups. Hours before the last run are therefore
as of that run (it runs every 5 minutes): a session that started earlier and changed since
shows its change after the next run. Without rollups everything comes from the index.

Costs are estimated when read, with the prices of :mod:`sessions_api.analytics.pricing` in
effect on each start day, so a price edit shows at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from django.db.models import Count, Q, Sum

from sessions_api.analytics import rollups
from sessions_api.analytics.pricing import PriceBook, estimate_cost, price_book
from sessions_api.analytics.rollups import Cell, Cells
from sessions_api.models import RollupBucket, SessionError, ToolCallRecord

Granularity = Literal["minute", "hour", "day"]
_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
UNATTRIBUTED = rollups.UNATTRIBUTED
FAILED_STATUSES = ("aborted", "error")
ERROR_KINDS = ("tool_error", "message_error", "log_error")
WARNING_KINDS = ("log_warning",)
DURATION_BINS = rollups.DURATION_BINS
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def granularity_for(since: datetime, until: datetime) -> Granularity:
    """The bucket size that gives a chart a readable number of bars for a range."""
    span = until - since
    if span <= timedelta(hours=3):
        return "minute"
    if span <= timedelta(days=8):
        return "hour"
    return "day"


def bucket_starts(since: datetime, until: datetime, granularity: Granularity) -> list[datetime]:
    """Every bucket start in [since, until), so charts show empty buckets as zeros."""
    step = _STEP[granularity]
    start = since.replace(second=0, microsecond=0)
    if granularity in ("hour", "day"):
        start = start.replace(minute=0)
    if granularity == "day":
        start = start.replace(hour=0)
    buckets = []
    current = start
    while current < until and len(buckets) < 2000:
        buckets.append(current)
        current += step
    return buckets


# --- reading rollups and the open edges ---------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """Where a range's numbers came from: RollupBucket rows (as of ``rolled_up_at``) for
    whole hours before ``live_from``, the index for the rest."""

    rolled_up_at: datetime | None  # None: no rollups yet, all from the index
    live_from: datetime  # since this instant (and for the partial first hour): the index


@dataclass(frozen=True)
class _Segment:
    source: Literal["index", "hour", "day"]
    lo: datetime
    hi: datetime


def _floor(value: datetime, granularity: Granularity) -> datetime:
    value = value.astimezone(UTC).replace(second=0, microsecond=0)
    if granularity in ("hour", "day"):
        value = value.replace(minute=0)
    if granularity == "day":
        value = value.replace(hour=0)
    return value


def _ceil(value: datetime, granularity: Granularity) -> datetime:
    floor = _floor(value, granularity)
    return floor if floor == value else floor + _STEP[granularity]


def _plan(
    since: datetime, until: datetime, granularity: Granularity, rolled_up_at: datetime | None
) -> list[_Segment]:
    """Cut [since, until) into index edges and whole hours (whole days when the result is
    daily) that the rollups hold. Minute charts and ranges without rollups: all index."""
    whole_from = _ceil(since, "hour")
    whole_until = min(_floor(rolled_up_at, "hour"), _floor(until, "hour")) if rolled_up_at else None
    if granularity == "minute" or whole_until is None or whole_from >= whole_until:
        return [_Segment("index", since, until)]
    segments = [_Segment("index", since, whole_from)] if since < whole_from else []
    days_from, days_until = _ceil(whole_from, "day"), _floor(whole_until, "day")
    if granularity == "day" and days_from < days_until:
        if whole_from < days_from:
            segments.append(_Segment("hour", whole_from, days_from))
        segments.append(_Segment("day", days_from, days_until))
        if days_until < whole_until:
            segments.append(_Segment("hour", days_until, whole_until))
    else:
        segments.append(_Segment("hour", whole_from, whole_until))
    if whole_until < until:
        segments.append(_Segment("index", whole_until, until))
    return segments


def _read_cells(
    *, since: datetime, until: datetime, granularity: Granularity, series: Iterable[str]
) -> tuple[Cells, Freshness]:
    """Every cell of ``series`` in [since, until), bucketed by ``granularity``."""
    series = list(series)
    rolled_up_at = rollups.rolled_up_at()
    segments = _plan(since, until, granularity, rolled_up_at)
    cells: Cells = {}
    for segment in segments:
        if segment.source == "index":
            unit = "minute" if granularity == "minute" else "hour"
            found = rollups.aggregate_index(lo=segment.lo, hi=segment.hi, unit=unit, series=series)
            for (bucket, name, key), cell in found.items():
                _put(cells, _floor(bucket, granularity), name, key, cell)
        else:
            _read_buckets(cells, segment, granularity, series)
    live_from = segments[-1].lo if segments[-1].source == "index" else until
    return cells, Freshness(rolled_up_at=rolled_up_at, live_from=live_from)


def _read_buckets(
    cells: Cells, segment: _Segment, granularity: Granularity, series: list[str]
) -> None:
    rows = RollupBucket.objects.filter(
        granularity=segment.source,
        series__in=series,
        bucket_start__gte=segment.lo,
        bucket_start__lt=segment.hi,
    )
    values = rollups.CELL_FIELDS
    if _floor(segment.lo, granularity) == _floor(segment.hi - HOUR, granularity):
        # The whole segment falls into one result bucket (a partial day of hours in a daily
        # result): let the database add it up.
        bucket = _floor(segment.lo, granularity)
        sums = rows.values_list("series", "key").annotate(*(Sum(v) for v in values))
        for name, key, *numbers in sums.order_by():
            _put(cells, bucket, name, key, Cell(*numbers))
        return
    for start, name, key, *numbers in rows.values_list("bucket_start", "series", "key", *values):
        _put(cells, _floor(start, granularity), name, key, Cell(*numbers))


def _put(cells: Cells, bucket: datetime, series: str, key: str, cell: Cell) -> None:
    slot = (bucket, series, key)
    if slot not in cells:
        cells[slot] = Cell()
    cells[slot].add(cell)


def _by_key(cells: Cells, series: str) -> dict[str, Cell]:
    """One series summed over the whole range, per key."""
    totals: dict[str, Cell] = {}
    for (_, name, key), cell in cells.items():
        if name == series:
            _put_key(totals, key, cell)
    return totals


def _put_key(totals: dict[str, Cell], key: str, cell: Cell) -> None:
    if key not in totals:
        totals[key] = Cell()
    totals[key].add(cell)


# --- KPIs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpis:
    sessions: int
    running: int
    completed: int
    failed: int  # aborted or error
    with_errors: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    tool_calls: int
    tool_errors: int
    cost: Decimal
    unpriced_tokens: int

    @property
    def error_rate(self) -> float | None:
        """Share of sessions with at least one recorded error (None without sessions)."""
        return self.with_errors / self.sessions if self.sessions else None

    @property
    def tool_error_rate(self) -> float | None:
        return self.tool_errors / self.tool_calls if self.tool_calls else None


_KPI_SERIES = ("sessions_by_status", "tool_calls_by_tool", "tokens_by_model")


def overview_kpis(
    *, since: datetime, until: datetime, costs: list[ModelCost] | None = None
) -> Kpis:
    """Headline numbers over the sessions started in [since, until) and the tool calls made
    in it. Pass ``costs`` (from :func:`cost_by_model` for the same range) to avoid computing
    them twice."""
    cells, _ = _read_cells(since=since, until=until, granularity="day", series=_KPI_SERIES)
    return _kpis(cells, costs if costs is not None else _costs(cells, price_book()))


def _kpis(cells: Cells, costs: list[ModelCost]) -> Kpis:
    statuses = _by_key(cells, "sessions_by_status")
    tools = _by_key(cells, "tool_calls_by_tool")
    every = Cell()
    for cell in statuses.values():
        every.add(cell)

    def count(*keys: str) -> int:
        return sum(statuses[k].count for k in keys if k in statuses)

    return Kpis(
        sessions=every.count,
        running=count("running"),
        completed=count("completed"),
        failed=count(*FAILED_STATUSES),
        with_errors=every.errors,
        input_tokens=every.input_tokens,
        output_tokens=every.output_tokens,
        total_tokens=every.total_tokens,
        tool_calls=sum(c.count for c in tools.values()),
        tool_errors=sum(c.errors for c in tools.values()),
        cost=sum((c.cost for c in costs if c.cost is not None), Decimal(0)),
        unpriced_tokens=sum(c.total_tokens for c in costs if c.cost is None),
    )


# --- time series --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesPoint:
    """One bar segment: ``count`` of ``key`` in the bucket starting at ``bucket``."""

    bucket: datetime
    key: str
    count: int


@dataclass(frozen=True)
class TokenPoint:
    bucket: datetime
    model: str
    input_tokens: int
    output_tokens: int
    total_tokens: int


def sessions_by_status(
    *, since: datetime, until: datetime, granularity: Granularity
) -> list[SeriesPoint]:
    """Sessions per bucket of their start, split by status."""
    cells, _ = _read_cells(
        since=since, until=until, granularity=granularity, series=["sessions_by_status"]
    )
    return _points(cells, "sessions_by_status")


def _points(cells: Cells, series: str) -> list[SeriesPoint]:
    return [
        SeriesPoint(bucket=bucket, key=key, count=cell.count)
        for (bucket, name, key), cell in sorted(cells.items(), key=lambda kv: kv[0])
        if name == series and cell.count
    ]


def tokens_by_model(
    *, since: datetime, until: datetime, granularity: Granularity
) -> list[TokenPoint]:
    """Tokens per bucket of session start, split by model (stackable)."""
    cells, _ = _read_cells(
        since=since, until=until, granularity=granularity, series=["tokens_by_model"]
    )
    return _token_points(cells)


def _token_points(cells: Cells) -> list[TokenPoint]:
    return [
        TokenPoint(
            bucket=bucket,
            model=key,
            input_tokens=cell.input_tokens,
            output_tokens=cell.output_tokens,
            total_tokens=cell.total_tokens,
        )
        for (bucket, name, key), cell in sorted(cells.items(), key=lambda kv: kv[0])
        if name == "tokens_by_model" and cell.total_tokens > 0
    ]


def errors_over_time(
    *, since: datetime, until: datetime, granularity: Granularity
) -> list[SeriesPoint]:
    """Errors and warnings per bucket of when they happened, split by kind."""
    cells, _ = _read_cells(
        since=since, until=until, granularity=granularity, series=["errors_by_kind"]
    )
    return _points(cells, "errors_by_kind")


def error_totals(
    *,
    since: datetime,
    until: datetime,
    agent: str | None = None,
    tool: str | None = None,
) -> dict[str, int]:
    """Errors and warnings per kind that happened in the range (for the errors page)."""
    rows = SessionError.objects.filter(occurred_at__gte=since, occurred_at__lt=until)
    if agent:
        rows = rows.filter(session__agent=agent)
    if tool:
        rows = rows.filter(tool_name=tool)
    totals = {kind: 0 for kind in (*ERROR_KINDS, *WARNING_KINDS)}
    for r in rows.values("kind").annotate(n=Count("id")).order_by("kind"):
        totals[r["kind"]] = r["n"]
    totals["sessions"] = (
        rows.exclude(kind__in=WARNING_KINDS).values("session_id").distinct().count()
    )
    return totals


# --- tools, agents, users, durations ------------------------------------------------------------


@dataclass(frozen=True)
class ToolStat:
    name: str
    calls: int
    errors: int
    heuristic_errors: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


def tool_stats(
    *, since: datetime, until: datetime, agent: str | None = None, limit: int = 15
) -> list[ToolStat]:
    """Calls and errors per tool, most called first (calls made in [since, until)). The
    rollups do not split tools by agent: with ``agent`` this reads the index."""
    if agent:
        return _tool_stats_of_agent(since=since, until=until, agent=agent, limit=limit)
    cells, _ = _read_cells(
        since=since, until=until, granularity="day", series=["tool_calls_by_tool"]
    )
    return _tool_stats(cells, limit)


def _tool_stats(cells: Cells, limit: int) -> list[ToolStat]:
    tools = _by_key(cells, "tool_calls_by_tool")
    ranked = sorted(tools.items(), key=lambda kv: (-kv[1].count, kv[0]))[:limit]
    return [
        ToolStat(
            name=name,
            calls=cell.count,
            errors=cell.errors,
            heuristic_errors=round(cell.value_sum),
        )
        for name, cell in ranked
    ]


def _tool_stats_of_agent(
    *, since: datetime, until: datetime, agent: str, limit: int
) -> list[ToolStat]:
    grouped = (
        ToolCallRecord.objects.filter(
            occurred_at__gte=since, occurred_at__lt=until, session__agent=agent
        )
        .values("name")
        .annotate(
            calls=Count("id"),
            errors=Count("id", filter=Q(status="error")),
            heuristic=Count("id", filter=Q(status="error", status_source="heuristic")),
        )
        .order_by("-calls", "name")[:limit]
    )
    return [
        ToolStat(
            name=r["name"], calls=r["calls"], errors=r["errors"], heuristic_errors=r["heuristic"]
        )
        for r in grouped
    ]


@dataclass(frozen=True)
class RankedKey:
    """An agent or a user with what its sessions add up to in the range."""

    key: str
    sessions: int
    with_errors: int
    total_tokens: int


def top_agents(*, since: datetime, until: datetime, limit: int = 8) -> list[RankedKey]:
    cells, _ = _read_cells(
        since=since, until=until, granularity="day", series=["sessions_by_agent"]
    )
    return _top(cells, "sessions_by_agent", rollups.NO_AGENT, limit)


def top_users(*, since: datetime, until: datetime, limit: int = 8) -> list[RankedKey]:
    cells, _ = _read_cells(since=since, until=until, granularity="day", series=["sessions_by_user"])
    return _top(cells, "sessions_by_user", rollups.NO_USER, limit)


def _top(cells: Cells, series: str, unnamed: str, limit: int) -> list[RankedKey]:
    totals = _by_key(cells, series)
    totals.pop(unnamed, None)
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1].count, kv[0]))[:limit]
    return [
        RankedKey(
            key=key, sessions=cell.count, with_errors=cell.errors, total_tokens=cell.total_tokens
        )
        for key, cell in ranked
    ]


@dataclass(frozen=True)
class DurationBin:
    label: str
    min_seconds: int
    max_seconds: int | None  # None: open-ended
    count: int


def duration_histogram(*, since: datetime, until: datetime) -> list[DurationBin]:
    """Sessions by duration (last activity minus start), in fixed human-sized bins."""
    cells, _ = _read_cells(
        since=since, until=until, granularity="day", series=["sessions_by_duration"]
    )
    return _duration_bins(cells)


def _duration_bins(cells: Cells) -> list[DurationBin]:
    counts = _by_key(cells, "sessions_by_duration")
    bins = []
    for index, (label, lower) in enumerate(DURATION_BINS):
        upper = DURATION_BINS[index + 1][1] if index + 1 < len(DURATION_BINS) else None
        found = counts.get(str(lower))
        bins.append(
            DurationBin(
                label=label,
                min_seconds=lower,
                max_seconds=upper,
                count=found.count if found else 0,
            )
        )
    return bins


# --- the overview in one read -------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    """Everything the overview page shows for a range, read once."""

    kpis: Kpis
    costs: list[ModelCost]
    sessions_by_status: list[SeriesPoint]
    tokens_by_model: list[TokenPoint]
    errors_over_time: list[SeriesPoint]
    tool_stats: list[ToolStat]
    duration_histogram: list[DurationBin]
    top_agents: list[RankedKey]
    top_users: list[RankedKey]
    freshness: Freshness


def overview(
    *,
    since: datetime,
    until: datetime,
    granularity: Granularity,
    book: PriceBook | None = None,
    top: int = 8,
    tools: int = 15,
) -> Overview:
    """The same numbers as the functions above, from one read of every series."""
    cells, freshness = _read_cells(
        since=since, until=until, granularity=granularity, series=rollups.SERIES
    )
    costs = _costs(cells, book or price_book())
    return Overview(
        kpis=_kpis(cells, costs),
        costs=costs,
        sessions_by_status=_points(cells, "sessions_by_status"),
        tokens_by_model=_token_points(cells),
        errors_over_time=_points(cells, "errors_by_kind"),
        tool_stats=_tool_stats(cells, tools),
        duration_histogram=_duration_bins(cells),
        top_agents=_top(cells, "sessions_by_agent", rollups.NO_AGENT, top),
        top_users=_top(cells, "sessions_by_user", rollups.NO_USER, top),
        freshness=freshness,
    )


# --- costs per model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCost:
    model: str
    sessions: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    total_tokens: int
    cost: Decimal | None  # None: no price for this model (or unattributed tokens)


def cost_by_model(
    *, since: datetime, until: datetime, book: PriceBook | None = None
) -> list[ModelCost]:
    """Estimated cost per model over the sessions started in the range, dearest first."""
    cells, _ = _read_cells(since=since, until=until, granularity="day", series=["tokens_by_model"])
    return _costs(cells, book or price_book())


def _costs(cells: Cells, book: PriceBook) -> list[ModelCost]:
    """Tokens per model and start day, priced with the price in effect on that day."""
    per_day: dict[tuple[str, date], Cell] = {}
    for (bucket, name, key), cell in cells.items():
        if name == "tokens_by_model":
            slot = (key, bucket.astimezone(UTC).date())
            if slot not in per_day:
                per_day[slot] = Cell()
            per_day[slot].add(cell)
    per_model: dict[str, dict] = {}
    for (model, day), cell in sorted(per_day.items()):
        entry = per_model.setdefault(
            model,
            {"sessions": 0, "input": 0, "output": 0, "cached": 0, "total": 0, "cost": Decimal(0)},
        )
        cached = round(cell.value_sum)
        entry["sessions"] += cell.count
        entry["input"] += cell.input_tokens
        entry["output"] += cell.output_tokens
        entry["cached"] += cached
        entry["total"] += cell.total_tokens
        price = None if model == UNATTRIBUTED else book.price_for(model, day)
        if price is None:
            if cell.total_tokens > 0:
                entry["cost"] = None
        elif entry["cost"] is not None:
            entry["cost"] += estimate_cost(
                price,
                input_tokens=cell.input_tokens,
                output_tokens=cell.output_tokens,
                cached_input_tokens=cached,
            )
    result = [
        ModelCost(
            model=model,
            sessions=e["sessions"],
            input_tokens=e["input"],
            output_tokens=e["output"],
            cached_input_tokens=e["cached"],
            total_tokens=e["total"],
            cost=e["cost"] if model != UNATTRIBUTED else None,
        )
        for model, e in per_model.items()
        if e["total"] > 0 or e["input"] > 0 or e["output"] > 0
    ]
    result.sort(key=lambda c: (c.cost is None, -(c.cost or 0), -c.total_tokens, c.model))
    return result
