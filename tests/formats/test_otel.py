"""The otel adapter: spans of a GenAI-instrumented agent, recorded by the OpenTelemetry SDK,
read as one session: messages without resent history, tool calls paired with their results and
errors, tokens, model, agent, user, steps and status."""

from __future__ import annotations

import json
import random

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from sessions_api.domain import Role, SessionStatus, StatusSource, ToolStatus
from sessions_api.formats.otel.parse import parse
from sessions_api.formats.registry import detect_format
from sessions_api.ingest.otlp import ExportOutcome, read_export, render_document
from tests.support.otel import CONVERSATION, recorded_spans, weather_turns


def otel_document(spans, *, key: str = CONVERSATION, shuffle: int | None = None) -> dict:
    outcome = ExportOutcome()
    read, _ = read_export(encode_spans(spans), outcome)
    assert outcome.rejected_spans == 0
    rows = [span for span, _key in read]
    if shuffle is not None:
        random.Random(shuffle).shuffle(rows)
    return json.loads(render_document(key, "gen_ai.conversation.id", rows))


def test_a_conversation_over_two_traces_reads_as_one_transcript() -> None:
    doc = otel_document(recorded_spans(weather_turns))
    session = parse(doc).session

    roles = [m.role for m in session.messages]
    assert roles == [
        Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT,
        Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT,
    ]  # fmt: skip
    assert session.messages[0].content_text == "What is the weather in Paris?"
    assert session.messages[3].content_text == "It is 18C."
    assert session.messages[4].content_text == "And in Oslo?"
    assert session.metadata["traces"] == 2
    assert session.external_id == CONVERSATION


def test_tool_calls_carry_their_results_and_the_failed_one_is_an_explicit_error() -> None:
    session = parse(otel_document(recorded_spans(weather_turns))).session

    first, second = session.tool_calls
    assert (first.call_id, first.name, first.arguments) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    assert first.result_content == "18C and sunny"
    assert (first.status, first.status_source) == (ToolStatus.SUCCESS, StatusSource.EXPLICIT)
    assert second.status is ToolStatus.ERROR
    assert second.status_source is StatusSource.EXPLICIT
    assert "weather service timed out for Oslo" in session.messages[6].content_text


def test_tokens_model_agent_user_and_status() -> None:
    session = parse(otel_document(recorded_spans(weather_turns))).session

    assert (session.tokens.input, session.tokens.output, session.tokens.total) == (60, 24, 84)
    assert session.models == ["gpt-4o-2024-08-06"]
    assert session.agent_name == "WeatherBot"
    assert session.user_id == "ada"
    # Ended only once idle too (lifecycle/otel_idle.py): the roots say it may end.
    assert (session.status, session.raw_status) == (SessionStatus.RUNNING, "roots closed")
    assert [step.name for step in session.steps] == ["WeatherBot", "WeatherBot"]
    assert session.messages[1].tokens.input == 10
    assert session.created_at is not None and session.updated_at > session.created_at


def test_the_order_spans_arrived_in_does_not_change_the_session() -> None:
    spans = recorded_spans(weather_turns)
    in_order = parse(otel_document(spans)).session
    for seed in range(3):
        assert parse(otel_document(spans, shuffle=seed)).session == in_order


def test_a_span_sent_twice_is_read_once() -> None:
    doc = otel_document(recorded_spans(weather_turns))
    once = parse(doc).session
    doc["spans"] = doc["spans"] + doc["spans"][:3]
    assert parse(doc).session == once


def test_a_trace_without_its_root_span_is_still_running() -> None:
    doc = otel_document(recorded_spans(weather_turns))
    doc["spans"] = [span for span in doc["spans"] if span["name"] != "invoke_agent WeatherBot"]
    # Children whose parent never arrived: their traces are not closed.
    assert parse(doc).session.raw_status == "roots open"


def test_openinference_llm_and_tool_spans() -> None:
    def run(tracer) -> None:
        with tracer.start_as_current_span("Agent run") as agent:
            agent.set_attribute("openinference.span.kind", "AGENT")
            agent.set_attribute("session.id", "oi-1")
            with tracer.start_as_current_span("response") as llm:
                llm.set_attribute("openinference.span.kind", "LLM")
                llm.set_attribute("llm.model_name", "gpt-4.1-mini")
                llm.set_attribute("llm.input_messages.0.message.role", "user")
                llm.set_attribute("llm.input_messages.0.message.content", "Add 2 and 3")
                llm.set_attribute("llm.output_messages.0.message.role", "assistant")
                prefix = "llm.output_messages.0.message.tool_calls.0.tool_call."
                llm.set_attribute(prefix + "id", "fc_1")
                llm.set_attribute(prefix + "function.name", "add")
                llm.set_attribute(prefix + "function.arguments", '{"a": 2, "b": 3}')
                llm.set_attribute("llm.token_count.prompt", 12)
                llm.set_attribute("llm.token_count.completion", 4)
                llm.set_attribute("llm.token_count.total", 16)
            with tracer.start_as_current_span("add") as tool:
                tool.set_attribute("openinference.span.kind", "TOOL")
                tool.set_attribute("tool.name", "add")
                tool.set_attribute("input.value", '{"a": 2, "b": 3}')
                tool.set_attribute("output.value", "5")

    session = parse(otel_document(recorded_spans(run), key="oi-1")).session

    assert [m.role for m in session.messages] == [Role.USER, Role.ASSISTANT, Role.TOOL]
    (call,) = session.tool_calls
    assert (call.call_id, call.name, call.result_content) == ("fc_1", "add", "5")
    assert call.status is ToolStatus.SUCCESS
    assert session.tokens.total == 16
    assert session.models == ["gpt-4.1-mini"]
    assert session.agent_name == "Agent run"


def test_the_older_prompt_and_completion_events() -> None:
    def run(tracer) -> None:
        with tracer.start_as_current_span("openai.chat") as span:
            span.set_attribute("gen_ai.system", "openai")
            span.set_attribute("gen_ai.request.model", "gpt-3.5-turbo")
            span.add_event(
                "gen_ai.content.prompt",
                {"gen_ai.prompt": json.dumps([{"role": "user", "content": "hi"}])},
            )
            span.add_event(
                "gen_ai.content.completion",
                {"gen_ai.completion": json.dumps([{"role": "assistant", "content": "hello"}])},
            )
            span.set_attribute("gen_ai.usage.prompt_tokens", 3)
            span.set_attribute("gen_ai.usage.completion_tokens", 2)

    session = parse(otel_document(recorded_spans(run))).session
    assert [(m.role, m.content_text) for m in session.messages] == [
        (Role.USER, "hi"),
        (Role.ASSISTANT, "hello"),
    ]
    assert session.tokens.total == 5


def test_detection_recognises_the_document() -> None:
    doc = otel_document(recorded_spans(weather_turns))
    assert detect_format(doc).format_id == "otel"
