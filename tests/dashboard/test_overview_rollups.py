"""The overview read from rollups plus live edges gives the same figures as the index alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sessions_api.analytics import overview as analytics
from sessions_api.analytics import rollups
from sessions_api.analytics.overview import Freshness
from sessions_api.ingest import services
from sessions_api.models import JobState, Session
from tests.dashboard.conftest import seed_test_prices
from tests.support import sample_data

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 14, 37, 12, tzinfo=UTC)
#: The last rollup ran 50 minutes ago: 13:00 onwards is live from the index.
ROLLED_UP = NOW - timedelta(minutes=50)
WINDOWS = {
    "24h": (NOW - timedelta(hours=24), NOW),
    "7d": (NOW - timedelta(days=7), NOW),
    "30d": (NOW - timedelta(days=30), NOW),
    "2h": (NOW - timedelta(hours=2), NOW),
    "past, unaligned": (NOW - timedelta(days=3, minutes=-17), NOW - timedelta(days=1, minutes=5)),
    "past days": (NOW - timedelta(days=10), NOW - timedelta(days=2)),
}


@pytest.fixture
def varied(db):
    seed_test_prices()
    sample_data.load_varied(now=NOW, count=80)


def figures(window: str) -> analytics.Overview:
    since, until = WINDOWS[window]
    result = analytics.overview(
        since=since, until=until, granularity=analytics.granularity_for(since, until)
    )
    return replace(result, freshness=None)


def test_rollups_plus_live_edges_equal_the_index(varied):
    from_index = {window: figures(window) for window in WINDOWS}
    assert from_index["30d"].kpis.sessions == 80
    assert from_index["30d"].top_users and from_index["30d"].tool_stats

    rollups.rollup_analytics(now=ROLLED_UP)

    for window, expected in from_index.items():
        assert figures(window) == expected, window


def test_the_single_figure_functions_agree_with_the_overview(varied):
    rollups.rollup_analytics(now=ROLLED_UP)
    since, until = WINDOWS["30d"]
    whole = analytics.overview(since=since, until=until, granularity="day")
    window = {"since": since, "until": until}
    assert analytics.overview_kpis(**window) == whole.kpis
    assert analytics.cost_by_model(**window) == whole.costs
    assert analytics.sessions_by_status(**window, granularity="day") == whole.sessions_by_status
    assert analytics.tokens_by_model(**window, granularity="day") == whole.tokens_by_model
    assert analytics.errors_over_time(**window, granularity="day") == whole.errors_over_time
    assert analytics.tool_stats(**window) == whole.tool_stats
    assert analytics.duration_histogram(**window) == whole.duration_histogram
    assert analytics.top_agents(**window) == whole.top_agents
    assert analytics.top_users(**window) == whole.top_users


def test_a_session_started_in_the_open_hour_shows_at_once(varied):
    rollups.rollup_analytics(now=ROLLED_UP)
    before = figures("24h").kpis.sessions
    started = NOW - timedelta(minutes=10)
    body = sample_data.picoflow_document(
        session_id="fresh",
        flow="TripFlow",
        status="running",
        model="gpt-4o",
        started=started,
        turns=[sample_data.Turn(user="hi", reply="hello")],
    )
    services.ingest_document(body=body, source="demo", now=NOW)
    assert figures("24h").kpis.sessions == before + 1


def expired_in_the_week() -> int:
    return sum(p.count for p in figures("7d").sessions_by_status if p.key == "expired")


def test_an_older_session_changes_at_the_next_rollup_run(varied):
    rollups.rollup_analytics(now=ROLLED_UP)
    before = expired_in_the_week()
    old = (
        Session.objects.filter(
            started_at__gte=NOW - timedelta(days=6), started_at__lt=ROLLED_UP - timedelta(hours=3)
        )
        .exclude(status="expired")
        .first()
    )
    Session.objects.filter(id=old.id).update(status="expired", expired_at=NOW)

    assert expired_in_the_week() == before  # whole hours are as of the last run

    rollups.rollup_analytics(now=NOW + timedelta(minutes=1))
    assert expired_in_the_week() == before + 1


def test_freshness_says_where_the_live_part_starts(varied):
    since, until = WINDOWS["24h"]
    first = analytics.overview(since=since, until=until, granularity="hour").freshness
    assert first == Freshness(rolled_up_at=None, live_from=since)

    rollups.rollup_analytics(now=ROLLED_UP)
    after = analytics.overview(since=since, until=until, granularity="hour").freshness
    assert after == Freshness(
        rolled_up_at=ROLLED_UP, live_from=ROLLED_UP.replace(minute=0, second=0)
    )


def test_rollups_of_an_older_schema_are_not_read(varied):
    rollups.rollup_analytics(now=ROLLED_UP)
    state = JobState.objects.get(name=rollups.STATE)
    state.value = {**state.value, "schema": rollups.SCHEMA - 1}
    state.save()
    assert rollups.rolled_up_at() is None
    # ... and the next run rebuilds everything.
    assert rollups.rollup_analytics(now=NOW).mode == "full"
    assert rollups.rolled_up_at() == NOW


def test_a_30_day_range_reads_days_between_partial_hours_and_edges():
    since = datetime(2026, 2, 8, 14, 37, tzinfo=UTC)
    until = datetime(2026, 3, 10, 14, 37, tzinfo=UTC)
    plan = analytics._plan(since, until, "day", datetime(2026, 3, 10, 13, 47, tzinfo=UTC))
    assert [(s.source, s.lo, s.hi) for s in plan] == [
        ("index", since, datetime(2026, 2, 8, 15, tzinfo=UTC)),
        ("hour", datetime(2026, 2, 8, 15, tzinfo=UTC), datetime(2026, 2, 9, tzinfo=UTC)),
        ("day", datetime(2026, 2, 9, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)),
        ("hour", datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 10, 13, tzinfo=UTC)),
        ("index", datetime(2026, 3, 10, 13, tzinfo=UTC), until),
    ]
    # Minute charts and ranges inside the open hour come from the index alone.
    assert [s.source for s in analytics._plan(since, until, "minute", until)] == ["index"]
    assert [s.source for s in analytics._plan(since, until, "day", None)] == ["index"]


def test_the_page_shows_rollup_figures_and_says_what_they_count(viewer_client, varied):
    url = "/?since=2026-03-09T14:37&until=2026-03-10T14:37"
    from_index = viewer_client.get(url).context["kpis"]
    assert "All figures are live from the index." in viewer_client.get(url).content.decode()

    rollups.rollup_analytics(now=ROLLED_UP)
    response = viewer_client.get(url)
    html = response.content.decode()
    assert response.context["kpis"] == from_index
    assert "sessions that <strong>started</strong> in the range" in html
    assert "Whole hours before Mar 10, 13:00 UTC are as of the rollup at 13:47" in html
    assert "started in range" in html
