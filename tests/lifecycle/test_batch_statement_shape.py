"""The shape of expire and purge that their benchmark depends on (docs/BENCHMARKS.md, B7).

No timing here: the query plans of the statements that run under the write lock, how many
statements a batch costs, and that the direct deletes do what Django's cascade would.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models.signals import pre_delete
from django.test.utils import CaptureQueriesContext

from sessions_api.lifecycle import expiry, purge
from sessions_api.models import (
    AuditEntry,
    Checkpoint,
    DocumentBody,
    DocumentVersion,
    ModelUsage,
    Session,
    SessionError,
    ToolCallRecord,
)
from tests.support.job_sessions import T0

pytestmark = pytest.mark.django_db
LATER = T0 + timedelta(days=30)
SESSION_TABLE = Session._meta.db_table
BY_ID = re.compile(rf'WHERE .*"{SESSION_TABLE}"\."id" IN \(')
SESSION_STEP = re.compile(rf"^(SEARCH|SCAN) {SESSION_TABLE}\b")

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="EXPLAIN QUERY PLAN is SQLite's planner"
)


@pytest.fixture(autouse=True)
def policies(settings):
    settings.PURGE_EXPIRED_GRACE = "7d"
    settings.PURGE_RETENTION_POLICY = {"default": "never"}
    settings.EXPIRY_IDLE_POLICY = {"default": "7d", "format": {}, "agent": {}}


def expire(session: Session, at=T0) -> None:
    Session.objects.filter(id=session.id).update(
        status="expired", status_before_expiry="running", expired_at=at
    )


def expired_sessions(make_session, count: int) -> list[Session]:
    sessions = [make_session(tools=[("search", "error")]) for _ in range(count)]
    for session in sessions:
        expire(session)
    return sessions


def statements(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in captured.captured_queries]


def plan_of(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return [row[-1] for row in cursor.fetchall()]


def assert_primary_key_only(sqls: list[str]) -> None:
    """Every statement that re-checks or writes sessions by id reaches them through the
    primary key. (Reads before the transaction, such as the rollup hours, are not checked.)"""
    by_id = [
        sql
        for sql in sqls
        if BY_ID.search(sql) and (not sql.startswith("SELECT") or "CASE WHEN" in sql)
    ]
    assert by_id, "no statement acted on sessions by id"
    for sql in by_id:
        plan = plan_of(sql)
        # The first step is how the statement finds its rows; later ones on a DELETE are the
        # foreign key checks (branches pointing at a deleted session), by their own index.
        access = next((step for step in plan if SESSION_STEP.match(step)), "")
        assert f"INDEX sqlite_autoindex_{SESSION_TABLE}_1 (id=?)" in access, (plan, sql[:300])


# --- query plans ------------------------------------------------------------------------------


def give_sessions_large_table_statistics() -> None:
    """sqlite_stat1 as ANALYZE would write it for 100,000 sessions, 80,000 of them expired
    (the few test rows would make any plan a scan)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT idx FROM sqlite_stat1 WHERE tbl = %s", [SESSION_TABLE])
        for (index,) in cursor.fetchall():
            unique = index.startswith("sqlite_autoindex_") and index.endswith("_1")
            stat = "100000 1" if unique else "100000 20000 1"
            cursor.execute(
                "UPDATE sqlite_stat1 SET stat = %s WHERE tbl = %s AND idx = %s",
                [stat, SESSION_TABLE, index],
            )
        cursor.execute("ANALYZE sqlite_schema")  # reload the statistics


@sqlite_only
@pytest.mark.parametrize("statistics", [False, True], ids=["fresh", "large-table-stats"])
def test_purge_rechecks_its_batch_by_primary_key(make_session, statistics):
    """Fresh database (no sqlite_stat1): the plain ``status = 'expired' AND id IN (...)`` would
    walk the status index over every expired row in every batch; the re-check must not, and
    must not depend on statistics either."""
    expired_sessions(make_session, 3)
    if statistics:
        give_sessions_large_table_statistics()

    with CaptureQueriesContext(connection) as captured:
        result = purge.purge_sessions(now=LATER)

    assert result.counts()["purged"] == 3
    assert_primary_key_only(statements(captured))


@sqlite_only
def test_expire_updates_and_verifies_its_batch_by_primary_key(make_session):
    for _ in range(3):
        make_session(expire_after=60)  # own expiry
    make_session()  # idle

    with CaptureQueriesContext(connection) as captured:
        result = expiry.expire_sessions(now=LATER)

    assert result.counts()["expired"] == 4
    writes = [sql for sql in statements(captured) if sql.startswith("UPDATE")]
    assert writes and all(BY_ID.search(sql) for sql in writes)
    assert_primary_key_only(statements(captured))


@sqlite_only
def test_own_expiry_batches_seek_forward_on_the_expiry_index(make_session):
    for _ in range(4):
        make_session(expire_after=60)

    with CaptureQueriesContext(connection) as captured:
        result = expiry.expire_sessions(now=LATER, batch_size=2)

    assert result.counts()["expired_own_expiry"] == 4
    selects = [
        sql
        for sql in statements(captured)
        if sql.startswith("SELECT") and '"expires_at" <=' in sql and "LIMIT 2" in sql
    ]
    assert len(selects) == 3  # two batches, then the empty one
    for sql in selects[1:]:  # after the first batch: from where it ended, in index order
        assert '"expires_at" >=' in sql
        assert any("expires_at" in step and "INDEX" in step for step in plan_of(sql))


# --- statements per batch ---------------------------------------------------------------------


def purge_statements(make_session, count: int) -> list[str]:
    expired_sessions(make_session, count)
    with CaptureQueriesContext(connection) as captured:
        result = purge.purge_sessions(now=LATER, batch_size=count)
    assert result.counts()["purged"] == count
    return statements(captured)


def test_a_purge_batch_costs_the_same_statements_whatever_its_size(make_session):
    purge_statements(make_session, 1)  # the first purge also creates the rollups' dirty-hours row
    small = purge_statements(make_session, 2)
    large = purge_statements(make_session, 7)
    assert len(large) == len(small)
    # Bodies go in one statement for the batch, not one per session.
    body_deletes = [sql for sql in large if DocumentBody._meta.db_table in sql and "DELETE" in sql]
    assert len(body_deletes) == 1


def test_purge_does_not_load_the_sessions_it_deletes(make_session):
    """Django's collector would SELECT every column of every session before deleting it."""
    sqls = purge_statements(make_session, 3)
    loads = [sql for sql in sqls if sql.startswith("SELECT") and '"raw_status"' in sql]
    assert loads == []


def test_an_expire_batch_costs_the_same_statements_whatever_its_size(make_session):
    def run(count: int) -> int:
        for _ in range(count):
            make_session(expire_after=60)
        with CaptureQueriesContext(connection) as captured:
            result = expiry.expire_sessions(now=LATER, batch_size=count)
        assert result.counts()["expired"] == count
        return len(captured.captured_queries)

    assert run(2) == run(6)


# --- the direct deletes do what on_delete says ------------------------------------------------


def test_purge_applies_every_relation_like_the_cascade(make_session):
    parent, other = expired_sessions(make_session, 2)
    branch = make_session()
    Session.objects.filter(id=branch.id).update(parent_session=parent, branched_from_version=1)
    Checkpoint.objects.create(session=parent, version=1, name="keep me", created_at=T0)
    audit = AuditEntry.objects.create(
        session=parent,
        session_key=str(parent.id),
        actor_label="user:alice",
        action=AuditEntry.Action.HOLD,
        created_at=T0,
    )

    result = purge.purge_sessions(now=LATER)

    assert result.counts()["purged"] == 2 and result.counts()["versions_deleted"] == 2
    assert result.counts()["bodies_deleted"] == 2
    gone = [parent.id, other.id]
    assert not Session.objects.filter(id__in=gone).exists()
    for model in (DocumentVersion, ToolCallRecord, SessionError, ModelUsage, Checkpoint):
        assert not model.objects.filter(session_id__in=gone).exists(), model.__name__
    assert not DocumentBody.objects.filter(session_id__in=[str(i) for i in gone]).exists()
    # SET_NULL: the audit entry outlives its session, the branch loses its parent.
    audit.refresh_from_db()
    assert audit.session_id is None and audit.session_key == str(parent.id)
    branch.refresh_from_db()
    assert branch.parent_session_id is None
    assert ToolCallRecord.objects.filter(session_id=branch.id).exists()


def test_a_delete_signal_receiver_sends_purge_through_djangos_collector(make_session):
    sessions = expired_sessions(make_session, 2)
    seen: list = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.id)

    pre_delete.connect(receiver, sender=Session, dispatch_uid="test-purge-receiver")
    try:
        result = purge.purge_sessions(now=LATER)
    finally:
        pre_delete.disconnect(sender=Session, dispatch_uid="test-purge-receiver")

    assert sorted(seen) == sorted(s.id for s in sessions)
    assert result.counts()["purged"] == 2 and result.counts()["versions_deleted"] == 2
    assert not DocumentVersion.objects.exists()


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_purge_leaves_the_connections_checkpoint_setting_as_it_was(make_session):
    expired_sessions(make_session, 2)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint=777")
    try:
        assert purge.purge_sessions(now=LATER, batch_size=1).counts()["purged"] == 2
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint")
            assert cursor.fetchone()[0] == 777
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint=1000")
