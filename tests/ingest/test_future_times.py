"""Documents dated far ahead of their receipt are clamped to the receipt for ordering and for
the lifecycle policies, with a warning: they neither sort first forever nor escape expiry,
the stuck flag and purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sessions_api.lifecycle import expiry, purge
from sessions_api.lifecycle.stuck import detect_stuck_sessions
from sessions_api.models import Session
from sessions_api.sessions import selectors
from tests.support.job_sessions import T0, ingest, picoflow_doc

pytestmark = pytest.mark.django_db

YEAR_2199 = datetime(2199, 6, 1, tzinfo=UTC)


def future_session(session_id: str = "from-2199", **kwargs) -> Session:
    doc = picoflow_doc(session_id=session_id, created=YEAR_2199, **kwargs)
    return ingest(doc, now=T0)


def test_far_future_times_are_clamped_to_the_receipt_with_a_warning():
    row = future_session()
    assert row.started_at == T0 and row.updated_at == T0
    assert any(w["code"] == "time_in_future" for w in row.warnings)
    assert all(call.occurred_at == T0 for call in row.tool_calls.all())


def test_a_clock_a_little_fast_is_kept_as_written():
    created = T0 + timedelta(minutes=20)
    row = ingest(picoflow_doc(session_id="fast-clock", created=created), now=T0)
    assert row.started_at == created
    assert not any(w["code"] == "time_in_future" for w in row.warnings)


def test_a_future_session_sorts_by_its_receipt():
    future_session()
    later = ingest(picoflow_doc(session_id="later", created=T0), now=T0 + timedelta(minutes=6))
    listed = selectors.list_sessions(filters=selectors.SessionFilters(), limit=10).items
    assert [record.external_id for record in listed] == [later.external_id, "from-2199"]


def test_a_future_session_still_idles_into_expiry_and_is_flagged_stuck(settings):
    settings.STUCK_AFTER_POLICY = {"default": "30m"}
    row = future_session()
    assert detect_stuck_sessions(now=T0 + timedelta(hours=1)).counts()["flagged"] == 1
    expiry.expire_sessions(now=T0 + timedelta(days=8))  # past the default 7 idle days
    assert Session.objects.get(id=row.id).status == "expired"


def test_a_future_session_is_purged_by_retention(settings):
    settings.PURGE_RETENTION_POLICY = {"default": "30d"}
    row = future_session(status="completed")
    result = purge.purge_sessions(now=T0 + timedelta(days=31))
    assert result.counts()["purged_retention"] == 1
    assert not Session.objects.filter(id=row.id).exists()


def test_an_own_expiry_centuries_away_is_brought_within_a_year():
    doc = picoflow_doc(
        session_id="expires-late", created=T0, expire_after=100 * 365 * 86400
    )  # a century
    row = ingest(doc, now=T0 + timedelta(minutes=5))
    assert row.expires_at == T0 + timedelta(minutes=5, days=366)
    assert any(w["code"] == "expiry_too_far" for w in row.warnings)
    expiry.expire_sessions(now=T0 + timedelta(days=367))
    assert Session.objects.get(id=row.id).status == "expired"
