"""rollup_analytics: correctness, idempotency, incremental == full rebuild."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from sessions_api.analytics import overview as analytics
from sessions_api.analytics import rollups
from sessions_api.lifecycle import expiry, purge
from sessions_api.models import JobState, ModelPrice, RollupBucket, RollupDirtyHour, Session
from tests.support.job_sessions import T0, ingest, picoflow_doc

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(days=1)


def snapshot() -> set[tuple]:
    return set(
        RollupBucket.objects.values_list(
            "granularity",
            "bucket_start",
            "series",
            "key",
            "count",
            "errors",
            "input_tokens",
            "output_tokens",
            "total_tokens",
        )
    ) | {
        ("value", g, b, s, k, round(v, 6))
        for g, b, s, k, v in RollupBucket.objects.values_list(
            "granularity", "bucket_start", "series", "key", "value_sum"
        )
    }


def bucket(series: str, key: str, start, granularity: str = "hour") -> RollupBucket:
    return RollupBucket.objects.get(
        granularity=granularity, series=series, key=key, bucket_start=start
    )


@pytest.fixture
def scenario(make_session):
    ModelPrice.objects.create(
        model="gpt-4o-mini",
        input_per_mtok=Decimal("9"),
        output_per_mtok=Decimal("9"),
        effective_from=date(2025, 1, 1),
    )
    ModelPrice.objects.create(  # in effect on T0's date
        model="gpt-4o-mini",
        input_per_mtok=Decimal("1"),
        output_per_mtok=Decimal("4"),
        effective_from=date(2026, 3, 1),
    )
    ModelPrice.objects.create(  # not yet in effect
        model="gpt-4o-mini",
        input_per_mtok=Decimal("100"),
        output_per_mtok=Decimal("100"),
        effective_from=date(2026, 4, 1),
    )
    return {
        "a": make_session(session_id="a", created=T0, tokens=(100, 20)),
        "b": make_session(
            session_id="b",
            created=T0 + timedelta(minutes=30),
            status="completed",
            model="claude-x",
            tools=[("search_hotels", "error"), ("book", "success")],
            tokens=(50, 10),
        ),
        "c": make_session(session_id="c", created=T0 + timedelta(hours=2), flow="OtherFlow"),
    }


def test_buckets_hold_the_right_numbers(scenario):
    result = rollups.rollup_analytics(now=NOW)
    assert result.mode == "full"  # first run: no watermark yet

    assert bucket("sessions_by_status", "running", T0).count == 1
    completed = bucket("sessions_by_status", "completed", T0)
    assert (completed.count, completed.errors, completed.input_tokens) == (1, 1, 50)
    search = bucket("tool_calls_by_tool", "search_hotels", T0)
    assert (search.count, search.errors) == (2, 1)  # a at 10:01 ok, b at 10:31 failed
    assert bucket("tool_calls_by_tool", "book", T0).count == 1
    assert bucket("errors_by_kind", "tool_error", T0).count == 1
    mini = bucket("tokens_by_model", "gpt-4o-mini", T0)
    assert (mini.count, mini.input_tokens, mini.output_tokens, mini.total_tokens) == (
        1,
        100,
        20,
        120,
    )
    assert mini.value_sum == 0  # cached input tokens; costs are priced when read
    hour = {"since": T0, "until": T0 + timedelta(hours=1)}
    costs = {c.model: c.cost for c in analytics.cost_by_model(**hour)}
    assert costs["gpt-4o-mini"] == pytest.approx(Decimal(100 * 1 + 20 * 4) / 10**6)
    assert costs["claude-x"] is None  # no price: unpriced, not free
    trip = bucket("sessions_by_agent", "TripFlow", T0)
    assert (trip.count, trip.errors, trip.input_tokens) == (2, 1, 150)
    assert bucket("sessions_by_agent", "OtherFlow", T0 + timedelta(hours=2)).count == 1
    assert bucket("sessions_by_duration", "300", T0).count == 2  # both 5 minutes: 5-15m

    day = T0.replace(hour=0)
    assert bucket("sessions_by_status", "running", day, "day").count == 2  # a and c
    assert bucket("tool_calls_by_tool", "search_hotels", day, "day").count == 3
    assert bucket("sessions_by_duration", "300", day, "day").count == 3


def test_running_twice_gives_the_same_buckets(scenario):
    rollups.rollup_analytics(now=NOW, full=True)
    first = snapshot()
    rollups.rollup_analytics(now=NOW, full=True)
    assert snapshot() == first
    rollups.rollup_analytics(now=NOW + timedelta(minutes=5))  # incremental, nothing changed
    assert snapshot() == first


def test_incremental_after_changes_equals_a_full_rebuild(scenario):
    rollups.rollup_analytics(now=NOW)
    # Changes after the watermark: a new session, a new version of "a" with another tool
    # call, and "b" expires (a status change without a new version).
    later = NOW + timedelta(minutes=10)
    ingest(picoflow_doc(session_id="d", created=T0 + timedelta(hours=5)), now=later)
    ingest(
        picoflow_doc(
            session_id="a", tools=[("search_hotels", "success"), ("pay", "error")], tokens=(300, 40)
        ),
        now=later,
    )
    Session.objects.filter(external_id="b").update(expires_at=T0)
    expiry.expire_sessions(now=later)

    result = rollups.rollup_analytics(now=later + timedelta(minutes=1))
    assert result.mode == "incremental"
    assert result.changed_sessions == 3
    incremental = snapshot()

    call_command("rebuild_rollups")
    assert snapshot() == incremental
    assert bucket("sessions_by_status", "expired", T0).count == 1
    assert bucket("tool_calls_by_tool", "pay", T0).errors == 1


def test_incremental_only_recomputes_touched_hours(scenario):
    rollups.rollup_analytics(now=NOW)
    later = NOW + timedelta(hours=1)
    ingest(picoflow_doc(session_id="e", created=T0 + timedelta(hours=7)), now=later)
    result = rollups.rollup_analytics(now=later)
    assert result.hours_recomputed == 1 and result.days_recomputed == 1


def test_purged_sessions_drop_out_at_the_next_run(settings, scenario):
    settings.PURGE_EXPIRED_GRACE = "1h"
    rollups.rollup_analytics(now=NOW)
    Session.objects.filter(external_id="c").update(status="expired", expired_at=T0)
    purge.purge_sessions(now=NOW)
    assert RollupDirtyHour.objects.exists()

    rollups.rollup_analytics(now=NOW + timedelta(minutes=5))

    assert not RollupBucket.objects.filter(key="OtherFlow").exists()
    assert not RollupDirtyHour.objects.exists()
    rebuilt_incrementally = snapshot()
    rollups.rebuild_rollups(now=NOW + timedelta(minutes=6))
    assert snapshot() == rebuilt_incrementally


def test_dry_run_writes_nothing(scenario):
    result = rollups.rollup_analytics(now=NOW, dry_run=True)
    assert result.hours_recomputed == 2
    assert not RollupBucket.objects.exists()
    assert not JobState.objects.filter(name=rollups.STATE).exists()


def test_daily_full_rebuild_kicks_in(settings, scenario):
    settings.ROLLUP_FULL_REBUILD_EVERY = "1d"
    rollups.rollup_analytics(now=NOW)
    assert rollups.rollup_analytics(now=NOW + timedelta(hours=1)).mode == "incremental"
    assert rollups.rollup_analytics(now=NOW + timedelta(days=1, minutes=1)).mode == "full"


def test_empty_index_rebuild_clears_buckets(scenario):
    rollups.rollup_analytics(now=NOW)
    Session.objects.all().delete()
    rollups.rebuild_rollups(now=NOW)
    assert not RollupBucket.objects.exists()
