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
overlap for ingests that committed late), plus the hours marked dirty (RollupDirtyHour: purged
sessions' hours, and hours a session left when a new version moved it); days are summed from
their hours. The database does the aggregating (INSERT … SELECT … GROUP BY into a temporary
stage, :class:`_Stage`), and short transactions copy the stage over the stored buckets, so a
long rollup never holds the SQLite write lock for long and no bucket passes through Python.
Once a day (ROLLUP_FULL_REBUILD_EVERY) a run rebuilds everything, which also catches sessions
deleted some other way (the admin, a shell).

Readers (``analytics``) take whole hours before the watermark's hour from here and the rest
from the index with :func:`aggregate_index`, the same queries that fill the buckets.
"""

from __future__ import annotations

import itertools
import uuid
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
    RollupDirtyHour,
    Session,
    SessionError,
    ToolCallRecord,
)
from sessions_api.state import read_state, write_state

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
#: At most this many hours are rewritten per transaction.
CHUNK_HOURS = 24 * 7
#: Beyond this many dirty hours the next run rebuilds everything instead.
MAX_DIRTY_HOURS = 20_000
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
    the first run, when asked (``full``), when the series changed meaning (SCHEMA), when too
    many hours were marked dirty, or when the last full rebuild is older than
    ROLLUP_FULL_REBUILD_EVERY."""
    _check_aware(now)
    state = read_state(name=STATE)
    watermark = _parse(state.get("watermark"))
    last_full = _parse(state.get("last_full_at"))
    every = conf.rollup_full_rebuild_every()
    marks = _dirty_marks()
    dirty = set(marks.values())
    if (
        full
        or watermark is None
        or state.get("schema") != SCHEMA
        or len(dirty) > MAX_DIRTY_HOURS
        or (every is not None and (last_full is None or last_full <= now - every))
    ):
        return rebuild_rollups(now=now, dry_run=dry_run, checkpoint=checkpoint)

    since = watermark - conf.rollup_watermark_overlap()
    # Session series only change in the hours the changed sessions started in, event series
    # only in the hours their events happened in; a dirty hour (a session left it or was
    # deleted) may have changed either.
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
        # Only the touched hours (runs of adjacent ones as one range), a batch at a time:
        # aggregated in the database into the stage, then swapped in by one short transaction.
        with _Stage() as stage:
            for touched, series in ((start_hours, SESSION_SERIES), (event_hours, EVENT_SERIES)):
                for ranges in _batches(sorted(touched), HOUR, CHUNK_HOURS):
                    stage.clear()
                    stage.hours(ranges, series)
                    written += stage.swap(HOUR_BUCKETS, ranges, series)
                    checkpoint()
            for ranges in _batches(days, DAY, 62):
                stage.clear()
                stage.days_from_buckets(ranges)
                written += stage.swap(DAY_BUCKETS, ranges, SERIES)
                checkpoint()
        write_state(name=STATE, value={**state, "watermark": now.isoformat()})
        _forget_dirty(marks)
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

    The database aggregates: one INSERT … SELECT … GROUP BY per source table fills a
    temporary stage with every hour bucket, one more sums those hours into days, and the
    stage then replaces the stored buckets window by window in time order, a short
    transaction each, so charts never see an empty table and SQLite's write lock is held
    only for the copy. Memory stays flat: no bucket passes through Python.
    """
    _check_aware(now)
    # Hours marked before this point are covered by this rebuild; later ones stay.
    marks = _dirty_marks()
    earlier_schema = read_state(name=STATE).get("schema") != SCHEMA
    with _Stage() as stage:
        stage.clear()
        stage.hours([(None, None)], SERIES)
        checkpoint()
        stage.days_from_stage()
        checkpoint()
        hours, days = stage.starts(HOUR_BUCKETS), stage.starts(DAY_BUCKETS)
        written = 0
        if not dry_run:
            if earlier_schema:  # series no longer written: the swaps replace only ours
                RollupBucket.objects.exclude(series__in=SERIES).delete()
            written += stage.swap_all(HOUR_BUCKETS, hours, checkpoint)
            written += stage.swap_all(DAY_BUCKETS, days, checkpoint)
    if not dry_run:
        write_state(
            name=STATE,
            value={"watermark": now.isoformat(), "last_full_at": now.isoformat(), "schema": SCHEMA},
        )
        _forget_dirty(marks)
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
    """Ask the next rollup run to recompute these hours: sessions were deleted from them, or
    a new version moved a session out of them, so their buckets change without any session
    in them changing. Part of the caller's transaction; one INSERT, whatever is marked."""
    new = sorted({_floor_hour(h) for h in hours})
    if new:
        db.insert_rows(RollupDirtyHour, ("hour",), [(h,) for h in new])


def event_times_of(*, session_id: uuid.UUID) -> list[datetime]:
    """When this session's tool calls and errors happened, in one read through their session
    indexes (for :func:`note_session_moved`, before a new version replaces them)."""
    calls = ToolCallRecord.objects.filter(session_id=session_id).values_list("occurred_at")
    errors = SessionError.objects.filter(session_id=session_id).values_list("occurred_at")
    return [at for (at,) in calls.union(errors, all=True)]


def note_session_moved(*, before: Iterable[datetime], after: Iterable[datetime]) -> None:
    """A session changed from contributing at the times ``before`` (its start, its events)
    to ``after``: mark the hours it left, which the next incremental run would otherwise not
    know to recompute (it finds the hours changed sessions are in now). Nothing is written
    when the session stays in its hours, the usual case."""
    mark_hours_dirty(hours={_floor_hour(t) for t in before} - {_floor_hour(t) for t in after})


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


# --- writes: the database aggregates ----------------------------------------------------------

HOUR_BUCKETS = RollupBucket.Granularity.HOUR.value
DAY_BUCKETS = RollupBucket.Granularity.DAY.value
#: At most about this many buckets are copied in per transaction of a full rebuild.
SWAP_ROWS = 20_000
STAGE = "rollup_stage"
BUCKET_COLUMNS = ("granularity", "bucket_start", "series", "key", *CELL_FIELDS)
#: Bounds for an open end of a range: before and after any bucket.
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)
_STAGE_TYPES = {
    "sqlite": ("TEXT", "TEXT", "INTEGER", "REAL"),
    "postgresql": ("varchar(255)", "timestamp with time zone", "bigint", "double precision"),
}


class _Stage:
    """A temporary table of this connection's where buckets are aggregated before they
    replace the stored ones.

    It is filled by INSERT … SELECT … GROUP BY outside any transaction: on SQLite a write to
    a TEMP table takes no lock on the main database, so however long an aggregation runs,
    ingest keeps writing; PostgreSQL's readers never block writers anyway. The stored buckets
    are then replaced by short transactions that only copy rows (:meth:`swap`)."""

    def __enter__(self) -> _Stage:
        self.connection = connections[DEFAULT_DB_ALIAS]
        self.vendor = "sqlite" if self.connection.vendor == "sqlite" else "postgresql"
        self.adapt = self.connection.ops.adapt_datetimefield_value
        quote = self.connection.ops.quote_name
        self.buckets = quote(RollupBucket._meta.db_table)
        self.columns = ", ".join(quote(c) for c in BUCKET_COLUMNS)
        self.sums = ", ".join(f"SUM({quote(c)})" for c in CELL_FIELDS)
        text, time, integer, real = _STAGE_TYPES[self.vendor]
        numbers = [f"{quote(c)} {integer} NOT NULL" for c in CELL_FIELDS[:-1]]
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (granularity {text} NOT NULL, "
                f"bucket_start {time} NOT NULL, series {text} NOT NULL, {quote('key')} "
                f"{text} NOT NULL, {', '.join(numbers)}, value_sum {real} NOT NULL)"
            )
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {STAGE}_time ON {STAGE} (granularity, bucket_start)"
            )
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is None:  # after an error the connection may refuse statements: next run clears
            self.clear()

    def clear(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {STAGE}")

    def hours(self, ranges: list[Range], series: Iterable[str]) -> None:
        """Stage the hour buckets of ``series`` in the disjoint ``ranges`` (``[(None, None)]``:
        all time): each statement once per range, so every range is a seek of its time
        index. A bucket may be staged in parts (all tool calls, the failed ones): the swap
        sums them."""
        wanted = set(series)
        bounded = ranges != [(None, None)]
        with self.connection.cursor() as cursor:
            for names, sql, per_tool in _series_statements(self.vendor, bounded=bounded):
                if not wanted.intersection(names):
                    continue
                if per_tool:
                    tools = ToolCallRecord.objects.order_by().values_list("name").distinct()
                    cursor.executemany(sql, list(tools))
                elif bounded:
                    bounds = [(self.adapt(lo), self.adapt(hi)) for lo, hi in ranges]
                    cursor.executemany(sql, bounds)
                else:
                    cursor.execute(sql)

    def days_from_stage(self) -> None:
        """Sum the staged hours into staged days."""
        with self.connection.cursor() as cursor:
            cursor.execute(self._sum_days_sql(STAGE, ""))

    def days_from_buckets(self, ranges: list[tuple[datetime, datetime]]) -> None:
        """Stage the days in ``ranges`` as the sums of their stored hour buckets."""
        where = "AND bucket_start >= %s AND bucket_start < %s"
        with self.connection.cursor() as cursor:
            cursor.executemany(
                self._sum_days_sql(self.buckets, where),
                [(self.adapt(lo), self.adapt(hi)) for lo, hi in ranges],
            )

    def _sum_days_sql(self, table: str, where: str) -> str:
        day = _day_of("bucket_start", self.vendor)
        return (
            f"INSERT INTO {STAGE} ({self.columns}) SELECT '{DAY_BUCKETS}', {day}, series, "
            f"{_quote('key')}, {self.sums} FROM {table} WHERE granularity = '{HOUR_BUCKETS}' "
            f"AND series IN ({', '.join(repr(name) for name in SERIES)}) {where} "
            "GROUP BY 2, 3, 4"
        )

    def starts(self, granularity: str) -> list[tuple[Any, int]]:
        """The staged bucket starts of ``granularity`` in time order, each with its number of
        buckets, as the database returns them (fit to be bound back)."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT bucket_start, COUNT(*) FROM {STAGE} WHERE granularity = %s "
                "GROUP BY bucket_start ORDER BY bucket_start",
                [granularity],
            )
            return cursor.fetchall()

    def swap(self, granularity: str, ranges: list[tuple[datetime, datetime]], series) -> int:
        """In one transaction: the stored buckets of ``series`` in ``ranges`` replaced by the
        staged ones, which are exactly those (the stage was filled for them). One DELETE per
        (series, range), each a seek of the bucket key's index (an OR of the ranges read the
        whole table), then one INSERT of the whole stage: a statement per range was a round
        trip each on PostgreSQL."""
        doomed = [
            (granularity, name, self.adapt(lo), self.adapt(hi))
            for name in series
            for lo, hi in ranges
        ]
        return self._replace(doomed, "WHERE granularity = %s", [granularity])

    def swap_all(
        self, granularity: str, starts: list[tuple[Any, int]], checkpoint: Checkpoint
    ) -> int:
        """Every stored bucket of ``granularity`` replaced by the staged ones: windows of
        about SWAP_ROWS buckets in time order, the first open below and the last open above
        (so buckets outside the data go too), a transaction each."""
        windows: list[Any] = []  # the start of each window after the first
        size = 0
        for start, count in starts:
            if size and size + count > SWAP_ROWS:
                windows.append(start)
                size = 0
            size += count
        edges = [self.adapt(_EARLIEST), *windows, self.adapt(_LATEST)]
        written = 0
        for lo, hi in itertools.pairwise(edges):
            written += self._replace(
                [(granularity, name, lo, hi) for name in SERIES],
                "WHERE granularity = %s AND bucket_start >= %s AND bucket_start < %s",
                [granularity, lo, hi],
            )
            checkpoint()
        return written

    def _replace(
        self, doomed: list[tuple[str, str, Any, Any]], staged: str, params: list[Any]
    ) -> int:
        """Delete the stored buckets in ``doomed`` (granularity, series, lo, hi) and insert
        the staged ones ``staged`` selects, their parts summed; returns the rows inserted."""
        key = _quote("key")
        with transaction.atomic(), self.connection.cursor() as cursor:
            cursor.executemany(
                f"DELETE FROM {self.buckets} WHERE granularity = %s AND series = %s "
                "AND bucket_start >= %s AND bucket_start < %s",
                doomed,
            )
            cursor.execute(
                f"INSERT INTO {self.buckets} ({self.columns}) SELECT granularity, bucket_start, "
                f"series, {key}, {self.sums} FROM {STAGE} {staged} "
                f"GROUP BY granularity, bucket_start, series, {key}",
                params,
            )
            return max(cursor.rowcount, 0)


def _quote(column: str) -> str:
    """A column name quoted as both SQLite and PostgreSQL read it ("key" and "user" are
    reserved words)."""
    return f'"{column}"'


def _hour_key(column: str, vendor: str) -> str:
    """What to group ``column`` by for its UTC hour: on SQLite the prefix of the text Django
    stores ('YYYY-MM-DD HH'), on PostgreSQL date_trunc (the connection's time zone is UTC).
    Grouped rows become bucket starts with :func:`_hour_start`, once per group: building the
    whole text per row cost SQLite half again on a million tool calls."""
    if vendor == "sqlite":
        return f"substr({column}, 1, 13)"
    return f"date_trunc('hour', {column})"


def _hour_start(key: str, vendor: str) -> str:
    """An hour key as the bucket start the column type stores ('YYYY-MM-DD HH:00:00')."""
    return f"{key} || ':00:00'" if vendor == "sqlite" else key


def _day_of(column: str, vendor: str) -> str:
    if vendor == "sqlite":
        return f"substr({column}, 1, 10) || ' 00:00:00'"
    return f"date_trunc('day', {column})"


def _duration_bin_sql(vendor: str) -> str:
    """The lower bound of a session's DURATION_BINS bin as text, by a binary search of CASEs
    (so each row computes its duration about four times rather than up to eight); the same
    seconds as :class:`SecondsBetween`."""
    if vendor == "sqlite":
        seconds = "round((julianday(updated_at) - julianday(started_at)) * 86400.0, 3)"
    else:
        seconds = "CAST(EXTRACT(EPOCH FROM (updated_at - started_at)) AS double precision)"

    def search(lowers: list[int]) -> str:
        if len(lowers) == 1:
            return f"'{lowers[0]}'"
        middle = len(lowers) // 2
        return (
            f"CASE WHEN {seconds} < {lowers[middle]} THEN {search(lowers[:middle])} "
            f"ELSE {search(lowers[middle:])} END"
        )

    return search([lower for _, lower in DURATION_BINS])


@cache
def _series_statements(vendor: str, *, bounded: bool) -> list[tuple[tuple[str, ...], str, bool]]:
    """(the series it fills, INSERT INTO the stage … SELECT … GROUP BY, whether it runs once
    per tool name) for every series: one scan of the sessions for the four session series (a
    grouped CTE the four read), one of model usage from the sessions outward, two of tool
    calls (all calls, index-only when unbounded; the failed ones through the status index),
    one of errors. Bounded statements bind a range (lo, hi); per tool, a tool name."""
    from sessions_api.domain import StatusSource, ToolStatus
    from sessions_api.models import ModelUsage

    def table(model: type) -> str:
        return f'"{model._meta.db_table}"'

    def within(column: str) -> str:
        return f"{column} >= %s AND {column} < %s" if bounded else "1 = 1"

    # All of a tool's calls are read from its run of the (name, occurred_at) index, one tool
    # at a time: SQLite sorts each tool's calls apart rather than all calls at once, a third
    # faster over a million calls. PostgreSQL hashes the groups in one pass instead.
    per_tool = vendor == "sqlite" and not bounded
    into = f"INSERT INTO {STAGE} ({', '.join(map(_quote, BUCKET_COLUMNS))})"
    hour = HOUR_BUCKETS
    # Read in table order when unbounded: otherwise SQLite without statistics walks an index
    # and fetches every session in that index's order, a random read per session.
    not_indexed = " NOT INDEXED" if vendor == "sqlite" and not bounded else ""
    # Over all time, usage rows in table order and each session's start by its primary key
    # (SQLite keeps a CROSS JOIN's order as written): at 1M sessions 5.6 s of CPU against
    # 8.8 s the other way round. Usage rows are written with their session, so the lookups
    # mostly follow the table. Over a range, the sessions in it first, then their usage.
    join = "CROSS JOIN" if vendor == "sqlite" else "JOIN"
    pair = ("s", "u") if bounded else ("u", "s")
    joined = {"s": f"{table(Session)} s", "u": f"{table(ModelUsage)} u"}

    def named(column: str, none: str) -> str:
        return f"substr(COALESCE(NULLIF({column}, ''), '{none}'), 1, 255)"

    user = '"user"'  # a reserved word in PostgreSQL

    def per_key(series: str, key: str, numbers: str) -> str:
        return (
            f"SELECT '{hour}', {_hour_start('b', vendor)}, '{series}', {key}, {numbers} "
            f"FROM g GROUP BY b, {key}"
        )

    sums = "SUM(n), SUM(e), COALESCE(SUM(i), 0), COALESCE(SUM(o), 0), COALESCE(SUM(t), 0), 0"
    sessions = (
        f"WITH g AS (SELECT {_hour_key('started_at', vendor)} AS b, status AS st, "
        f"{named('agent', NO_AGENT)} AS ag, {named(user, NO_USER)} AS us, "
        f"{_duration_bin_sql(vendor)} AS du, COUNT(*) AS n, "
        "SUM(CASE WHEN has_errors THEN 1 ELSE 0 END) AS e, SUM(input_tokens) AS i, "
        "SUM(output_tokens) AS o, SUM(total_tokens) AS t "
        f"FROM {table(Session)}{not_indexed} WHERE {within('started_at')} "
        f"GROUP BY 1, 2, 3, 4, 5) {into} "
        + " UNION ALL ".join(
            (
                per_key("sessions_by_status", "st", sums),
                per_key("sessions_by_agent", "ag", sums),
                per_key("sessions_by_user", "us", sums),
                per_key("sessions_by_duration", "du", "SUM(n), 0, 0, 0, 0, 0"),
            )
        )
    )
    started = _hour_key("s.started_at", vendor)
    usage = (
        f"{into} SELECT '{hour}', {_hour_start(started, vendor)}, 'tokens_by_model', "
        f"{named('u.model', UNATTRIBUTED)}, COUNT(*), 0, COALESCE(SUM(u.input_tokens), 0), "
        "COALESCE(SUM(u.output_tokens), 0), COALESCE(SUM(COALESCE(u.total_tokens, "
        "COALESCE(u.input_tokens, 0) + COALESCE(u.output_tokens, 0))), 0), "
        "COALESCE(SUM(u.cached_input_tokens), 0) "
        f"FROM {joined[pair[0]]} {join} {joined[pair[1]]} ON s.id = u.session_id "
        f"WHERE {within('s.started_at')} GROUP BY {started}, 4"
    )
    occurred = _hour_key("occurred_at", vendor)
    tool = "AND name = %s" if per_tool else ""
    all_calls = (
        f"{into} SELECT '{hour}', {_hour_start(occurred, vendor)}, 'tool_calls_by_tool', "
        f"substr(name, 1, 255), COUNT(*), 0, 0, 0, 0, 0 FROM {table(ToolCallRecord)} "
        f"WHERE {within('occurred_at')} {tool} GROUP BY {occurred}, 4"
    )
    failed_calls = (
        f"{into} SELECT '{hour}', {_hour_start(occurred, vendor)}, 'tool_calls_by_tool', "
        "substr(name, 1, 255), 0, COUNT(*), 0, 0, 0, "
        f"SUM(CASE WHEN status_source = '{StatusSource.HEURISTIC.value}' THEN 1 ELSE 0 END) "
        f"FROM {table(ToolCallRecord)} WHERE status = '{ToolStatus.ERROR.value}' "
        f"AND {within('occurred_at')} GROUP BY {occurred}, 4"
    )
    errors = (
        f"{into} SELECT '{hour}', {_hour_start(occurred, vendor)}, 'errors_by_kind', "
        "substr(kind, 1, 255), COUNT(*), SUM(CASE WHEN heuristic THEN 0 ELSE 1 END), "
        f"0, 0, 0, 0 FROM {table(SessionError)} WHERE {within('occurred_at')} "
        f"GROUP BY {occurred}, 4"
    )
    return [
        (SESSION_SERIES[:4], sessions, False),
        (("tokens_by_model",), usage, False),
        (("tool_calls_by_tool",), all_calls, per_tool),
        (("tool_calls_by_tool",), failed_calls, False),
        (("errors_by_kind",), errors, False),
    ]


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


def _dirty_marks() -> dict[int, datetime]:
    """The dirty hours marked so far, by the id of their mark."""
    return {
        mark: _floor_hour(hour) for mark, hour in RollupDirtyHour.objects.values_list("id", "hour")
    }


def _forget_dirty(marks: dict[int, datetime]) -> None:
    """Drop the marks this run read and so recomputed; hours marked meanwhile stay."""
    ids = sorted(marks)
    for start in range(0, len(ids), 500):
        RollupDirtyHour.objects.filter(id__in=ids[start : start + 500]).delete()


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
