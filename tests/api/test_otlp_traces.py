"""POST /v1/traces: OTLP/HTTP as the OpenTelemetry SDK exports it (protobuf or JSON, gzip),
answered the OTLP way (partial_success), with the API's keys, limits and hostile-input rules."""

from __future__ import annotations

import gzip
import itertools
import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from sessions_api.ingest.otlp import fold_otel_spans
from sessions_api.models import DocumentVersion, OtelSpan, OtelTrace, Session
from tests.support.otel import CONVERSATION, export_body, recorded_spans, weather_turns

pytestmark = pytest.mark.django_db
PROTOBUF = "application/x-protobuf"
GZIP = {"Content-Encoding": "gzip"}


@pytest.fixture
def post(client, make_api_key):
    key = make_api_key("ingest")

    def send(
        body: bytes,
        *,
        content_type: str = PROTOBUF,
        key: str | None = key,
        fold: bool = True,
        **headers,
    ):
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        response = client.post("/v1/traces", body, content_type=content_type, headers=headers)
        if fold:  # what the fold_otel_spans job does a few seconds later
            fold_otel_spans(now=timezone.now())
        return response

    return send


def answer(response) -> ExportTraceServiceResponse:
    message = ExportTraceServiceResponse()
    message.ParseFromString(response.content)
    return message


@override_settings(OTEL_INLINE_FOLD_SPANS=0)
def test_the_answer_waits_for_the_spans_only_and_the_fold_makes_them_a_session(post) -> None:
    spans = recorded_spans(weather_turns)

    assert post(export_body(spans), fold=False).status_code == 200

    assert OtelSpan.objects.count() == len(spans)
    assert not Session.objects.exists()
    result = fold_otel_spans(now=timezone.now())
    assert (result.folded_spans, result.sessions_changed, result.pending_spans) == (8, 1, 0)
    assert Session.objects.get().external_id == CONVERSATION


def test_a_small_export_is_in_its_session_when_answered(post) -> None:
    spans = recorded_spans(weather_turns)

    assert post(export_body(spans), fold=False).status_code == 200

    assert not OtelSpan.objects.exists()
    assert Session.objects.get().message_count == 8


@override_settings(OTEL_INLINE_FOLD_SPANS=4)
def test_a_larger_export_waits_for_the_fold(post) -> None:
    assert post(export_body(recorded_spans(weather_turns)), fold=False).status_code == 200
    assert OtelSpan.objects.count() == 8


def test_an_sdk_export_becomes_one_session_with_every_span(post, api) -> None:
    spans = recorded_spans(weather_turns)

    response = post(export_body(spans))

    assert response.status_code == 200
    assert response["Content-Type"] == PROTOBUF
    assert not answer(response).HasField("partial_success")
    row = Session.objects.get(format="otel")
    assert row.external_id == CONVERSATION
    summary = api.get(f"/sessions/{row.id}").json()["summary"]
    assert summary["message_count"] == 8
    assert (summary["tool_call_count"], summary["tool_error_count"]) == (2, 1)
    assert (summary["input_tokens"], summary["output_tokens"]) == (60, 24)
    assert summary["agent"] == "WeatherBot"
    assert summary["status"] == "running"  # until it has been idle (close_idle_otel_sessions)
    raw = json.loads(api.get(f"/sessions/{row.id}/raw").content)
    assert len(raw["spans"]) == len(spans)


def test_json_and_gzip_are_read_and_answered_in_kind(post) -> None:
    body = gzip.compress(export_body(recorded_spans(weather_turns), as_json=True))

    response = post(body, content_type="application/json", **GZIP)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {}
    assert Session.objects.filter(format="otel", external_id=CONVERSATION).exists()


def test_spans_sent_a_few_at_a_time_append_versions_and_a_resend_changes_nothing(post) -> None:
    spans = sorted(recorded_spans(weather_turns), key=lambda s: s.end_time)
    for start in range(0, len(spans), 3):
        assert post(export_body(spans[start : start + 3])).status_code == 200
    row = Session.objects.get(format="otel")
    versions = row.versions.count()
    assert versions >= 2  # the first spans went to their trace until the conversation showed
    bodies = [_body(row, number) for number in range(1, versions + 1)]
    # Each version is the one before it with spans appended.
    for before, after in itertools.pairwise(bodies):
        assert after.startswith(before[:-3])

    assert post(export_body(spans)).status_code == 200
    row.refresh_from_db()
    assert row.versions.count() == versions
    assert Session.objects.filter(format="otel").count() == 1


def _body(row: Session, number: int) -> bytes:
    from sessions_api.storage import get_document_store

    return get_document_store().get(session_id=str(row.id), version=number)


def test_children_exported_before_their_conversation_is_known_join_it_later(post) -> None:
    spans = recorded_spans(weather_turns)
    agent_spans = [s for s in spans if s.name.startswith("invoke_agent")]
    children = [s for s in spans if s not in agent_spans]

    post(export_body(children))
    # Grouped by trace until a span says which conversation they belong to.
    assert Session.objects.filter(format="otel").count() == 2
    post(export_body(agent_spans))

    (row,) = Session.objects.filter(format="otel")
    assert row.external_id == CONVERSATION
    assert row.message_count == 8
    assert set(OtelTrace.objects.values_list("session_key", flat=True)) == {CONVERSATION}


def test_a_trace_is_remembered_while_it_sends_spans_and_forgotten_a_memory_later(post) -> None:
    spans = recorded_spans(weather_turns)
    children = [s for s in spans if not s.name.startswith("invoke_agent")]
    post(export_body(children[:2]))
    traces = set(OtelTrace.objects.values_list("trace_id", flat=True))
    assert traces
    # Two hours later the same traces send more spans: they are remembered from then.
    OtelTrace.objects.update(received_at=timezone.now() - timedelta(hours=2))
    sent_again = timezone.now()
    post(export_body(children[2:]))
    assert not OtelTrace.objects.filter(received_at__lt=sent_again).exists()
    traces = set(OtelTrace.objects.values_list("trace_id", flat=True))

    kept = fold_otel_spans(now=sent_again + timedelta(days=6, hours=23))
    forgot = fold_otel_spans(now=timezone.now() + timedelta(days=7, minutes=1))

    assert kept.forgotten_traces == 0
    assert forgot.forgotten_traces == len(traces)
    assert forgot.counts()["forgotten_traces"] == len(traces)
    assert not OtelTrace.objects.exists()
    assert Session.objects.filter(format="otel").exists()  # the sessions themselves stay


@override_settings(OTEL_TRACE_MEMORY="never")
def test_a_trace_memory_of_never_keeps_every_trace(post) -> None:
    post(export_body(recorded_spans(weather_turns)))
    remembered = OtelTrace.objects.count()

    assert fold_otel_spans(now=timezone.now() + timedelta(days=3650)).forgotten_traces == 0
    assert OtelTrace.objects.count() == remembered > 0


def test_bad_spans_are_counted_with_their_reason_and_the_rest_stored(post) -> None:
    request = encode_spans(recorded_spans(weather_turns))
    scope_spans = request.resource_spans[0].scope_spans[0]
    scope_spans.spans[0].span_id = b"\x00" * 8
    scope_spans.spans[1].trace_id = b"short"
    scope_spans.spans[2].attributes.add(key="note").value.string_value = "nul\x00here"

    response = post(request.SerializeToString())

    assert response.status_code == 200
    partial = answer(response).partial_success
    assert partial.rejected_spans == 3
    assert "span_id" in partial.error_message and "trace_id" in partial.error_message
    assert "NUL" in partial.error_message
    assert Session.objects.filter(format="otel").exists()


def test_a_body_that_does_not_decode_is_a_400_never_a_500(post) -> None:
    response = post(b"\xff\x00garbage")
    assert response.status_code == 400
    status = status_pb2.Status()
    status.ParseFromString(response.content)
    assert "protobuf" in status.message

    assert post(b"{not json", content_type="application/json").status_code == 400
    assert post(b"[1, 2]", content_type="application/json").status_code == 400
    assert post(b"\x1f\x8bnot gzip", **GZIP).status_code == 400
    assert post(b"{}", content_type="text/plain").status_code == 415
    assert Session.objects.count() == 0


def test_keys_and_scopes_are_the_apis(post, make_api_key) -> None:
    body = export_body(recorded_spans(weather_turns))
    assert post(body, key=None).status_code == 401
    assert post(body, key="not-a-key").status_code == 401
    assert post(body, key=make_api_key("read")).status_code == 403
    assert Session.objects.count() == 0


@override_settings(INGEST_MAX_BATCH_BYTES=10_000)
def test_a_gzip_bomb_is_refused_before_it_inflates(post) -> None:
    bomb = gzip.compress(b"\x00" * 5_000_000)
    assert len(bomb) < 10_000
    assert post(bomb, **GZIP).status_code == 413


def test_an_empty_export_is_accepted(post) -> None:
    response = post(b"")
    assert response.status_code == 200
    assert DocumentVersion.objects.count() == 0


def test_only_post_is_allowed(client) -> None:
    assert client.get("/v1/traces").status_code == 405
