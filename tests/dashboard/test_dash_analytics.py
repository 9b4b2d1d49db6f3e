"""Analytics on a small known data set: every number checked by hand (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

import pytest

from sessions_api.analytics import overview as analytics
from sessions_api.analytics import pricing
from sessions_api.analytics.pricing import PriceBook, PriceRecord

pytestmark = pytest.mark.django_db

# Costs by hand (USD per million tokens; see conftest):
#   a: gpt-4o, 1000 in of which 400 cached, 200 out: (600*2.5 + 400*1.25 + 200*10) / 1e6
#   b: claude-sonnet-4, 2000 in, 500 out:             (2000*3 + 500*15) / 1e6
#   c: gpt-4o-2024-08-06 (gpt-4o prices), 800 in, 150 out: (800*2.5 + 150*10) / 1e6
COST_A = Decimal("0.004")
COST_B = Decimal("0.0135")
COST_C = Decimal("0.0035")


def day_range(known):
    return {"since": known.now - timedelta(hours=24), "until": known.now}


def summed(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Per key, the sum of its values over every bucket of a series."""
    totals: Counter[str] = Counter()
    for key, value in pairs:
        totals[key] += value
    return dict(totals)


def test_kpis_count_sessions_statuses_tokens_and_cost(known):
    kpis = analytics.overview_kpis(**day_range(known))
    assert kpis.sessions == 3  # the ten-day-old session is outside the range
    assert kpis.completed == 1
    assert kpis.failed == 1
    assert kpis.running == 0
    assert kpis.with_errors == 2
    assert kpis.error_rate == pytest.approx(2 / 3)
    assert kpis.input_tokens == 1000 + 2000 + 800
    assert kpis.output_tokens == 200 + 500 + 150
    assert kpis.total_tokens == 1200 + 2500 + 950
    assert kpis.tool_calls == 2
    assert kpis.tool_errors == 1
    assert kpis.cost == COST_A + COST_B + COST_C
    assert kpis.unpriced_tokens == 0


def test_cost_by_model_uses_exact_and_prefix_prices(known):
    costs = {c.model: c for c in analytics.cost_by_model(**day_range(known))}
    assert costs["gpt-4o"].cost == COST_A
    assert costs["gpt-4o"].cached_input_tokens == 400
    assert costs["claude-sonnet-4"].cost == COST_B
    assert costs["gpt-4o-2024-08-06"].cost == COST_C
    assert analytics.cost_by_model(**day_range(known))[0].model == "claude-sonnet-4"


def test_session_costs_per_session(known):
    records = {known.a: known.now - timedelta(hours=2), known.b: known.now, known.c: known.now}
    costs = pricing.session_costs(sessions=records)
    assert costs[known.a].amount == COST_A and costs[known.a].complete
    assert costs[known.b].amount == COST_B
    assert costs[known.c].amount == COST_C


def test_a_model_without_a_price_stays_unpriced(db, now):
    from tests.dashboard.conftest import make_known_data

    known = make_known_data(now)  # no prices at all
    kpis = analytics.overview_kpis(since=now - timedelta(hours=24), until=now)
    assert kpis.cost == 0
    assert kpis.unpriced_tokens == 1200 + 2500 + 950
    estimate = pricing.session_costs(sessions={known.a: now})[known.a]
    assert estimate.amount is None and not estimate.complete
    assert estimate.unpriced_models == ("gpt-4o",)


def test_sessions_by_status_buckets_by_start(known):
    points = analytics.sessions_by_status(**day_range(known), granularity="day")
    by_status = summed((p.key, p.count) for p in points)
    assert by_status == {"completed": 1, "aborted": 1, "unknown": 1}
    assert all(p.bucket.tzinfo is not None for p in points)


def test_tokens_by_model_stack(known):
    points = analytics.tokens_by_model(**day_range(known), granularity="hour")
    totals = summed((p.model, p.total_tokens) for p in points)
    assert totals == {"gpt-4o": 1200, "claude-sonnet-4": 2500, "gpt-4o-2024-08-06": 950}


def test_tool_stats_and_error_series(known):
    stats = {s.name: s for s in analytics.tool_stats(**day_range(known))}
    assert stats["get_weather"].calls == 1 and stats["get_weather"].errors == 1
    assert stats["get_weather"].error_rate == 1.0
    assert stats["search_hotels"].errors == 0
    points = analytics.errors_over_time(**day_range(known), granularity="hour")
    kinds = summed((p.key, p.count) for p in points)
    assert kinds == {"tool_error": 1, "log_error": 1, "log_warning": 1}
    totals = analytics.error_totals(**day_range(known))
    assert totals["tool_error"] == 1 and totals["log_error"] == 1
    assert totals["log_warning"] == 1 and totals["sessions"] == 2
    assert analytics.error_totals(**day_range(known), agent="SupportFlow")["tool_error"] == 0


def test_top_agents_and_users(known):
    agents = analytics.top_agents(**day_range(known))
    assert {(a.key, a.sessions, a.with_errors) for a in agents} == {
        ("TripFlow", 1, 1),
        ("SupportFlow", 1, 1),
    }
    users = analytics.top_users(**day_range(known))
    assert [(u.key, u.sessions, u.total_tokens) for u in users] == [("ana", 1, 950)]


def test_duration_histogram_bins(known):
    bins = {b.label: b.count for b in analytics.duration_histogram(**day_range(known))}
    # a: 6 messages 10 s apart -> 60 s; b: 3 messages 5 s apart -> 15 s;
    # c: created 3 h ago, last received 1 min ago -> about 3 h.
    assert bins["1-5m"] == 1
    assert bins["10-30s"] == 1
    assert bins["1-6h"] == 1
    assert sum(bins.values()) == 3


def test_empty_range_gives_zeros(known):
    far = {"since": known.now - timedelta(days=400), "until": known.now - timedelta(days=399)}
    kpis = analytics.overview_kpis(**far)
    assert kpis.sessions == 0 and kpis.error_rate is None and kpis.cost == 0
    assert analytics.sessions_by_status(**far, granularity="day") == []
    assert all(b.count == 0 for b in analytics.duration_histogram(**far))


def _price(model: str, on: date, inp: str = "1") -> PriceRecord:
    return PriceRecord(
        id=hash((model, on)) % 10_000,
        model=model,
        input_per_mtok=Decimal(inp),
        output_per_mtok=Decimal(inp),
        cached_input_per_mtok=None,
        effective_from=on,
        currency="USD",
        notes="",
        updated_at=None,
        updated_by="",
    )


def test_price_book_picks_the_price_in_force_and_the_longest_prefix():
    book = PriceBook.of(
        [
            _price("gpt-4o", date(2024, 1, 1), "5"),
            _price("gpt-4o", date(2025, 1, 1), "2.5"),
            _price("gpt-4o-mini", date(2024, 1, 1), "0.15"),
        ]
    )
    assert book.price_for("gpt-4o", date(2024, 6, 1)).input_per_mtok == Decimal("5")
    assert book.price_for("gpt-4o", date(2025, 6, 1)).input_per_mtok == Decimal("2.5")
    assert book.price_for("gpt-4o-mini-2024-07-18", date(2025, 6, 1)).model == "gpt-4o-mini"
    assert book.price_for("gpt-4o-2024-08-06", date(2025, 6, 1)).model == "gpt-4o"
    assert book.price_for("gpt-4o", date(2023, 1, 1)) is None
    assert book.price_for("claude-3", date(2025, 1, 1)) is None
    assert book.price_for("", date(2025, 1, 1)) is None


def test_estimate_cost_without_a_cached_rate_charges_cached_tokens_as_input():
    price = _price("m", date(2025, 1, 1), "2")
    assert pricing.estimate_cost(
        price, input_tokens=1000, output_tokens=0, cached_input_tokens=500
    ) == Decimal("0.002")


def test_granularity_and_buckets():
    from datetime import UTC, datetime

    start = datetime(2026, 1, 1, 10, 17, tzinfo=UTC)
    assert analytics.granularity_for(start, start + timedelta(hours=1)) == "minute"
    assert analytics.granularity_for(start, start + timedelta(days=1)) == "hour"
    assert analytics.granularity_for(start, start + timedelta(days=30)) == "day"
    hours = analytics.bucket_starts(start, start + timedelta(hours=3), "hour")
    assert hours[0] == datetime(2026, 1, 1, 10, 0, tzinfo=UTC) and len(hours) == 4
