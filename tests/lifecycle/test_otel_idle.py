"""close_idle_otel_sessions: an OpenTelemetry session ends once every trace has closed its root
span and no span has arrived for OTEL_SESSION_IDLE; a new span makes it running again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.trace import Status, StatusCode

from sessions_api.ingest.otlp import ingest_export
from sessions_api.lifecycle.otel_idle import close_idle_otel_sessions
from sessions_api.models import Session
from tests.support.otel import recorded_spans, weather_turns

pytestmark = pytest.mark.django_db


def store(spans, *, now) -> Session:
    outcome = ingest_export(request=encode_spans(spans), now=now)
    assert outcome.rejected_spans == 0
    return Session.objects.get(format="otel")


def test_a_closed_conversation_ends_after_the_idle_time_and_not_before() -> None:
    now = timezone.now()
    row = store(recorded_spans(weather_turns), now=now)
    assert (row.status, row.raw_status) == ("running", "roots closed")

    early = close_idle_otel_sessions(now=now + timedelta(minutes=4))
    assert early.closed == 0
    dry = close_idle_otel_sessions(now=now + timedelta(minutes=6), dry_run=True)
    assert dry.closed == 1
    row.refresh_from_db()
    assert row.status == "running"

    assert close_idle_otel_sessions(now=now + timedelta(minutes=6)).closed == 1
    row.refresh_from_db()
    assert row.status == "completed"


def test_a_trace_still_waiting_for_its_root_does_not_end() -> None:
    now = timezone.now()
    children = [s for s in recorded_spans(weather_turns) if s.parent is not None]
    for span in children:
        span._attributes = {**span.attributes, "gen_ai.conversation.id": "open-one"}
    row = store(children, now=now)
    assert row.raw_status == "roots open"
    assert close_idle_otel_sessions(now=now + timedelta(hours=1)).closed == 0


def test_a_failed_last_root_ends_as_error_and_new_spans_revive_the_session() -> None:
    def failing(tracer) -> None:
        with tracer.start_as_current_span("invoke_agent Bot") as span:
            span.set_attribute("gen_ai.operation.name", "invoke_agent")
            span.set_attribute("gen_ai.conversation.id", "fails")
            span.set_status(Status(StatusCode.ERROR, "boom"))

    now = timezone.now()
    store(recorded_spans(failing), now=now)
    close_idle_otel_sessions(now=now + timedelta(minutes=10))
    row = Session.objects.get(format="otel")
    assert row.status == "error"

    store(recorded_spans(failing), now=now + timedelta(minutes=11))
    row.refresh_from_db()
    assert row.status == "running"


@override_settings(OTEL_SESSION_IDLE="never")
def test_never_leaves_them_running() -> None:
    now = timezone.now()
    store(recorded_spans(weather_turns), now=now)
    assert close_idle_otel_sessions(now=now + timedelta(days=30)).closed == 0
