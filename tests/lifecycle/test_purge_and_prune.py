"""purge_sessions and prune_versions, called as services."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sessions_api.lifecycle import prune, purge
from sessions_api.lifecycle.batches import FIRST_BATCH
from sessions_api.models import (
    Checkpoint,
    DocumentBody,
    DocumentVersion,
    JobRun,
    ModelUsage,
    RollupDirtyHour,
    Session,
    SessionError,
    ToolCallRecord,
)
from sessions_api.storage import get_document_store
from tests.support.job_sessions import T0, ingest, picoflow_doc
from workers import runs as jobs

pytestmark = pytest.mark.django_db
LATER = T0 + timedelta(days=30)


@pytest.fixture(autouse=True)
def policies(settings):
    settings.PURGE_EXPIRED_GRACE = "7d"
    settings.PURGE_RETENTION_POLICY = {"default": "never"}


def expire(session: Session, at) -> None:
    Session.objects.filter(id=session.id).update(
        status="expired", status_before_expiry="running", expired_at=at
    )


def test_purge_deletes_expired_past_grace_with_every_row(make_session):
    gone = make_session(tools=[("search", "error")])
    ingest(picoflow_doc(session_id=gone.external_id, extra_message="v2"))  # a second version
    expire(gone, T0)
    within_grace = make_session()
    expire(within_grace, LATER - timedelta(days=1))
    live = make_session()

    result = purge.purge_sessions(now=LATER)

    assert set(Session.objects.values_list("id", flat=True)) == {within_grace.id, live.id}
    counts = result.counts()
    assert counts["purged"] == counts["purged_expired"] == 1
    assert counts["versions_deleted"] == 2 and counts["bodies_deleted"] == 2
    assert result.details()["purged"] == [
        {
            "id": str(gone.id),
            "external_id": gone.external_id,
            "format": "picoflow",
            "agent": "TripFlow",
            "reason": "expired_grace",
        }
    ]
    for model in (DocumentVersion, ToolCallRecord, SessionError, ModelUsage):
        assert not model.objects.filter(session_id=gone.id).exists(), model.__name__
    assert not DocumentBody.objects.filter(session_id=str(gone.id)).exists()


def test_on_hold_is_never_purged(settings, make_session):
    settings.PURGE_RETENTION_POLICY = {"default": "1d"}
    held = make_session()
    expire(held, T0)
    Session.objects.filter(id=held.id).update(on_hold=True)
    assert purge.purge_sessions(now=LATER).counts()["purged"] == 0
    assert Session.objects.filter(id=held.id).exists()


def test_retention_per_agent_and_only_when_neither_active_nor_received(settings, make_session):
    settings.PURGE_RETENTION_POLICY = {"default": "never", "agent": {"ShortFlow": "10d"}}
    old_short = make_session(flow="ShortFlow")
    old_other = make_session(flow="OtherFlow")
    # An old conversation imported just now: its last activity is old, its receipt is not.
    imported = make_session(flow="ShortFlow", received=LATER - timedelta(hours=1))

    result = purge.purge_sessions(now=LATER)

    assert result.counts()["purged_retention"] == 1
    assert not Session.objects.filter(id=old_short.id).exists()
    assert Session.objects.filter(id=old_other.id).exists()
    assert Session.objects.filter(id=imported.id).exists()


def test_purge_in_small_batches_with_limit_and_remaining(make_session, stored):
    sessions = [make_session() for _ in range(7)]
    for session in sessions:
        expire(session, T0)

    first = purge.purge_sessions(now=LATER, batch_size=2, limit=5)
    assert first.counts()["purged"] == 5 and first.counts()["remaining"] == 2
    second = purge.purge_sessions(now=LATER, batch_size=2)
    assert second.counts()["purged"] == 2 and second.counts()["remaining"] == 0
    assert stored() == dict.fromkeys(stored(), 0)


def test_dry_run_lists_what_would_go_and_deletes_nothing(make_session, stored):
    session = make_session()
    expire(session, T0)
    before = stored()

    result = purge.purge_sessions(now=LATER, dry_run=True)

    assert stored() == before
    assert result.counts()["purged"] == 1 and result.counts()["versions_deleted"] == 1
    assert result.details()["would_purge"][0]["id"] == str(session.id)


def test_session_revived_between_select_and_delete_survives(monkeypatch, make_session):
    """Purge racing an append: a new version arrives after the batch was read."""
    session = make_session(session_id="revive")
    expire(session, T0)
    real = purge._purge_batch

    def revive_then_purge(**kwargs):
        ingest(picoflow_doc(session_id="revive", saved=LATER, extra_message="back"), now=LATER)
        return real(**kwargs)

    monkeypatch.setattr(purge, "_purge_batch", revive_then_purge)
    result = purge.purge_sessions(now=LATER)

    assert result.counts()["purged"] == 0 and result.counts()["skipped_changed"] == 1
    row = Session.objects.get(id=session.id)
    assert row.status == "running" and row.latest_version == 2


def test_every_purge_is_recorded_on_its_run(make_session):
    sessions = [make_session() for _ in range(3)]
    for session in sessions:
        expire(session, T0)

    run = jobs.request_run(job="purge_sessions", params={"batch_size": "2"}, triggered_by="test")
    record = jobs.execute_run(job="purge_sessions", run_id=run.id, triggered_by="test")

    stored = JobRun.objects.get(id=run.id)
    assert stored.status == "succeeded" and record.status == "succeeded"
    assert stored.params == {"batch_size": 2}
    assert stored.counts["purged"] == 3
    assert {item["id"] for item in stored.details["purged"]} == {str(s.id) for s in sessions}
    assert {item["reason"] for item in stored.details["purged"]} == {"expired_grace"}
    assert stored.started_at is not None and stored.finished_at >= stored.started_at


def test_purge_marks_the_analytics_hours_of_deleted_sessions_dirty(make_session):
    session = make_session(created=T0)
    expire(session, T0)
    purge.purge_sessions(now=LATER)
    hours = set(RollupDirtyHour.objects.values_list("hour", flat=True))
    assert T0 in hours  # started (and tool call) hour


def test_purge_starts_with_a_small_batch_whatever_its_batch_size(make_session):
    for index in range(FIRST_BATCH + 5):
        expire(make_session(session_id=f"gone-{index}", created=T0), T0)
    result = purge.purge_sessions(now=LATER, batch_size=500)
    assert result.counts()["purged"] == FIRST_BATCH + 5
    assert result.policy["batches"]["batches"] == 2  # FIRST_BATCH, then the rest


# --- prune_versions -------------------------------------------------------------------------


def make_versions(session_id: str, count: int) -> Session:
    for number in range(count):
        ingest(picoflow_doc(session_id=session_id, extra_message=f"v{number}"))
    return Session.objects.get(external_id=session_id)


def test_prune_keeps_newest_versions_and_their_bodies():
    session = make_versions("many", 5)
    few = make_versions("few", 2)

    result = prune.prune_versions(now=LATER, keep=2)

    assert list(session.versions.values_list("number", flat=True)) == [4, 5]
    assert sorted(
        DocumentBody.objects.filter(session_id=str(session.id)).values_list("version", flat=True)
    ) == [4, 5]
    assert few.versions.count() == 2
    assert result.counts() == {"sessions_pruned": 1, "versions_deleted": 3, "bodies_deleted": 3}
    assert prune.prune_versions(now=LATER, keep=2).counts()["versions_deleted"] == 0


def test_prune_keeps_pinned_checkpoints(monkeypatch):
    session = make_versions("pinned", 4)
    monkeypatch.setattr(
        prune,
        "pinned_checkpoint_versions",
        lambda *, session_ids: {session.id: {1}},
    )
    prune.prune_versions(now=LATER, keep=1)
    assert list(session.versions.values_list("number", flat=True)) == [1, 4]


def test_prune_dry_run_and_keep_from_settings(settings):
    settings.PRUNE_KEEP_VERSIONS = 3
    session = make_versions("dry", 5)
    result = prune.prune_versions(now=LATER, dry_run=True)
    assert result.counts()["versions_deleted"] == 2
    assert result.details()["would_prune"][0]["versions"] == [1, 2]
    assert session.versions.count() == 5
    with pytest.raises(ValueError):
        prune.prune_versions(now=LATER, keep=0)


def test_raw_body_of_kept_version_is_still_served():
    session = make_versions("served", 3)
    prune.prune_versions(now=LATER, keep=1)
    body = get_document_store().get(session_id=str(session.id), version=3)
    assert json.loads(body)["id"] == "served"


def test_prune_reads_pins_under_its_lock(monkeypatch):
    """A checkpoint pinned while prune waits for the session's lock is honoured: pins are read
    after the lock is taken, not before."""
    session = make_versions("pin-race", 4)
    take_locks = Session.objects.select_for_update

    def pin_then_lock(*args, **kwargs):
        # The editor's checkpoint commits just before prune gets the lock.
        Checkpoint.objects.get_or_create(
            session=session, name="late", defaults={"version": 2, "created_at": LATER}
        )
        return take_locks(*args, **kwargs)

    monkeypatch.setattr(Session.objects, "select_for_update", pin_then_lock)
    prune.prune_versions(now=LATER, keep=1)
    assert list(session.versions.values_list("number", flat=True)) == [2, 4]
