"""fold_otel_spans: acknowledged spans are never lost or doubled, whatever stops a fold."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from django.utils import timezone
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from sessions_api.ingest import otlp
from sessions_api.models import OtelSpan, Session
from sessions_api.storage import get_document_store
from tests.support.otel import recorded_spans, weather_turns

pytestmark = pytest.mark.django_db


def conversations(*names: str):
    def run(tracer) -> None:
        for name in names:
            with tracer.start_as_current_span("invoke_agent Bot") as span:
                span.set_attribute("gen_ai.operation.name", "invoke_agent")
                span.set_attribute("gen_ai.conversation.id", name)

    return run


def stored_span_ids(key: str) -> list[str]:
    row = Session.objects.get(format="otel", external_id=key)
    body = get_document_store().get(session_id=str(row.id), version=row.latest_version)
    return [span["span_id"] for span in json.loads(body)["spans"]]


@override_settings(OTEL_INLINE_FOLD_SPANS=0)  # every span waits for the job
def test_a_fold_killed_midway_leaves_the_rest_pending_and_the_next_run_finishes(
    monkeypatch,
) -> None:
    otlp.receive_export(request=encode_spans(recorded_spans(conversations("a", "b", "c"))))
    real = otlp.ingest_document

    def dies_on_b(**kwargs):
        if b'"id":"b"' in kwargs["body"]:
            raise KeyboardInterrupt  # the worker is killed here
        return real(**kwargs)

    monkeypatch.setattr(otlp, "ingest_document", dies_on_b)
    with pytest.raises(KeyboardInterrupt):
        otlp.fold_otel_spans(now=timezone.now())

    assert set(Session.objects.values_list("external_id", flat=True)) == {"a"}
    assert set(OtelSpan.objects.values_list("session_key", flat=True)) == {"b", "c"}

    monkeypatch.setattr(otlp, "ingest_document", real)
    result = otlp.fold_otel_spans(now=timezone.now())
    assert result.pending_spans == 0
    assert sorted(Session.objects.values_list("external_id", flat=True)) == ["a", "b", "c"]
    assert all(len(stored_span_ids(key)) == 1 for key in "abc")


def test_spans_received_again_after_their_fold_are_not_stored_twice() -> None:
    request = encode_spans(recorded_spans(weather_turns))
    otlp.ingest_export(request=request, now=timezone.now())
    row = Session.objects.get(format="otel")
    ids = stored_span_ids(row.external_id)

    otlp.ingest_export(request=request, now=timezone.now())  # the exporter's retry

    row.refresh_from_db()
    assert row.latest_version == 1
    assert stored_span_ids(row.external_id) == ids
    assert len(ids) == len(set(ids))
