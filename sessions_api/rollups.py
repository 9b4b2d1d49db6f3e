"""Analytics rollups: hourly and daily RollupBucket rows that the dashboard charts read.

Series (RollupBucket.series -> key, what the numbers mean):

- ``sessions_by_status`` -> status, bucketed by session start: count = sessions, errors =
  sessions with errors, tokens = their token totals.
- ``tokens_by_model`` -> model (``(unattributed)`` for session totals a document does not
  split by model), bucketed by session start: count = sessions using it, tokens, value_sum =
  estimated cost in USD at the ModelPrice in effect on the bucket's date (0 when unknown).
- ``tool_calls_by_tool`` -> tool name, bucketed by the call's time: count = calls, errors =
  failed calls.
- ``errors_by_kind`` -> kind (tool_error, message_error, log_error, log_warning), by time:
  count = entries, errors = entries that are not heuristic verdicts.
- ``duration_by_agent`` -> agent (``(none)`` when unnamed), by session start: count =
  sessions, value_sum = seconds between start and last update.

Buckets are always rewritten whole from the sessions in the index, so running twice gives the
same rows (idempotent) and a full rebuild equals the sum of incremental runs. An incremental run
recomputes only the hours touched by sessions received or expired since the watermark (minus an
overlap for ingests that committed late), plus hours that purges marked dirty; days are summed
from their hours. Every chunk commits on its own (RELIABILITY F6: a long rollup never holds the
SQLite write lock for long). Once a day (ROLLUP_FULL_REBUILD_EVERY) a run rebuilds everything,
which also catches sessions deleted outside the purge job.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import TruncHour

from sessions_api import policy
from sessions_api.models import (
    JobState,
    ModelPrice,
    ModelUsage,
    RollupBucket,
    Session,
    SessionError,
    ToolCallRecord,
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SERIES = (
    "sessions_by_status",
    "tokens_by_model",
    "tool_calls_by_tool",
    "errors_by_kind",
    "duration_by_agent",
)
STATE = "rollup_analytics"
DIRTY_STATE = "rollup_analytics:dirty"
#: At most this many hours are rewritten per transaction.
CHUNK_HOURS = 24 * 7
#: Touched hours this close together are rewritten as one range.
MERGE_GAP = timedelta(hours=24)
#: Beyond this many dirty hours the next run rebuilds everything instead.
MAX_DIRTY_HOURS = 20_000
UNATTRIBUTED = "(unattributed)"
NO_AGENT = "(none)"

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


@dataclass
class _Cell:
    count: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    value_sum: float = 0.0

    def add(self, other: _Cell) -> None:
        self.count += other.count
        self.errors += other.errors
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.total_tokens += other.total_tokens
        self.value_sum += other.value_sum


# (bucket_start, series, key) -> values
Cells = dict[tuple[datetime, str, str], _Cell]


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
    the first run, when asked (``full``), when purges left too many dirty hours, or when the
    last full rebuild is older than ROLLUP_FULL_REBUILD_EVERY."""
    _check_aware(now)
    state = _state(STATE)
    dirty_state = _state(DIRTY_STATE)
    watermark = _parse(state.get("watermark"))
    last_full = _parse(state.get("last_full_at"))
    every = policy.rollup_full_rebuild_every()
    if (
        full
        or watermark is None
        or dirty_state.get("overflow")
        or (every is not None and (last_full is None or last_full <= now - every))
    ):
        return rebuild_rollups(now=now, dry_run=dry_run, checkpoint=checkpoint)

    since = watermark - policy.rollup_watermark_overlap()
    dirty = {d for d in (_parse(h) for h in dirty_state.get("hours", [])) if d is not None}
    hours = set(dirty)
    changed = 0
    last: uuid.UUID | None = None
    candidates = Session.objects.filter(Q(last_received_at__gt=since) | Q(expired_at__gt=since))
    while True:
        page = candidates.filter(id__gt=last) if last is not None else candidates
        ids = list(page.order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            break
        last = ids[-1]
        changed += len(ids)
        hours |= hours_touched_by(session_ids=ids)
        checkpoint()
    days = sorted({_floor_day(h) for h in hours})
    written = 0
    if not dry_run:
        prices = _PriceBook.load()
        for lo, hi in _ranges(sorted(hours), HOUR, CHUNK_HOURS, max_gap=MERGE_GAP):
            written += _rewrite_hours(lo, hi, prices)
            checkpoint()
        for lo, hi in _ranges(days, DAY, 62):
            written += _rewrite_days(lo, hi)
            checkpoint()
        _save_state(STATE, {**state, "watermark": now.isoformat()})
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
    dirty = {d for d in (_parse(h) for h in _state(DIRTY_STATE).get("hours", [])) if d}
    hourly = _aggregate(None, None, _PriceBook.load())
    daily = _sum_days(hourly)
    written = 0
    hours = sorted({key[0] for key in hourly})
    days = sorted({key[0] for key in daily})
    if not dry_run:
        written += _replace_all(RollupBucket.Granularity.HOUR, hourly, hours, CHUNK_HOURS)
        checkpoint()
        written += _replace_all(RollupBucket.Granularity.DAY, daily, days, 62)
        _save_state(STATE, {"watermark": now.isoformat(), "last_full_at": now.isoformat()})
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


def hours_touched_by(*, session_ids: Iterable[uuid.UUID]) -> set[datetime]:
    """Every hour bucket these sessions contribute to (start, tool calls, errors)."""
    ids = list(session_ids)
    if not ids:
        return set()
    hours = {
        _floor_hour(started)
        for started in Session.objects.filter(id__in=ids).values_list("started_at", flat=True)
    }
    for model in (ToolCallRecord, SessionError):
        hours.update(
            _aware(h)
            for h in model.objects.filter(session_id__in=ids)
            .annotate(h=TruncHour("occurred_at", tzinfo=UTC))
            .order_by()
            .values_list("h", flat=True)
            .distinct()
        )
    return hours


def mark_hours_dirty(*, hours: Iterable[datetime]) -> None:
    """Ask the next rollup run to recompute these hours (called when sessions are deleted:
    their buckets shrink without any session changing). Part of the caller's transaction."""
    new = {_floor_hour(h).isoformat() for h in hours}
    if not new:
        return
    with transaction.atomic():
        row = _locked_state_row(DIRTY_STATE)
        value = dict(row.value or {})
        merged = set(value.get("hours", [])) | new
        if len(merged) > MAX_DIRTY_HOURS:
            value = {"hours": [], "overflow": True}
        else:
            value["hours"] = sorted(merged)
        row.value = value
        row.save(update_fields=["value", "updated_at"])


# --- aggregation ------------------------------------------------------------------------------


def _aggregate(lo: datetime | None, hi: datetime | None, prices: _PriceBook) -> Cells:
    """Hourly cells of every series for hours in [lo, hi) (None: unbounded)."""
    cells: Cells = {}

    def within(field: str) -> Q:
        condition = Q()
        if lo is not None:
            condition &= Q(**{f"{field}__gte": lo})
        if hi is not None:
            condition &= Q(**{f"{field}__lt": hi})
        return condition

    def put(hour: datetime, series: str, key: str, cell: _Cell) -> None:
        slot = (_aware(hour), series, key)
        if slot in cells:
            cells[slot].add(cell)
        else:
            cells[slot] = cell

    bucket = TruncHour("started_at", tzinfo=UTC)
    for row in (
        Session.objects.filter(within("started_at"))
        .annotate(b=bucket)
        .order_by()
        .values("b", "status")
        .annotate(
            n=Count("id"),
            e=Count("id", filter=Q(has_errors=True)),
            i=Sum("input_tokens"),
            o=Sum("output_tokens"),
            t=Sum("total_tokens"),
        )
    ):
        put(
            row["b"],
            "sessions_by_status",
            row["status"],
            _Cell(row["n"], row["e"], row["i"] or 0, row["o"] or 0, row["t"] or 0),
        )

    for row in (
        ModelUsage.objects.filter(within("session__started_at"))
        .annotate(b=TruncHour("session__started_at", tzinfo=UTC))
        .order_by()
        .values("b", "model")
        .annotate(
            n=Count("id"),
            i=Sum("input_tokens"),
            o=Sum("output_tokens"),
            t=Sum("total_tokens"),
            c=Sum("cached_input_tokens"),
        )
    ):
        hour = _aware(row["b"])
        cost = prices.cost(
            row["model"],
            hour.date(),
            input_tokens=row["i"] or 0,
            output_tokens=row["o"] or 0,
            cached_input_tokens=row["c"] or 0,
        )
        put(
            hour,
            "tokens_by_model",
            row["model"] or UNATTRIBUTED,
            _Cell(row["n"], 0, row["i"] or 0, row["o"] or 0, row["t"] or 0, cost),
        )

    for row in (
        ToolCallRecord.objects.filter(within("occurred_at"))
        .annotate(b=TruncHour("occurred_at", tzinfo=UTC))
        .order_by()
        .values("b", "name")
        .annotate(n=Count("id"), e=Count("id", filter=Q(status="error")))
    ):
        put(row["b"], "tool_calls_by_tool", row["name"], _Cell(row["n"], row["e"]))

    for row in (
        SessionError.objects.filter(within("occurred_at"))
        .annotate(b=TruncHour("occurred_at", tzinfo=UTC))
        .order_by()
        .values("b", "kind")
        .annotate(n=Count("id"), e=Count("id", filter=Q(heuristic=False)))
    ):
        put(row["b"], "errors_by_kind", row["kind"], _Cell(row["n"], row["e"]))

    duration = ExpressionWrapper(F("updated_at") - F("started_at"), output_field=DurationField())
    for row in (
        Session.objects.filter(within("started_at"))
        .annotate(b=bucket)
        .order_by()
        .values("b", "agent")
        .annotate(n=Count("id"), d=Sum(duration))
    ):
        seconds = row["d"].total_seconds() if row["d"] is not None else 0.0
        put(
            row["b"],
            "duration_by_agent",
            row["agent"] or NO_AGENT,
            _Cell(row["n"], value_sum=seconds),
        )
    return cells


def _sum_days(hourly: Cells) -> Cells:
    daily: Cells = {}
    for (hour, series, key), cell in hourly.items():
        slot = (_floor_day(hour), series, key)
        if slot not in daily:
            daily[slot] = _Cell()
        daily[slot].add(cell)
    return daily


def _rows(granularity: str, cells: Cells) -> list[RollupBucket]:
    return [
        RollupBucket(
            granularity=granularity,
            bucket_start=start,
            series=series,
            key=key[:255],
            count=cell.count,
            errors=cell.errors,
            input_tokens=cell.input_tokens,
            output_tokens=cell.output_tokens,
            total_tokens=cell.total_tokens,
            value_sum=round(cell.value_sum, 6),
        )
        for (start, series, key), cell in sorted(cells.items(), key=lambda kv: kv[0])
    ]


def _rewrite_hours(lo: datetime, hi: datetime, prices: _PriceBook) -> int:
    cells = _aggregate(lo, hi, prices)
    return _replace(RollupBucket.Granularity.HOUR, lo, hi, cells)


def _rewrite_days(lo: datetime, hi: datetime) -> int:
    hourly: Cells = {}
    for row in RollupBucket.objects.filter(
        granularity=RollupBucket.Granularity.HOUR, bucket_start__gte=lo, bucket_start__lt=hi
    ).values_list(
        "bucket_start",
        "series",
        "key",
        "count",
        "errors",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "value_sum",
    ):
        hourly[(_aware(row[0]), row[1], row[2])] = _Cell(*row[3:])
    return _replace(RollupBucket.Granularity.DAY, lo, hi, _sum_days(hourly))


def _replace(granularity: str, lo: datetime | None, hi: datetime | None, cells: Cells) -> int:
    """Replace every bucket of ``granularity`` in [lo, hi) with ``cells``, in one transaction."""
    with transaction.atomic():
        stale = RollupBucket.objects.filter(granularity=granularity)
        if lo is not None:
            stale = stale.filter(bucket_start__gte=lo)
        if hi is not None:
            stale = stale.filter(bucket_start__lt=hi)
        stale.delete()
        rows = _rows(granularity, cells)
        RollupBucket.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def _replace_all(granularity: str, cells: Cells, starts: list[datetime], per_chunk: int) -> int:
    """Replace every bucket of ``granularity`` by ``cells``: windows in time order, the first
    open below and the last open above, so buckets outside the data disappear too."""
    if not starts:
        return _replace(granularity, None, None, {})
    step = HOUR if granularity == RollupBucket.Granularity.HOUR else DAY
    written = 0
    lower: datetime | None = None
    for index in range(0, len(starts), per_chunk):
        window = starts[index : index + per_chunk]
        last_window = index + per_chunk >= len(starts)
        upper = None if last_window else window[-1] + step
        chunk = {
            slot: cell
            for slot, cell in cells.items()
            if (lower is None or slot[0] >= lower) and (upper is None or slot[0] < upper)
        }
        written += _replace(granularity, lower, upper, chunk)
        lower = upper
    return written


def _ranges(
    starts: list[datetime], step: timedelta, per_chunk: int, max_gap: timedelta | None = None
) -> list[tuple[datetime, datetime]]:
    """Bucket starts as [lo, hi) ranges of at most ``per_chunk`` buckets each. Starts closer
    than ``max_gap`` share a range: rewriting the untouched buckets between them gives the
    same rows again, and one range query is far cheaper than many (each scans its tables)."""
    gap = max_gap if max_gap is not None else timedelta(0)
    ranges: list[tuple[datetime, datetime]] = []
    for start in sorted(set(starts)):
        if ranges:
            lo, hi = ranges[-1]
            if start < hi:
                continue
            if start - hi <= gap and (start + step - lo) / step <= per_chunk:
                ranges[-1] = (lo, start + step)
                continue
        ranges.append((start, start + step))
    return ranges


# --- prices -----------------------------------------------------------------------------------


class _PriceBook:
    """ModelPrice rows in memory (a small table): the price in effect on a date."""

    def __init__(self, rows: dict[str, list[tuple[date, Decimal, Decimal, Decimal | None]]]):
        self.rows = rows

    @classmethod
    def load(cls) -> _PriceBook:
        rows: dict[str, list[tuple[date, Decimal, Decimal, Decimal | None]]] = defaultdict(list)
        for price in ModelPrice.objects.order_by("model", "-effective_from"):
            rows[price.model].append(
                (
                    price.effective_from,
                    price.input_per_mtok,
                    price.output_per_mtok,
                    price.cached_input_per_mtok,
                )
            )
        return cls(dict(rows))

    def cost(
        self,
        model: str,
        on: date,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int,
    ) -> float:
        """Estimated USD; 0 when the model has no price in effect on that date. Cached input
        tokens are counted inside input tokens (OpenAI's convention) and priced at the cached
        rate when one is set."""
        for effective_from, per_in, per_out, per_cached in self.rows.get(model, ()):
            if effective_from <= on:
                cached = min(cached_input_tokens, input_tokens) if per_cached is not None else 0
                total = (
                    Decimal(input_tokens - cached) * per_in
                    + Decimal(cached) * (per_cached or Decimal(0))
                    + Decimal(output_tokens) * per_out
                )
                return float(total / Decimal(1_000_000))
        return 0.0


# --- state ------------------------------------------------------------------------------------


def _state(name: str) -> dict[str, Any]:
    value = JobState.objects.filter(name=name).values_list("value", flat=True).first()
    return dict(value or {})


def _locked_state_row(name: str) -> JobState:
    row = JobState.objects.select_for_update().filter(name=name).first()
    if row is None:
        try:
            with transaction.atomic():
                row = JobState.objects.create(name=name, value={})
        except IntegrityError:
            row = JobState.objects.select_for_update().get(name=name)
    return row


def _save_state(name: str, value: dict[str, Any]) -> None:
    with transaction.atomic():
        row = _locked_state_row(name)
        row.value = value
        row.save(update_fields=["value", "updated_at"])


def _forget_dirty(done: set[datetime], *, overflow_too: bool = False) -> None:
    """Drop the hours this run recomputed; hours marked meanwhile by a purge stay."""
    with transaction.atomic():
        row = _locked_state_row(DIRTY_STATE)
        value = dict(row.value or {})
        done_iso = {h.isoformat() for h in done}
        value["hours"] = sorted(set(value.get("hours", [])) - done_iso)
        if overflow_too:
            value.pop("overflow", None)
        row.value = value
        row.save(update_fields=["value", "updated_at"])


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
