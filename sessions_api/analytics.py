"""Aggregates for the dashboard: typed, bounded by a time range, portable across databases.

Every function takes keyword-only ``since``/``until`` (timezone-aware) and returns frozen
dataclasses, never ORM rows. Queries use Django's portable functions (``TruncHour``,
``TruncDay`` ...) so SQLite and PostgreSQL share them. The signatures are the contract: a later
change may answer them from pre-aggregated ``RollupBucket`` rows instead of the index.

What is bucketed on which time (and why the chart click-throughs agree with it):

- sessions and tokens: the session's ``updated_at`` (its last activity), the column the
  session list filters ``since``/``until`` on;
- tool calls and errors: when they happened (``occurred_at``).

Costs are estimates: tokens per model (``ModelUsage``) times the ``ModelPrice`` effective on
the day the session started. Tokens the document does not attribute to one model, and models
without a price, stay unpriced and are reported as such rather than guessed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import (
    Coalesce,
    TruncDate,
    TruncDay,
    TruncHour,
    TruncMinute,
)

from sessions_api.models import ModelPrice, ModelUsage, Session, SessionError, ToolCallRecord

Granularity = Literal["minute", "hour", "day"]
_TRUNC = {"minute": TruncMinute, "hour": TruncHour, "day": TruncDay}
_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
MILLION = Decimal(1_000_000)
UNATTRIBUTED = "(unattributed)"
FAILED_STATUSES = ("aborted", "error")
ERROR_KINDS = ("tool_error", "message_error", "log_error")
WARNING_KINDS = ("log_warning",)


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


def _sessions_in(since: datetime, until: datetime) -> QuerySet[Session]:
    return Session.objects.filter(updated_at__gte=since, updated_at__lt=until)


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


def overview_kpis(
    *, since: datetime, until: datetime, costs: list[ModelCost] | None = None
) -> Kpis:
    """Headline numbers over the sessions active in [since, until). Pass ``costs`` (from
    :func:`cost_by_model` for the same range) to avoid computing them twice."""
    totals = _sessions_in(since, until).aggregate(
        sessions=Count("id"),
        running=Count("id", filter=Q(status="running")),
        completed=Count("id", filter=Q(status="completed")),
        failed=Count("id", filter=Q(status__in=FAILED_STATUSES)),
        with_errors=Count("id", filter=Q(has_errors=True)),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        total_tokens=Sum("total_tokens"),
        tool_calls=Sum("tool_call_count"),
        tool_errors=Sum("tool_error_count"),
    )
    if costs is None:
        costs = cost_by_model(since=since, until=until)
    return Kpis(
        sessions=totals["sessions"] or 0,
        running=totals["running"] or 0,
        completed=totals["completed"] or 0,
        failed=totals["failed"] or 0,
        with_errors=totals["with_errors"] or 0,
        input_tokens=totals["input_tokens"] or 0,
        output_tokens=totals["output_tokens"] or 0,
        total_tokens=totals["total_tokens"] or 0,
        tool_calls=totals["tool_calls"] or 0,
        tool_errors=totals["tool_errors"] or 0,
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
    """Sessions per bucket of last activity, split by status."""
    rows = (
        _sessions_in(since, until)
        .annotate(bucket=_TRUNC[granularity]("updated_at"))
        .values("bucket", "status")
        .annotate(n=Count("id"))
        .order_by("bucket", "status")
    )
    return [SeriesPoint(bucket=r["bucket"], key=r["status"], count=r["n"]) for r in rows]


def _usage_total():
    """A usage row's total: the reported total, else input + output."""
    return Coalesce(
        F("total_tokens"),
        Coalesce(F("input_tokens"), Value(0)) + Coalesce(F("output_tokens"), Value(0)),
    )


def tokens_by_model(
    *, since: datetime, until: datetime, granularity: Granularity
) -> list[TokenPoint]:
    """Tokens per bucket of session activity, split by model (stackable)."""
    rows = (
        ModelUsage.objects.filter(session__updated_at__gte=since, session__updated_at__lt=until)
        .annotate(bucket=_TRUNC[granularity]("session__updated_at"))
        .values("bucket", "model")
        .annotate(
            input=Sum("input_tokens"),
            output=Sum("output_tokens"),
            total=Sum(_usage_total()),
        )
        .order_by("bucket", "model")
    )
    return [
        TokenPoint(
            bucket=r["bucket"],
            model=r["model"] or UNATTRIBUTED,
            input_tokens=r["input"] or 0,
            output_tokens=r["output"] or 0,
            total_tokens=r["total"] or 0,
        )
        for r in rows
        if (r["total"] or 0) > 0
    ]


def errors_over_time(
    *, since: datetime, until: datetime, granularity: Granularity
) -> list[SeriesPoint]:
    """Errors and warnings per bucket of when they happened, split by kind."""
    rows = (
        SessionError.objects.filter(occurred_at__gte=since, occurred_at__lt=until)
        .annotate(bucket=_TRUNC[granularity]("occurred_at"))
        .values("bucket", "kind")
        .annotate(n=Count("id"))
        .order_by("bucket", "kind")
    )
    return [SeriesPoint(bucket=r["bucket"], key=r["kind"], count=r["n"]) for r in rows]


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
    """Calls and errors per tool, most called first (calls made in [since, until))."""
    rows = ToolCallRecord.objects.filter(occurred_at__gte=since, occurred_at__lt=until)
    if agent:
        rows = rows.filter(session__agent=agent)
    grouped = (
        rows.values("name")
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
    return _top_by("agent", since=since, until=until, limit=limit)


def top_users(*, since: datetime, until: datetime, limit: int = 8) -> list[RankedKey]:
    return _top_by("user", since=since, until=until, limit=limit)


def _top_by(column: str, *, since: datetime, until: datetime, limit: int) -> list[RankedKey]:
    rows = (
        _sessions_in(since, until)
        .exclude(**{column: ""})
        .values(column)
        .annotate(
            n=Count("id"),
            errors=Count("id", filter=Q(has_errors=True)),
            tokens=Sum("total_tokens"),
        )
        .order_by("-n", column)[:limit]
    )
    return [
        RankedKey(
            key=r[column], sessions=r["n"], with_errors=r["errors"], total_tokens=r["tokens"] or 0
        )
        for r in rows
    ]


@dataclass(frozen=True)
class DurationBin:
    label: str
    min_seconds: int
    max_seconds: int | None  # None: open-ended
    count: int


# (label, lower bound in seconds); each bin runs to the next one's lower bound.
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


def duration_histogram(*, since: datetime, until: datetime) -> list[DurationBin]:
    """Sessions by duration (last activity minus start), in fixed human-sized bins."""
    duration = ExpressionWrapper(F("updated_at") - F("started_at"), output_field=DurationField())
    whens = [
        When(duration__lt=timedelta(seconds=DURATION_BINS[index + 1][1]), then=Value(index))
        for index in range(len(DURATION_BINS) - 1)
    ]
    rows = (
        _sessions_in(since, until)
        .annotate(duration=duration)
        .annotate(
            bin=Case(*whens, default=Value(len(DURATION_BINS) - 1), output_field=IntegerField())
        )
        .values("bin")
        .annotate(n=Count("id"))
    )
    counts = {r["bin"]: r["n"] for r in rows}
    bins = []
    for index, (label, lower) in enumerate(DURATION_BINS):
        upper = DURATION_BINS[index + 1][1] if index + 1 < len(DURATION_BINS) else None
        bins.append(
            DurationBin(
                label=label, min_seconds=lower, max_seconds=upper, count=counts.get(index, 0)
            )
        )
    return bins


# --- prices and costs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceRecord:
    id: int
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None
    effective_from: date
    currency: str
    notes: str
    updated_at: datetime | None
    updated_by: str


@dataclass(frozen=True)
class PriceBook:
    """Every price row, answering "what did this model cost on that day"."""

    prices: tuple[PriceRecord, ...] = ()
    _by_model: dict[str, list[PriceRecord]] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, prices: list[PriceRecord]) -> PriceBook:
        by_model: dict[str, list[PriceRecord]] = defaultdict(list)
        for price in prices:
            by_model[price.model].append(price)
        for rows in by_model.values():
            rows.sort(key=lambda p: p.effective_from, reverse=True)
        return cls(prices=tuple(prices), _by_model=dict(by_model))

    def price_for(self, model: str, on: date) -> PriceRecord | None:
        """The price effective on ``on`` for ``model``: an exact name first, else the longest
        priced name that the model's name starts with (``gpt-4o-2024-08-06`` -> ``gpt-4o``)."""
        if not model:
            return None
        names = [model] if model in self._by_model else []
        if not names:
            prefixes = [name for name in self._by_model if model.startswith(name)]
            names = sorted(prefixes, key=len, reverse=True)[:1]
        for name in names:
            for price in self._by_model[name]:
                if price.effective_from <= on:
                    return price
        return None


def price_from_row(row: ModelPrice) -> PriceRecord:
    return PriceRecord(
        id=row.id,
        model=row.model,
        input_per_mtok=row.input_per_mtok,
        output_per_mtok=row.output_per_mtok,
        cached_input_per_mtok=row.cached_input_per_mtok,
        effective_from=row.effective_from,
        currency=row.currency,
        notes=row.notes,
        updated_at=row.updated_at,
        updated_by=row.updated_by.get_username() if row.updated_by_id else "",
    )


def list_prices() -> list[PriceRecord]:
    """Every price row, by model then newest effective date first."""
    rows = ModelPrice.objects.select_related("updated_by").order_by("model", "-effective_from")
    return [price_from_row(row) for row in rows]


def price_book() -> PriceBook:
    return PriceBook.of(list_prices())


def estimate_cost(
    price: PriceRecord,
    *,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_input_tokens: int | None = None,
) -> Decimal:
    """Input tokens (cached ones at the cached rate when there is one) plus output tokens."""
    inputs = input_tokens or 0
    cached = min(cached_input_tokens or 0, inputs)
    cached_rate = (
        price.cached_input_per_mtok
        if price.cached_input_per_mtok is not None
        else price.input_per_mtok
    )
    amount = (
        Decimal(inputs - cached) * price.input_per_mtok
        + Decimal(cached) * cached_rate
        + Decimal(output_tokens or 0) * price.output_per_mtok
    )
    return amount / MILLION


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
    """Estimated cost per model over the sessions active in the range, dearest first."""
    book = book or price_book()
    rows = (
        ModelUsage.objects.filter(session__updated_at__gte=since, session__updated_at__lt=until)
        .annotate(day=TruncDate("session__started_at"))
        .values("model", "day")
        .annotate(
            sessions=Count("id"),
            input=Sum("input_tokens"),
            output=Sum("output_tokens"),
            cached=Sum("cached_input_tokens"),
            total=Sum(_usage_total()),
        )
        .order_by("model", "day")
    )
    per_model: dict[str, dict] = {}
    for r in rows:
        entry = per_model.setdefault(
            r["model"],
            {"sessions": 0, "input": 0, "output": 0, "cached": 0, "total": 0, "cost": Decimal(0)},
        )
        entry["sessions"] += r["sessions"]
        entry["input"] += r["input"] or 0
        entry["output"] += r["output"] or 0
        entry["cached"] += r["cached"] or 0
        entry["total"] += r["total"] or 0
        price = book.price_for(r["model"], _as_date(r["day"]))
        if price is None:
            if (r["total"] or 0) > 0:
                entry["cost"] = None
        elif entry["cost"] is not None:
            entry["cost"] += estimate_cost(
                price,
                input_tokens=r["input"],
                output_tokens=r["output"],
                cached_input_tokens=r["cached"],
            )
    result = [
        ModelCost(
            model=model or UNATTRIBUTED,
            sessions=e["sessions"],
            input_tokens=e["input"],
            output_tokens=e["output"],
            cached_input_tokens=e["cached"],
            total_tokens=e["total"],
            cost=e["cost"] if model else None,
        )
        for model, e in per_model.items()
        if e["total"] > 0 or e["input"] > 0 or e["output"] > 0
    ]
    result.sort(key=lambda c: (c.cost is None, -(c.cost or 0), -c.total_tokens, c.model))
    return result


def _as_date(value: date | datetime | None) -> date:
    if value is None:
        return date.max
    return value.date() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class CostEstimate:
    """A session's estimated cost: ``amount`` over the priced models, ``complete`` when every
    token it reports is priced."""

    amount: Decimal | None
    complete: bool
    unpriced_models: tuple[str, ...] = ()


def session_costs(
    *, sessions: dict[str, datetime], book: PriceBook | None = None
) -> dict[str, CostEstimate]:
    """Estimated costs of a handful of sessions (a list page), keyed by session id.

    ``sessions`` maps id -> when the session started (prices are those effective then)."""
    if not sessions:
        return {}
    book = book or price_book()
    amounts: dict[str, Decimal | None] = {}
    complete: dict[str, bool] = {}
    unpriced: dict[str, list[str]] = defaultdict(list)
    rows = ModelUsage.objects.filter(session_id__in=list(sessions)).values(
        "session_id",
        "model",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "total_tokens",
    )
    for r in rows:
        sid = str(r["session_id"])
        has_tokens = any(r[k] for k in ("input_tokens", "output_tokens", "total_tokens"))
        if not has_tokens:
            continue
        price = book.price_for(r["model"], sessions[sid].date())
        if price is None or (r["input_tokens"] is None and r["output_tokens"] is None):
            complete[sid] = False
            unpriced[sid].append(r["model"] or UNATTRIBUTED)
            continue
        amounts[sid] = (amounts.get(sid) or Decimal(0)) + estimate_cost(
            price,
            input_tokens=r["input_tokens"],
            output_tokens=r["output_tokens"],
            cached_input_tokens=r["cached_input_tokens"],
        )
        complete.setdefault(sid, True)
    return {
        sid: CostEstimate(
            amount=amounts.get(sid),
            complete=complete.get(sid, True),
            unpriced_models=tuple(unpriced.get(sid, ())),
        )
        for sid in sessions
    }
