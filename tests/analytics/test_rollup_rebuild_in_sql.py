"""The rebuild aggregates in the database: the same buckets as the index queries readers use.

``aggregate_index`` groups with Django queries and sums the rows in Python (what every rebuild
did before the database aggregated); the buckets the INSERT … SELECT statements write must
equal it, hour and day, on a dataset that reaches every branch: empty names, NULL tokens,
every duration bin, heuristic failures, usage without totals, events in other hours than
their session's start.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest

from sessions_api.analytics import rollups
from sessions_api.models import (
    ModelUsage,
    RollupBucket,
    RollupDirtyHour,
    Session,
    SessionError,
    ToolCallRecord,
)
from tests.support.job_sessions import T0, ingest, picoflow_doc

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(days=4)

#: Durations that land in every DURATION_BINS bin, on both sides of a bound, and below zero.
DURATIONS = (-5, 0, 9.999, 10, 29, 45, 59.9995, 60, 299, 300, 899, 900, 3599, 3600, 21599,
             21600, 86399, 86400, 200000)  # fmt: skip


@pytest.fixture
def varied() -> None:
    rng = random.Random(7)
    statuses = ["running", "completed", "failed", "expired"]
    for index in range(120):
        started = T0 + timedelta(minutes=rng.randrange(0, 3 * 24 * 60), microseconds=index)
        tokens = [None if rng.random() < 0.3 else rng.randrange(0, 5000) for _ in range(3)]
        session = Session.objects.create(
            format="picoflow",
            external_id=f"varied-{index}",
            status=rng.choice(statuses),
            agent=rng.choice(["", "TripFlow", "OtherFlow", "(none)"]),
            user=rng.choice(["", "ann", "bob"]),
            has_errors=rng.random() < 0.4,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            total_tokens=tokens[2],
            started_at=started,
            updated_at=started + timedelta(seconds=DURATIONS[index % len(DURATIONS)]),
            first_received_at=started,
            last_received_at=started,
        )
        for model in rng.sample(["", "gpt-4o-mini", "claude-x"], k=rng.randrange(0, 3)):
            ModelUsage.objects.create(
                session=session,
                model=model,
                input_tokens=rng.choice([None, rng.randrange(1, 900)]),
                output_tokens=rng.choice([None, rng.randrange(1, 900)]),
                total_tokens=rng.choice([None, rng.randrange(1, 2000)]),
                cached_input_tokens=rng.choice([None, rng.randrange(0, 300)]),
            )
        for seq in range(rng.randrange(0, 4)):
            ToolCallRecord.objects.create(
                session=session,
                message_seq=seq,
                call_id=f"c{seq}",
                name=rng.choice(["search", "book", "pay"]),
                status=rng.choice(["success", "error", "error", "pending"]),
                status_source=rng.choice(["explicit", "heuristic"]),
                # Calls run on past the hour, the day, the data's end.
                occurred_at=started + timedelta(minutes=rng.randrange(0, 26 * 60)),
            )
        for _ in range(rng.randrange(0, 3)):
            SessionError.objects.create(
                session=session,
                kind=rng.choice(["tool_error", "message_error", "log_error", "log_warning"]),
                message="x",
                occurred_at=started + timedelta(minutes=rng.randrange(0, 90)),
                heuristic=rng.random() < 0.5,
            )


def stored() -> set[tuple]:
    return {
        (*row[:-1], round(row[-1], 6))
        for row in RollupBucket.objects.values_list(*rollups.BUCKET_COLUMNS)
    }


def from_index_queries() -> set[tuple]:
    """The buckets as readers compute them: Django queries, rows summed in Python."""
    hourly = rollups.aggregate_index(lo=None, hi=None)
    daily: rollups.Cells = {}
    for (hour, series, key), cell in hourly.items():
        day = hour.replace(hour=0)
        daily.setdefault((day, series, key), rollups.Cell()).add(cell)
    return {
        (
            granularity,
            start,
            series,
            key,
            *(getattr(cell, f) for f in rollups.CELL_FIELDS[:-1]),
            round(cell.value_sum, 6),
        )
        for granularity, cells in (("hour", hourly), ("day", daily))
        for (start, series, key), cell in cells.items()
    }


def test_the_rebuild_in_sql_equals_the_index_queries(varied):
    result = rollups.rebuild_rollups(now=NOW)
    expected = from_index_queries()
    assert {row[2] for row in expected} == set(rollups.SERIES)  # every series has rows
    assert stored() == expected
    assert result.buckets_written == len(expected)
    assert result.hours_recomputed == len({row[1] for row in expected if row[0] == "hour"})


def test_windows_of_a_few_buckets_give_the_same_rebuild(varied, monkeypatch):
    rollups.rebuild_rollups(now=NOW)
    whole = stored()
    RollupBucket.objects.create(  # outside the data: the open first window removes it
        granularity="hour", bucket_start=T0 - timedelta(days=30), series="errors_by_kind", key="x"
    )
    monkeypatch.setattr(rollups, "SWAP_ROWS", 7)
    rollups.rebuild_rollups(now=NOW)
    assert stored() == whole


def test_an_incremental_run_over_every_hour_equals_the_rebuild(varied):
    rollups.rebuild_rollups(now=NOW)
    whole = stored()
    RollupBucket.objects.all().delete()
    Session.objects.update(last_received_at=NOW + timedelta(minutes=1))
    result = rollups.rollup_analytics(now=NOW + timedelta(minutes=2))
    assert result.mode == "incremental" and result.changed_sessions == 120
    assert stored() == whole


def test_a_dry_run_rebuild_counts_and_writes_nothing(varied):
    result = rollups.rebuild_rollups(now=NOW, dry_run=True)
    assert result.hours_recomputed > 0
    assert not RollupBucket.objects.exists()


# --- a session that moves leaves its old hours ----------------------------------------------


def test_a_session_whose_new_version_moves_it_leaves_its_old_hours(make_session):
    make_session(session_id="moves", created=T0, tools=[("search", "error")])
    make_session(session_id="stays", created=T0 + timedelta(minutes=10))
    rollups.rollup_analytics(now=NOW)
    assert (
        rollups.RollupBucket.objects.get(
            granularity="hour", bucket_start=T0, series="sessions_by_status", key="running"
        ).count
        == 2
    )

    # A new version whose start and tool call are five hours later (a whole parse).
    later = NOW + timedelta(minutes=10)
    moved_to = T0 + timedelta(hours=5)
    ingest(
        picoflow_doc(session_id="moves", created=moved_to, tools=[("search", "error")]), now=later
    )
    assert set(RollupDirtyHour.objects.values_list("hour", flat=True)) == {T0}

    result = rollups.rollup_analytics(now=later + timedelta(minutes=1))
    assert result.mode == "incremental" and result.changed_sessions == 1
    in_first_hour = RollupBucket.objects.filter(granularity="hour", bucket_start=T0)
    assert in_first_hour.get(series="sessions_by_status", key="running").count == 1
    assert not in_first_hour.filter(series="tool_calls_by_tool", key="search").exists()
    assert not RollupDirtyHour.objects.exists()
    incremental = stored()
    rollups.rebuild_rollups(now=later + timedelta(minutes=2))
    assert stored() == incremental


def test_a_deleted_session_drops_out_at_the_next_incremental_run(make_session):
    from sessions_api.ingest import services

    gone = make_session(session_id="gone", created=T0, flow="GoneFlow")
    make_session(session_id="stays", created=T0 + timedelta(hours=3))
    rollups.rollup_analytics(now=NOW)
    assert services.delete_session(session_id=str(gone.id))
    rollups.rollup_analytics(now=NOW + timedelta(minutes=5))
    assert not RollupBucket.objects.filter(key="GoneFlow").exists()
    incremental = stored()
    rollups.rebuild_rollups(now=NOW + timedelta(minutes=6))
    assert stored() == incremental


def test_a_new_version_in_the_same_hours_marks_nothing(make_session):
    make_session(session_id="same", created=T0)
    ingest(picoflow_doc(session_id="same", created=T0, extra_message="more"), now=NOW)
    assert Session.objects.get(external_id="same").latest_version == 2
    assert not RollupDirtyHour.objects.exists()


def test_hours_marked_during_a_run_survive_it(make_session, monkeypatch):
    make_session(session_id="a", created=T0)
    rollups.rollup_analytics(now=NOW)
    rollups.mark_hours_dirty(hours=[T0 + timedelta(minutes=5)])
    late = T0 + timedelta(hours=9)
    original = rollups._Stage.swap

    def swap_while_a_purge_marks(self, *args, **kwargs):
        rollups.mark_hours_dirty(hours=[late])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(rollups._Stage, "swap", swap_while_a_purge_marks)
    rollups.rollup_analytics(now=NOW + timedelta(minutes=5))
    assert set(RollupDirtyHour.objects.values_list("hour", flat=True)) == {late}


def test_too_many_dirty_hours_make_the_next_run_a_full_rebuild(make_session, monkeypatch):
    make_session(session_id="a", created=T0)
    rollups.rollup_analytics(now=NOW)
    monkeypatch.setattr(rollups, "MAX_DIRTY_HOURS", 2)
    rollups.mark_hours_dirty(hours=[T0 + timedelta(hours=h) for h in range(3)])
    assert rollups.rollup_analytics(now=NOW + timedelta(minutes=5)).mode == "full"
    assert not RollupDirtyHour.objects.exists()


def test_marks_are_kept_in_whole_hours():
    rollups.mark_hours_dirty(hours=[T0 + timedelta(minutes=59, seconds=59), T0])
    assert list(RollupDirtyHour.objects.values_list("hour", flat=True)) == [T0]


def test_keys_are_the_readers_keys_for_unnamed_agents_and_models():
    session = Session.objects.create(
        format="picoflow",
        external_id=str(uuid.uuid4()),
        status="completed",
        started_at=T0,
        updated_at=T0,
        first_received_at=T0,
        last_received_at=T0,
    )
    ModelUsage.objects.create(session=session, model="", input_tokens=3)
    rollups.rebuild_rollups(now=NOW)
    keys = set(
        RollupBucket.objects.filter(granularity="hour").values_list("series", "key", "total_tokens")
    )
    assert ("sessions_by_agent", rollups.NO_AGENT, 0) in keys
    assert ("sessions_by_user", rollups.NO_USER, 0) in keys
    assert ("tokens_by_model", rollups.UNATTRIBUTED, 3) in keys  # no total: input + output
    assert ("sessions_by_duration", "0", 0) in keys
