"""How an incremental rollup finds its work: through indexes, not scans (docs/BENCHMARKS.md, B6).

No timing here: which sessions a run counts as changed, and the query plans of the reads that
find them and the hours they touched.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_api.analytics import rollups
from sessions_api.models import ModelUsage, Session, SessionError, ToolCallRecord
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
def test_a_full_rebuild_reads_the_session_table_once_and_usage_in_table_order(changed):
    with CaptureQueriesContext(connection) as captured:
        rollups.rebuild_rollups(now=LATER)
    session_table = Session._meta.db_table
    usage_table = ModelUsage._meta.db_table
    aggregations = [
        query["sql"]
        for query in captured.captured_queries
        if f"INSERT INTO {rollups.STAGE}" in query["sql"] and "GROUP BY" in query["sql"]
    ]
    by_usage = [sql for sql in aggregations if usage_table in sql]
    by_session = [sql for sql in aggregations if f'FROM "{session_table}" NOT INDEXED' in sql]
    # One scan of the sessions for the status, agent, user and duration series together.
    assert len(by_usage) == 1 and len(by_session) == 1
    assert f"SCAN {session_table}" in plan_of(by_session[0])
    plan = plan_of(by_usage[0])
    assert plan[0] == "SCAN u", plan  # usage rows in table order
    assert plan[1].startswith("SEARCH s USING INDEX") and "(id=?)" in plan[1], plan


@sqlite_only
def test_an_incremental_run_aggregates_its_hours_through_the_time_indexes(changed):
    with CaptureQueriesContext(connection) as captured:
        rollups.rollup_analytics(now=LATER + timedelta(minutes=1))
    statements = {re.sub(r"^\d+ times: ", "", query["sql"]) for query in captured.captured_queries}
    buckets = rollups.RollupBucket._meta.db_table
    aggregations = [
        sql
        for sql in statements
        if f"INSERT INTO {rollups.STAGE}" in sql and "GROUP BY" in sql and buckets not in sql
    ]
    assert len(aggregations) == 5  # sessions, usage, all and failed tool calls, errors
    sources = [m._meta.db_table for m in (Session, ModelUsage, ToolCallRecord, SessionError)]
    for sql in aggregations:
        with connection.cursor() as cursor:
            bounds = ["2026-01-01 00:00:00"] * sql.count("%s")
            cursor.execute("EXPLAIN QUERY PLAN " + sql, bounds)
            plan = [row[-1] for row in cursor.fetchall()]
        whole = [step for step in plan if step in {f"SCAN {table}" for table in sources}]
        assert not whole, plan
        assert any("started_at>?" in step or "occurred_at>?" in step for step in plan), plan


def test_sqlite_writes_to_a_temp_table_leave_the_main_database_unlocked(tmp_path):
    """What the stage relies on: aggregating into a TEMP table reads the main database but
    takes no write lock on it, so another connection can still write meanwhile."""
    path = tmp_path / "main.sqlite3"
    aggregating = sqlite3.connect(path, isolation_level=None)
    aggregating.execute("PRAGMA journal_mode=WAL")
    aggregating.execute("CREATE TABLE rows (hour TEXT)")
    aggregating.execute("INSERT INTO rows VALUES ('10'), ('10'), ('11')")
    aggregating.execute("CREATE TEMP TABLE stage (hour TEXT, n INTEGER)")
    aggregating.execute("BEGIN")
    aggregating.execute("INSERT INTO stage SELECT hour, COUNT(*) FROM rows GROUP BY hour")
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the stage held it
    writer.execute("INSERT INTO rows VALUES ('12')")
    writer.execute("COMMIT")
    aggregating.execute("COMMIT")
    assert aggregating.execute("SELECT COUNT(*) FROM stage").fetchone() == (2,)
    writer.close()
    aggregating.close()
