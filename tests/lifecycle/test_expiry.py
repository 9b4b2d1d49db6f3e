"""expire_sessions and detect_stuck_sessions, called as services."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessions_api.lifecycle import batches, expiry
from sessions_api.lifecycle.stuck import detect_stuck_sessions
from sessions_api.models import Session
from tests.support.job_sessions import T0, ingest, picoflow_doc

pytestmark = pytest.mark.django_db
LATER = T0 + timedelta(days=30)


@pytest.fixture(autouse=True)
def idle_policy(settings):
    settings.EXPIRY_IDLE_POLICY = {"default": "7d", "format": {}, "agent": {}}


def test_own_expiry_passed_expires_and_keeps_previous_status(make_session):
    due = make_session(status="completed", expire_after=3600)
    not_yet = make_session(status="running", expire_after=3600, saved=T0 + timedelta(hours=2))

    result = expiry.expire_sessions(now=T0 + timedelta(hours=2))

    due.refresh_from_db()
    not_yet.refresh_from_db()
    assert (due.status, due.status_before_expiry, due.expired_at) == (
        "expired",
        "completed",
        T0 + timedelta(hours=2),
    )
    assert not_yet.status == "running" and not_yet.expired_at is None
    assert result.counts()["expired_own_expiry"] == 1
    assert result.details()["expired"][0]["id"] == str(due.id)
    assert result.details()["expired"][0]["reason"] == "own_expiry"


def test_session_on_hold_never_expires(make_session):
    held = make_session(expire_after=60)
    Session.objects.filter(id=held.id).update(on_hold=True)
    idle_held = make_session()
    Session.objects.filter(id=idle_held.id).update(on_hold=True)

    result = expiry.expire_sessions(now=LATER)

    assert result.counts()["expired"] == 0
    assert set(Session.objects.values_list("status", flat=True)) == {"running"}


def test_idle_policy_applies_per_agent_then_format_then_default(settings, make_session):
    settings.EXPIRY_IDLE_POLICY = {
        "default": "7d",
        "format": {"picoflow": "2d"},
        "agent": {"FastFlow": "1h", "KeepFlow": "never"},
    }
    fast = make_session(flow="FastFlow")
    keep = make_session(flow="KeepFlow")
    normal = make_session(flow="TripFlow")
    now = T0 + timedelta(hours=3)  # past FastFlow's hour only

    assert expiry.expire_sessions(now=now).counts()["expired_idle"] == 1
    assert Session.objects.get(id=fast.id).status == "expired"

    expiry.expire_sessions(now=T0 + timedelta(days=3))  # past picoflow's 2 days
    assert Session.objects.get(id=normal.id).status == "expired"
    expiry.expire_sessions(now=T0 + timedelta(days=300))
    assert Session.objects.get(id=keep.id).status == "running"


def test_idle_expiry_skips_finished_sessions_and_own_expiry_sessions(make_session):
    completed = make_session(status="completed")
    own = make_session(status="running", expire_after=10**8)  # far future own expiry
    unknown = make_session(status="running")
    Session.objects.filter(id=unknown.id).update(status="unknown")

    expiry.expire_sessions(now=LATER)

    assert Session.objects.get(id=completed.id).status == "completed"
    assert Session.objects.get(id=own.id).status == "running"
    row = Session.objects.get(id=unknown.id)
    assert (row.status, row.status_before_expiry) == ("expired", "unknown")


def test_idle_policy_from_environment(monkeypatch, settings, make_session):
    del settings.EXPIRY_IDLE_POLICY
    monkeypatch.setenv("EXPIRY_IDLE_DEFAULT", "never")
    monkeypatch.setenv("EXPIRY_IDLE_BY_AGENT", "TripFlow=30m")
    trip = make_session(flow="TripFlow")
    other = make_session(flow="OtherFlow")

    expiry.expire_sessions(now=T0 + timedelta(hours=1))

    assert Session.objects.get(id=trip.id).status == "expired"
    assert Session.objects.get(id=other.id).status == "running"


def test_running_twice_changes_nothing_more(make_session):
    make_session(expire_after=60)
    first = expiry.expire_sessions(now=LATER)
    second = expiry.expire_sessions(now=LATER + timedelta(minutes=5))
    assert first.counts()["expired"] == 1
    assert second.counts()["expired"] == 0
    assert Session.objects.get().expired_at == LATER


def test_dry_run_lists_and_changes_nothing(make_session):
    session = make_session(expire_after=60)
    result = expiry.expire_sessions(now=LATER, dry_run=True)
    assert result.counts()["expired"] == 1
    assert result.details()["would_expire"][0]["id"] == str(session.id)
    assert Session.objects.get().status == "running"


def test_batches_expire_everything(make_session):
    for _ in range(7):
        make_session(expire_after=60)
    result = expiry.expire_sessions(now=LATER, batch_size=2)
    assert result.counts()["expired"] == 7
    assert not Session.objects.exclude(status="expired").exists()


# --- expiry racing an append ----------------------------------------------------------------


def test_session_updated_after_the_cutoff_is_not_expired(monkeypatch, make_session):
    """The append lands between the job's SELECT and its UPDATE: the UPDATE re-checks."""
    session = make_session(session_id="race-1", saved=T0)
    real_batch = expiry._expire_batch

    def append_then_expire(**kwargs):
        # A new save one minute before "now": inside the idle window again.
        ingest(
            picoflow_doc(
                session_id="race-1", saved=LATER - timedelta(minutes=1), extra_message="hi"
            ),
            now=LATER - timedelta(minutes=1),
        )
        return real_batch(**kwargs)

    monkeypatch.setattr(expiry, "_expire_batch", append_then_expire)
    result = expiry.expire_sessions(now=LATER)

    row = Session.objects.get(id=session.id)
    assert row.status == "running" and row.expired_at is None and row.latest_version == 2
    assert result.counts() == {
        "expired": 0,
        "expired_own_expiry": 0,
        "expired_idle": 0,
        "skipped_changed": 1,
    }


def test_new_version_with_same_times_is_not_expired_from_a_stale_read(make_session):
    """Guard on latest_version too: rows read at version 1 do not expire version 2."""
    session = make_session(session_id="race-2", saved=T0)
    condition = expiry.expiry_conditions(now=LATER)["idle"]
    stale_rows = list(Session.objects.filter(id=session.id).values(*batches.ROW_FIELDS))
    ingest(picoflow_doc(session_id="race-2", saved=T0, extra_message="same time"), now=T0)

    done, _ = expiry._expire_batch(rows=stale_rows, condition=condition, now=LATER)
    assert done == set()
    assert Session.objects.get(id=session.id).status == "running"


def test_an_expired_session_that_receives_a_new_version_lives_again(make_session):
    session = make_session(session_id="again", expire_after=60)
    expiry.expire_sessions(now=LATER)
    ingest(
        picoflow_doc(session_id="again", expire_after=3600, saved=LATER, extra_message="back"),
        now=LATER,
    )
    row = Session.objects.get(id=session.id)
    assert row.status == "running"
    assert expiry.expire_sessions(now=LATER + timedelta(minutes=1)).counts()["expired"] == 0


# --- detect_stuck_sessions ------------------------------------------------------------------


def test_stuck_sessions_are_flagged_and_cleared_when_they_move_on(settings, make_session):
    settings.STUCK_AFTER_POLICY = {"default": "30m"}
    stuck = make_session(session_id="stuck", saved=T0)
    fresh = make_session(session_id="fresh", saved=T0 + timedelta(minutes=50))
    done = make_session(session_id="done", status="completed", saved=T0)
    now = T0 + timedelta(hours=1)

    result = detect_stuck_sessions(now=now)

    assert result.counts()["flagged"] == 1
    assert Session.objects.get(id=stuck.id).stuck_since == now
    assert Session.objects.get(id=fresh.id).stuck_since is None
    assert Session.objects.get(id=done.id).stuck_since is None
    assert detect_stuck_sessions(now=now).counts()["flagged"] == 0  # idempotent

    # A new version clears the mark at once; the job then has nothing left to clear.
    ingest(picoflow_doc(session_id="stuck", saved=now, extra_message="alive"), now=now)
    assert Session.objects.get(id=stuck.id).stuck_since is None
    cleared = detect_stuck_sessions(now=now + timedelta(minutes=1))
    assert cleared.counts() == {**cleared.counts(), "flagged": 0, "cleared": 0}


def test_stuck_dry_run_changes_nothing(settings, make_session):
    settings.STUCK_AFTER_POLICY = {"default": "30m"}
    make_session(saved=T0)
    result = detect_stuck_sessions(now=T0 + timedelta(hours=1), dry_run=True)
    assert result.counts()["flagged"] == 1
    assert Session.objects.get().stuck_since is None
