"""Analytics rollups: hourly and daily RollupBucket rows that the overview reads.

Series (RollupBucket.series -> key, what the numbers mean). Session series are bucketed by the
session's start (``started_at``), event series by when the event happened (``occurred_at``):

- ``sessions_by_status`` -> status: count = sessions, errors = sessions with errors, tokens =
  their token totals.
- ``sessions_by_agent`` -> agent (``(none)`` when unnamed): count, errors and tokens as above.
- ``sessions_by_user`` -> user (``(none)`` when unnamed): count, errors and tokens as above.
- ``sessions_by_duration`` -> the lower bound in seconds of the session's DURATION_BINS bin:
  count = sessions.
- ``tokens_by_model`` -> model (``(unattributed)`` for session totals a document does not
  split by model): count = sessions using it, tokens (total: the reported total, else input +
  output), value_sum = cached input tokens. No cost is stored: readers price the tokens per
  model and start day with the price table as it is when they read.
- ``tool_calls_by_tool`` -> tool name, by the call's time: count = calls, errors = failed
  calls, value_sum = failed calls whose failure is a heuristic verdict.
- ``errors_by_kind`` -> kind (tool_error, message_error, log_error, log_warning), by time:
  count = entries, errors = entries that are not heuristic verdicts.

Buckets are always rewritten whole from the sessions in the index, so running twice gives the
same rows (idempotent) and a full rebuild equals the sum of incremental runs. An incremental run
recomputes only the hours touched by sessions received or expired since the watermark (minus an
overlap for ingests that committed late), plus hours that purges marked dirty; days are summed
from their hours. Every chunk commits on its own (a long rollup never holds the SQLite
write lock for long). Once a day (ROLLUP_FULL_REBUILD_EVERY) a run rebuilds everything,
which also catches sessions deleted outside the purge job.

Readers (``analytics``) take whole hours before the watermark's hour from here and the rest
from the index with :func:`aggregate_index`, the same queries that fill the buckets.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.db.models.lookups import LessThan

from sessions_api import conf, db
from sessions_api.models import (
    RollupBucket,
    Session,
    SessionError,
    ToolCallRecord,
)
from sessions_api.state import read_state, update_state, write_state

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
#: Series over sessions, bucketed by start; and over events, bucketed by when they happened.
SESSION_SERIES = (
    "sessions_by_status",
    "sessions_by_agent",
    "sessions_by_user",
    "sessions_by_duration",
    "tokens_by_model",
)
EVENT_SERIES = ("tool_calls_by_tool", "errors_by_kind")
SERIES = SESSION_SERIES + EVENT_SERIES
#: Bumped when a series changes meaning: a run then rebuilds everything, and readers ignore
#: the buckets until it has.
SCHEMA = 2
STATE = "rollup_analytics"
DIRTY_STATE = "rollup_analytics:dirty"
#: At most this many hours are rewritten per transaction.
CHUNK_HOURS = 24 * 7
#: Beyond this many dirty hours the next run rebuilds everything instead.
MAX_DIRTY_HOURS = 20_000
#: Rows per INSERT batch.
INSERT_BATCH = 2000
UNATTRIBUTED = "(unattributed)"
NO_AGENT = "(none)"
NO_USER = "(none)"
#: Session duration bins (last activity minus start): (label, lower bound in seconds); each
#: bin runs to the next one's lower bound.
DURATION_BINS: tuple[tuple[str, int], ...] = (
    ("<10s", 0),
    ("10-30s", 10),
    ("30s-1m", 30),
    ("1-5m", 60),
    ("5-15m", 300),
    ("15-60m", 900),
    ("1-6h", 3600),
    ("6-24h", 21600),
    (">1d", 86400),
)

Unit = Literal["hour", "minute"]
Checkpoint = Callable[[], None]


def _no_checkpoint() -> None:
    return None


@dataclass(frozen=True)
class RollupResult:
    dry_run: bool
    mode: str  # "incremental" or "full"
    changed_sessions: int
    hours_recomputed: int
    days_recomputed: int
    buckets_written: int
    watermark: str

    def counts(self) -> dict[str, int]:
        return {
            "changed_sessions": self.changed_sessions,
            "hours_recomputed": self.hours_recomputed,
            "days_recomputed": self.days_recomputed,
            "buckets_written": self.buckets_written,
        }

    def details(self) -> dict[str, Any]:
        return {"mode": self.mode, "watermark": self.watermark}


#: Cell's numbers in field order: the RollupBucket columns that hold them.
CELL_FIELDS = ("count", "errors", "input_tokens", "output_tokens", "total_tokens", "value_sum")


@dataclass(slots=True)
class Cell:
    """The numbers of one (bucket, series, key); what each means depends on the series."""

    count: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    value_sum: float = 0.0

    def add(self, other: Cell) -> None:
        self.count += other.count
        self.errors += other.errors
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.total_tokens += other.total_tokens
        self.value_sum += other.value_sum


# (bucket_start, series, key) -> values
Cells = dict[tuple[datetime, str, str], Cell]


def add_cell(cells: Cells, bucket: datetime, series: str, key: str, cell: Cell) -> None:
    slot = (bucket, series, key[:255])
    if slot in cells:
        cells[slot].add(cell)
    else:
        cells[slot] = cell


# --- native time expressions ------------------------------------------------------------------


class TimeBucket(Func):
    """The UTC hour (or minute) a datetime column falls in, in native SQL: Django's TruncHour
    is a Python function per row on SQLite. There, stored datetimes are UTC text
    ('YYYY-MM-DD HH:MM:SS.ffffff'), so the bucket is a prefix ('YYYY-MM-DD HH'); PostgreSQL
    truncates with date_trunc (the connection's time zone is UTC). Results skip Django's
    per-row datetime converters: :class:`BucketParser` turns either form into the aware start.
    """

    output_field = CharField()
    _prefix = {"hour": 13, "minute": 16}

    def __init__(self, column: str, unit: Unit = "hour") -> None:
        super().__init__(F(column))
        self.unit = unit

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"date_trunc('{self.unit}', {sql})", params

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"substr({sql}, 1, {self._prefix[self.unit]})", params


class BucketParser:
    """TimeBucket values to aware UTC datetimes; memoized, as a scan yields few distinct ones."""

    def __init__(self) -> None:
        self.seen: dict[Any, datetime] = {}

    def __call__(self, value: str | datetime) -> datetime:
        start = self.seen.get(value)
        if start is None:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
            start = _aware(parsed).astimezone(UTC)
            self.seen[value] = start
        return start


class SecondsBetween(Func):
    """``end - start`` in seconds as a float, natively (Django's SQLite duration arithmetic is
    a Python function per row). SQLite computes times in whole milliseconds, but julianday's
    double loses some 50 µs: rounding to the millisecond gives the exact difference back."""

    output_field = FloatField()

    def __init__(self, end: str, start: str) -> None:
        super().__init__(F(end), F(start))

    def as_sql(self, compiler, connection, **extra_context):
        return self._between(
            compiler, "CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS double precision)"
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return self._between(
            compiler, "round((julianday({end}) - julianday({start})) * 86400.0, 3)"
        )

    def _between(self, compiler, template: str) -> tuple[str, tuple[Any, ...]]:
        end, end_params = compiler.compile(self.source_expressions[0])
        start, start_params = compiler.compile(self.source_expressions[1])
        return template.format(end=end, start=start), (*end_params, *start_params)


@cache
def duration_bin() -> Case | Value:
    """The lower bound (seconds) of a session's DURATION_BINS bin: a binary search of CASEs,
    so each row computes its duration about four times rather than up to eight. Built once:
    querysets copy expressions when they resolve them."""
    seconds = SecondsBetween("updated_at", "started_at")

    def search(lowers: list[int]) -> Case | Value:
        if len(lowers) == 1:
            return Value(lowers[0])
        middle = len(lowers) // 2
        return Case(
            When(LessThan(seconds, lowers[middle]), then=search(lowers[:middle])),
            default=search(lowers[middle:]),
            output_field=IntegerField(),
        )

    return search([lower for _, lower in DURATION_BINS])


def usage_total(prefix: str = "") -> Coalesce:
    """A usage row's total: the reported total, else input + output (``prefix``: the path to
    the usage row, from a query over another model)."""
    return Coalesce(
        F(f"{prefix}total_tokens"),
        Coalesce(F(f"{prefix}input_tokens"), Value(0))
        + Coalesce(F(f"{prefix}output_tokens"), Value(0)),
    )


# --- public services --------------------------------------------------------------------------


def rollup_analytics(
    *,
    now: datetime,
    full: bool = False,
    dry_run: bool = False,
    batch_size: int = 2000,
    checkpoint: Checkpoint = _no_checkpoint,
) -> RollupResult:
    """Bring the rollups up to date: incrementally from the watermark, or a full rebuild on
    the first run, when asked (``full``), when the series changed meaning (SCHEMA), when purges
    left too many dirty hours, or when the last full rebuild is older than
    ROLLUP_FULL_REBUILD_EVERY."""
    _check_aware(now)
    state = read_state(name=STATE)
    dirty_state = read_state(name=DIRTY_STATE)
    watermark = _parse(state.get("watermark"))
    last_full = _parse(state.get("last_full_at"))
    every = conf.rollup_full_rebuild_every()
    if (
        full
        or watermark is None
        or state.get("schema") != SCHEMA
        or dirty_state.get("overflow")
        or (every is not None and (last_full is None or last_full <= now - every))
    ):
        return rebuild_rollups(now=now, dry_run=dry_run, checkpoint=checkpoint)

    since = watermark - conf.rollup_watermark_overlap()
    dirty = {d for d in (_parse(h) for h in dirty_state.get("hours", [])) if d is not None}
    # Session series only change in the hours the changed sessions started in, event series
    # only in the hours their events happened in; a purge may have changed either.
    start_hours, event_hours = set(dirty), set(dirty)
    changed = 0
    for ids in _changed_since(since, batch_size):
        changed += len(ids)
        starts, events = _hours_touched(ids)
        start_hours |= starts
        event_hours |= events
        checkpoint()
    hours = start_hours | event_hours
    days = sorted({_floor_day(h) for h in hours})
    written = 0
    if not dry_run:
        # Only the touched hours (runs of adjacent ones as one range), a batch at a time: read
        # from the index, then replaced in one short transaction.
        for touched, series in ((start_hours, SESSION_SERIES), (event_hours, EVENT_SERIES)):
            for ranges in _batches(sorted(touched), HOUR, CHUNK_HOURS):
                cells = _aggregate(ranges, "hour", series)
                written += _replace(RollupBucket.Granularity.HOUR, ranges, cells, series)
                checkpoint()
        for ranges in _batches(days, DAY, 62):
            written += _rewrite_days(ranges)
            checkpoint()
        write_state(name=STATE, value={**state, "watermark": now.isoformat()})
        _forget_dirty(dirty)
    return RollupResult(
        dry_run=dry_run,
        mode="incremental",
        changed_sessions=changed,
        hours_recomputed=len(hours),
        days_recomputed=len(days),
        buckets_written=written,
        watermark=(watermark if dry_run else now).isoformat(),
    )


def rebuild_rollups(
    *, now: datetime, dry_run: bool = False, checkpoint: Checkpoint = _no_checkpoint
) -> RollupResult:
    """Recompute every bucket from the whole index (the ``rebuild_rollups`` command).

    Aggregates each series once over all time, then replaces the stored buckets window by
    window in time order, so charts never see an empty table while it runs.
    """
    _check_aware(now)
    # Hours purges marked before this point are covered by this rebuild; later ones stay.
    dirty = {d for d in (_parse(h) for h in read_state(name=DIRTY_STATE).get("hours", [])) if d}
    hourly = _aggregate([(None, None)], "hour", SERIES)
    checkpoint()
    daily = _sum_days(hourly)
    written = 0
    hours = sorted({key[0] for key in hourly})
    days = sorted({key[0] for key in daily})
    if not dry_run:
        # Series no longer written (an earlier SCHEMA's): the windows below replace only ours.
        RollupBucket.objects.exclude(series__in=SERIES).delete()
        written += _replace_all(RollupBucket.Granularity.HOUR, hourly, hours, CHUNK_HOURS)
        checkpoint()
        written += _replace_all(RollupBucket.Granularity.DAY, daily, days, 62)
        write_state(
            name=STATE,
            value={"watermark": now.isoformat(), "last_full_at": now.isoformat(), "schema": SCHEMA},
        )
        _forget_dirty(dirty, overflow_too=True)
    return RollupResult(
        dry_run=dry_run,
        mode="full",
        changed_sessions=Session.objects.count(),
        hours_recomputed=len(hours),
        days_recomputed=len(days),
        buckets_written=written,
        watermark=now.isoformat(),
    )


def rolled_up_at() -> datetime | None:
    """When the last run brought the buckets up to date (its watermark): every hour before
    the watermark's hour is whole as of then. None when there are no buckets of this SCHEMA
    yet (readers then use the index)."""
    state = read_state(name=STATE)
    if state.get("schema") != SCHEMA:
        return None
    return _parse(state.get("watermark"))


def hours_touched_by(*, session_ids: Iterable[uuid.UUID]) -> set[datetime]:
    """Every hour bucket these sessions contribute to (start, tool calls, errors)."""
    starts, events = _hours_touched(list(session_ids))
    return starts | events


def mark_hours_dirty(*, hours: Iterable[datetime]) -> None:
    """Ask the next rollup run to recompute these hours (called when sessions are deleted:
    their buckets shrink without any session changing). Part of the caller's transaction."""
    new = {_floor_hour(h).isoformat() for h in hours}
    if not new:
        return

    def add(value: dict[str, Any]) -> dict[str, Any]:
        merged = set(value.get("hours", [])) | new
        if len(merged) > MAX_DIRTY_HOURS:
            return {"hours": [], "overflow": True}
        return {**value, "hours": sorted(merged)}

    update_state(name=DIRTY_STATE, change=add)


def _changed_since(since: datetime, batch_size: int) -> Iterable[list[uuid.UUID]]:
    """The ids of sessions received or expired after ``since``, in batches: each condition
    read as a range of its own index, in that index's order (an OR of the two, paged by id,
    walked the primary key over the whole table). A session both received and expired since
    comes once."""
    received = Session.objects.filter(last_received_at__gt=since)
    expired = Session.objects.filter(expired_at__gt=since, last_received_at__lte=since)
    for rows, column in ((received, "last_received_at"), (expired, "expired_at")):
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            page = rows
            if after is not None:
                # Keyset on (time, id), with a leading range the index seeks to.
                page = rows.filter(
                    Q(**{f"{column}__gte": after[0]})
                    & (Q(**{f"{column}__gt": after[0]}) | Q(id__gt=after[1]))
                )
            found = list(page.order_by(column, "id").values_list(column, "id")[:batch_size])
            if not found:
                break
            after = found[-1]
            yield [session_id for _, session_id in found]


def _hours_touched(ids: list[uuid.UUID]) -> tuple[set[datetime], set[datetime]]:
    """(hours these sessions started in, hours their tool calls and errors happened in)."""
    if not ids:
        return set(), set()
    parse = BucketParser()
    starts = _distinct_hours(Session.objects.filter(id__in=ids), "started_at", parse)
    events: set[datetime] = set()
    for model in (ToolCallRecord, SessionError):
        events |= _distinct_hours(model.objects.filter(session_id__in=ids), "occurred_at", parse)
    return starts, events


def _distinct_hours(rows: QuerySet, field: str, parse: BucketParser) -> set[datetime]:
    """The hours ``field`` of ``rows`` falls in, each once.

    Made distinct here, not with DISTINCT: asked for distinct hours, SQLite walks the whole
    time index of the table (every tool call, in time order) and checks each row against the
    sessions, where the rows of a batch of sessions are a few thousand reached through the
    session index."""
    buckets = rows.annotate(h=TimeBucket(field)).order_by().values_list("h", flat=True)
    return {parse(h) for h in buckets}


# --- aggregation ------------------------------------------------------------------------------


def aggregate_index(
    *,
    lo: datetime | None,
    hi: datetime | None,
    unit: Unit = "hour",
    series: Iterable[str] = SERIES,
) -> Cells:
    """The cells of ``series`` for [lo, hi) (None: unbounded), straight from the index and
    bucketed by ``unit``: with hours, exactly what the rollups hold for whole hours."""
    return _aggregate([(lo, hi)], unit, series)


Range = tuple[datetime | None, datetime | None]


def _aggregate(ranges: list[Range], unit: Unit, series: Iterable[str]) -> Cells:
    """The cells of ``series`` in the disjoint ``ranges``, range by range: one range reads
    its rows through the time indexes, an OR of ranges does not (SQLite then scans).

    Each query is compiled once, for a stand-in range, and run for every range with that
    range's bounds in its place: building a Django query costs more than running it over an
    hour's rows, and an incremental run may touch a hundred scattered hours."""
    wanted = set(series)
    cells: Cells = {}
    bucket = BucketParser()
    if len(ranges) == 1:
        lo, hi = ranges[0]
        for rows, handle in _series_queries(lo, hi, unit, wanted):
            for row in _whole_table(rows) if lo is None and hi is None else rows:
                handle(cells, bucket, row)
        return cells
    connection = connections[DEFAULT_DB_ALIAS]
    adapt = connection.ops.adapt_datetimefield_value
    stand_in = (_STAND_IN_LO, _STAND_IN_HI)
    compiled = []
    for rows, handle in _series_queries(*stand_in, unit, wanted):
        sql, params = rows.query.sql_with_params()
        compiled.append((sql, list(params), handle))
    marks = {adapt(_STAND_IN_LO): 0, adapt(_STAND_IN_HI): 1}
    with connection.cursor() as cursor:
        for lo, hi in ranges:
            bounds = (adapt(lo), adapt(hi))
            for sql, params, handle in compiled:
                cursor.execute(sql, [_bound(p, marks, bounds) for p in params])
                for row in cursor.fetchall():
                    handle(cells, bucket, row)
    return cells


def _whole_table(rows: QuerySet) -> Iterable[tuple[Any, ...]]:
    """The rows of an unbounded aggregate over sessions, read by one pass over the table.

    Without statistics SQLite walks an index (the status one, for a GROUP BY that names
    status) and fetches every row in that index's order: a random read per session over a
    table of gigabytes, twice as slow as reading it in order (B6: 9.1 s against 4.2 s at
    100,000 sessions). NOT INDEXED asks for the plain scan; other databases plan it
    themselves."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "sqlite" or rows.model is not Session:
        yield from rows
        return
    sql, params = rows.query.sql_with_params()
    if " JOIN " in sql:  # the usage join reads sessions from a covering index: keep it
        yield from rows
        return
    table = connection.ops.quote_name(Session._meta.db_table)
    sql = sql.replace(f"FROM {table} ", f"FROM {table} NOT INDEXED ", 1)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(2000):
            yield from batch


#: The stand-in bounds a query is compiled with before each range's own take their place.
_STAND_IN_LO = datetime(1971, 1, 1, 0, 0, 0, 111111, tzinfo=UTC)
_STAND_IN_HI = datetime(1971, 1, 1, 0, 0, 0, 222222, tzinfo=UTC)


def _bound(param: Any, marks: dict[Any, int], bounds: tuple[Any, Any]) -> Any:
    try:
        at = marks.get(param)
    except TypeError:  # an unhashable parameter is never a bound
        return param
    return param if at is None else bounds[at]


Handler = Callable[[Cells, BucketParser, tuple[Any, ...]], None]


def _series_queries(
    lo: datetime | None, hi: datetime | None, unit: Unit, wanted: set[str]
) -> list[tuple[QuerySet, Handler]]:
    """Few scans, as each reads every row in the range: one of the sessions for status, agent
    and user together, one for durations, one of model usage, and tool calls as all calls (an
    index-only scan when unbounded) plus the failed ones. Each query comes with what turns its
    rows into cells."""
    queries: list[tuple[QuerySet, Handler]] = []

    def within(field: str) -> Q:
        condition = Q()
        if lo is not None:
            condition &= Q(**{f"{field}__gte": lo})
        if hi is not None:
            condition &= Q(**{f"{field}__lt": hi})
        return condition

    sessions = Session.objects.filter(within("started_at")).annotate(
        b=TimeBucket("started_at", unit)
    )
    by_column = [
        (name, index, none)
        for index, (name, none) in enumerate(
            (
                ("sessions_by_status", ""),
                ("sessions_by_agent", NO_AGENT),
                ("sessions_by_user", NO_USER),
            )
        )
        if name in wanted
    ]
    if by_column:

        def by_session(cells: Cells, bucket: BucketParser, row: tuple[Any, ...]) -> None:
            b, *keys, has_errors, n, i, o, t = row
            start = bucket(b)
            for name, index, none in by_column:
                cell = Cell(n, n if has_errors else 0, i or 0, o or 0, t or 0)
                add_cell(cells, start, name, keys[index] or none, cell)

        queries.append(
            (
                sessions.order_by()
                .values_list("b", "status", "agent", "user", "has_errors")
                .annotate(
                    n=Count("id"),
                    i=Sum("input_tokens"),
                    o=Sum("output_tokens"),
                    t=Sum("total_tokens"),
                ),
                by_session,
            )
        )

    if "sessions_by_duration" in wanted:

        def by_duration(cells: Cells, bucket: BucketParser, row: tuple[Any, ...]) -> None:
            b, lower, n = row
            add_cell(cells, bucket(b), "sessions_by_duration", str(lower), Cell(n))

        queries.append(
            (
                sessions.annotate(k=duration_bin())
                .order_by()
                .values_list("b", "k")
                .annotate(n=Count("id")),
                by_duration,
            )
        )

    if "tokens_by_model" in wanted:

        def by_model(cells: Cells, bucket: BucketParser, row: tuple[Any, ...]) -> None:
            b, model, n, i, o, t, c = row
            if not n:  # the sessions without usage rows, which the outer join keeps
                return
            cell = Cell(n, 0, i or 0, o or 0, t or 0, float(c or 0))
            add_cell(cells, bucket(b), "tokens_by_model", model or UNATTRIBUTED, cell)

        # From the sessions, joined outward to their usage rows: the session side is then
        # read from the (started_at, id) index alone and the usage rows by their session
        # index. Joined the other way, every usage row fetched its session from the table,
        # a random read per row.
        queries.append(
            (
                sessions.order_by()
                .values_list("b", "model_usage__model")
                .annotate(
                    n=Count("model_usage__id"),
                    i=Sum("model_usage__input_tokens"),
                    o=Sum("model_usage__output_tokens"),
                    t=Sum(usage_total("model_usage__")),
                    c=Sum("model_usage__cached_input_tokens"),
                ),
                by_model,
            )
        )

    if "tool_calls_by_tool" in wanted:
        calls = ToolCallRecord.objects.filter(within("occurred_at")).annotate(
            b=TimeBucket("occurred_at", unit)
        )

        def all_calls(cells: Cells, bucket: BucketParser, row: tuple[Any, ...]) -> None:
            b, name, n = row
            add_cell(cells, bucket(b), "tool_calls_by_tool", name, Cell(n))

        def failed_calls(cells: Cells, bucket: BucketParser, row: tuple[Any, ...]) -> None:
            b, name, e, h = row
            add_cell(cells, bucket(b), "tool_calls_by_tool", name, Cell(0, e, value_sum=float(h)))

        queries.append(
            (calls.order_by().values_list("b", "name").annotate(n=Count("id")), all_calls)
        )
        queries.append(
            (
                calls.filter(status="error")
                .order_by()
                .values_list("b", "name")
                .annotate(e=Count("id"), h=Count("id", filter=Q(status_source="heuristic"))),
                failed_calls,
            )
        )

    if "errors_by_kind" in wanted:

        def by_kind(cells: Cells, bucket: BucketParser, row: tuple[Any, ...]) -> None:
            b, kind, n, e = row
            add_cell(cells, bucket(b), "errors_by_kind", kind, Cell(n, e))

        queries.append(
            (
                SessionError.objects.filter(within("occurred_at"))
                .annotate(b=TimeBucket("occurred_at", unit))
                .order_by()
                .values_list("b", "kind")
                .annotate(n=Count("id"), e=Count("id", filter=Q(heuristic=False))),
                by_kind,
            )
        )
    return queries


def _sum_days(hourly: Cells) -> Cells:
    daily: Cells = {}
    days: dict[datetime, datetime] = {}
    for (hour, series, key), cell in hourly.items():
        day = days.get(hour)
        if day is None:
            day = days[hour] = _floor_day(hour)
        slot = (day, series, key)
        if slot not in daily:
            daily[slot] = Cell()
        daily[slot].add(cell)
    return daily


# --- writes -----------------------------------------------------------------------------------


def _rewrite_days(ranges: list[Range]) -> int:
    """Sum the hours of these days (from the hour buckets) into their day buckets."""
    hourly: Cells = {}
    for lo, hi in ranges:  # range by range: the bucket key's index seeks each one
        for row in RollupBucket.objects.filter(
            granularity=RollupBucket.Granularity.HOUR,
            series__in=SERIES,
            bucket_start__gte=lo,
            bucket_start__lt=hi,
        ).values_list("bucket_start", "series", "key", *CELL_FIELDS):
            hourly[(row[0], row[1], row[2])] = Cell(*row[3:])
    return _replace(RollupBucket.Granularity.DAY, ranges, _sum_days(hourly))


#: Bounds for an open end of a range: before and after any bucket.
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _replace(
    granularity: str,
    ranges: list[Range],
    cells: Cells,
    series: Iterable[str] | None = None,
) -> int:
    """Replace every bucket of ``granularity`` (and of ``series``, default all) in ``ranges``
    (None: unbounded) with ``cells``, in one short transaction.

    The stale buckets go with one DELETE per (series, range), run as one ``executemany``:
    each is a seek of the bucket key's index, where one DELETE with an OR of the ranges read
    the whole table."""
    connection = connections[DEFAULT_DB_ALIAS]
    adapt = connection.ops.adapt_datetimefield_value
    table = connection.ops.quote_name(RollupBucket._meta.db_table)
    doomed = [
        (granularity, name, adapt(lo or _EARLIEST), adapt(hi or _LATEST))
        for name in (SERIES if series is None else series)
        for lo, hi in ranges
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            f"DELETE FROM {table} WHERE granularity = %s AND series = %s "
            "AND bucket_start >= %s AND bucket_start < %s",
            doomed,
        )
        return _insert(granularity, cells)


def _insert(granularity: str, cells: Cells) -> int:
    """INSERT the cells in batches with executemany: no model instance per row."""
    columns = ("granularity", "bucket_start", "series", "key", *CELL_FIELDS)
    rows = [
        (
            granularity,
            start,
            series,
            key,
            cell.count,
            cell.errors,
            cell.input_tokens,
            cell.output_tokens,
            cell.total_tokens,
            round(cell.value_sum, 6),
        )
        for (start, series, key), cell in cells.items()
    ]
    db.insert_rows(RollupBucket, columns, rows, batch_size=INSERT_BATCH)
    return len(rows)


def _replace_all(granularity: str, cells: Cells, starts: list[datetime], per_chunk: int) -> int:
    """Replace every bucket of ``granularity`` by ``cells``: windows in time order, the first
    open below and the last open above, so buckets outside the data disappear too."""
    if not starts:
        return _replace(granularity, [(None, None)], {})
    step = HOUR if granularity == RollupBucket.Granularity.HOUR else DAY
    by_start: dict[datetime, Cells] = defaultdict(dict)
    for slot, cell in cells.items():
        by_start[slot[0]][slot] = cell
    written = 0
    lower: datetime | None = None
    for index in range(0, len(starts), per_chunk):
        window = starts[index : index + per_chunk]
        last_window = index + per_chunk >= len(starts)
        upper = None if last_window else window[-1] + step
        chunk = {slot: cell for start in window for slot, cell in by_start[start].items()}
        written += _replace(granularity, [(lower, upper)], chunk)
        lower = upper
    return written


def _batches(
    starts: list[datetime], step: timedelta, per_batch: int
) -> list[list[tuple[datetime, datetime]]]:
    """Bucket starts as [lo, hi) ranges of adjacent buckets, in batches of at most
    ``per_batch`` buckets. Untouched buckets between touched ones are left alone: the work
    follows the change."""
    ranges: list[tuple[datetime, datetime]] = []
    for start in sorted(set(starts)):
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], start + step)
        else:
            ranges.append((start, start + step))
    batches: list[list[tuple[datetime, datetime]]] = []
    size = per_batch
    for lo, hi in ranges:
        while lo < hi:
            if size >= per_batch:
                batches.append([])
                size = 0
            end = min(hi, lo + (per_batch - size) * step)
            batches[-1].append((lo, end))
            size += round((end - lo) / step)
            lo = end
    return batches


# --- state ------------------------------------------------------------------------------------


def _forget_dirty(done: set[datetime], *, overflow_too: bool = False) -> None:
    """Drop the hours this run recomputed; hours marked meanwhile by a purge stay."""
    done_iso = {h.isoformat() for h in done}

    def drop(value: dict[str, Any]) -> dict[str, Any]:
        value["hours"] = sorted(set(value.get("hours", [])) - done_iso)
        if overflow_too:
            value.pop("overflow", None)
        return value

    update_state(name=DIRTY_STATE, change=drop)


# --- time helpers -----------------------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _floor_hour(value: datetime) -> datetime:
    return _aware(value).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _floor_day(value: datetime) -> datetime:
    return _floor_hour(value).replace(hour=0)


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return _aware(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def _check_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
