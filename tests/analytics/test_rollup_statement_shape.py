"""How an incremental rollup finds its work: through indexes, not scans (docs/BENCHMARKS.md, B6).

No timing here: which sessions a run counts as changed, and the query plans of the reads that
find them and the hours they touched.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_api.analytics import rollups
from sessions_api.models import Session, ToolCallRecord
from tests.support.job_sessions import T0

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(days=1)
LATER = NOW + timedelta(hours=1)

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="EXPLAIN QUERY PLAN is SQLite's planner"
)


@pytest.fixture
def changed(make_session) -> dict[str, Session]:
    """Five sessions, rolled up; then two received again, one expired, one both."""
    sessions = {
        name: make_session(
            session_id=name,
            created=T0 + timedelta(hours=3 * i),  # scattered: a range each
            tools=[("search", "error"), ("book", "success")],
        )
        for i, name in enumerate(("quiet", "received", "received2", "expired", "both"))
    }
    rollups.rollup_analytics(now=NOW)
    for name in ("received", "received2", "both"):
        Session.objects.filter(pk=sessions[name].pk).update(last_received_at=LATER)
    for name in ("expired", "both"):
        Session.objects.filter(pk=sessions[name].pk).update(status="expired", expired_at=LATER)
    return sessions


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_each_changed_session_counts_once_whatever_the_batch_size(changed, batch_size):
    result = rollups.rollup_analytics(now=LATER + timedelta(minutes=1), batch_size=batch_size)
    assert result.mode == "incremental"
    assert result.changed_sessions == 4  # received, received2, expired, both (once)
    rebuilt_incrementally = set(
        rollups.RollupBucket.objects.values_list(
            "granularity", "bucket_start", "series", "key", "count", "errors"
        )
    )
    rollups.rebuild_rollups(now=LATER + timedelta(minutes=2))
    assert rebuilt_incrementally == set(
        rollups.RollupBucket.objects.values_list(
            "granularity", "bucket_start", "series", "key", "count", "errors"
        )
    )


def plan_of(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return [row[-1] for row in cursor.fetchall()]


@sqlite_only
def test_incremental_run_reads_changes_and_their_hours_through_indexes(changed):
    with CaptureQueriesContext(connection) as captured:
        result = rollups.rollup_analytics(now=LATER + timedelta(minutes=1), batch_size=2)
    assert result.changed_sessions == 4
    sqls = [query["sql"] for query in captured.captured_queries]
    session_table = Session._meta.db_table
    tool_table = ToolCallRecord._meta.db_table
    finding = [
        sql
        for sql in sqls
        if sql.startswith("SELECT")
        and f'FROM "{session_table}"' in sql
        and ('"last_received_at" >' in sql or '"expired_at" >' in sql)
    ]
    hours = [
        sql
        for sql in sqls
        if sql.startswith("SELECT") and f'FROM "{tool_table}"' in sql and '"session_id" IN' in sql
    ]
    assert finding and hours
    for sql in finding:
        plan = plan_of(sql)
        assert not any(step.startswith(f"SCAN {session_table}") for step in plan), plan
        assert any("last_received_at" in s or "expired_at" in s for s in plan), plan
    for sql in hours:
        plan = plan_of(sql)
        assert not any(step.startswith(f"SCAN {tool_table}") for step in plan), plan
        assert any("session_id" in step for step in plan), plan


@sqlite_only
def test_a_full_rebuild_reads_the_session_table_in_order_and_usage_by_session(changed):
    with CaptureQueriesContext(connection) as captured:
        rollups.rebuild_rollups(now=LATER)
    session_table = Session._meta.db_table
    reads = [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"].startswith("SELECT") and "GROUP BY" in query["sql"]
    ]
    by_usage = [sql for sql in reads if "model_usage" in sql or "modelusage" in sql]
    by_session = [sql for sql in reads if f'FROM "{session_table}" NOT INDEXED' in sql]
    assert by_usage and len(by_session) == 2  # status, agent and user; durations
    for sql in by_session:
        assert plan_of(sql)[0] == f"SCAN {session_table}"
    plan = plan_of(by_usage[0])
    assert plan[0].startswith(f"SCAN {session_table} USING COVERING INDEX"), plan
    assert "session_id=?" in plan[1], plan
