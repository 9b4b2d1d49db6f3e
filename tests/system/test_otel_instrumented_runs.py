"""Real instrumented agents export their traces to the running app with the real OTLP exporter,
configured only by the two standard environment variables, and the stored session matches
what the run did: messages, tool calls with their results and errors, tokens, model, over
several traces.

- ``opentelemetry-instrumentation-openai-v2`` around the ``openai`` client, in an agent loop
  that names its conversation (``gen_ai.conversation.id``) and runs its tool in an
  ``execute_tool`` span;
- the OpenInference instrumentation around the OpenAI Agents SDK, its runs grouped with
  ``using_session``.

Each calls the local fake model server of tests/support/fake_openai.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from sessions_api.ingest.otlp import fold_otel_spans
from sessions_api.lifecycle.otel_idle import close_idle_otel_sessions
from tests.support.fake_openai import MODEL, fake_openai

otel_sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="needs opentelemetry-sdk")
otlp_http = pytest.importorskip(
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    reason="needs opentelemetry-exporter-otlp-proto-http",
)

pytestmark = pytest.mark.parallel_safe


@pytest.fixture
def otlp_env(live_server, transactional_db, make_api_key, monkeypatch) -> str:
    """The standard exporter settings pointed at the live app; returns a read key."""
    key = make_api_key("ingest")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", live_server.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{key}")
    return make_api_key("read")


@pytest.fixture
def provider(otlp_env) -> Iterator[object]:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "weather-agent"}))
    # No arguments: the exporter reads the environment like any deployed agent.
    provider.add_span_processor(BatchSpanProcessor(otlp_http.OTLPSpanExporter()))
    yield provider
    provider.shutdown()


def read_session(key: str, external_id: str) -> dict:
    # What the jobs do: the fold appends the received spans to their sessions; the idle job
    # ends the conversation once OTEL_SESSION_IDLE has passed.
    fold_otel_spans(now=timezone.now())
    close_idle_otel_sessions(now=timezone.now() + timedelta(hours=1))
    client = Client(headers={"Authorization": f"Bearer {key}"})
    listing = client.get("/api/v1/sessions", {"format": "otel"}).json()
    (item,) = [i for i in listing["items"] if i["external_id"] == external_id]
    detail = client.get(f"/api/v1/sessions/{item['id']}").json()
    timeline = client.get(f"/api/v1/sessions/{item['id']}/timeline", {"limit": 200}).json()
    return {
        "id": item["id"],
        "summary": detail["summary"],
        "steps": detail["steps"],
        "timeline": timeline,
    }


def weather(city: str) -> str:
    if city == "Oslo":
        raise TimeoutError("the weather service timed out for Oslo")
    return f"18C and sunny in {city}"


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def test_openai_client_instrumented_by_opentelemetry(provider, otlp_env, monkeypatch) -> None:
    import openai
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.trace import Status, StatusCode

    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    tracer = provider.get_tracer("weather-agent")
    conversation = "weather-chat-1"
    try:
        with fake_openai() as fake:
            client = openai.OpenAI(base_url=fake.url, api_key="test-key", max_retries=0)
            messages: list[dict] = [{"role": "system", "content": "You report the weather."}]
            for question in ("What is the weather in Paris?", "And in Oslo?"):
                # One trace per turn, named by the conversation it belongs to.
                with tracer.start_as_current_span(
                    "invoke_agent WeatherBot",
                    attributes={
                        "gen_ai.operation.name": "invoke_agent",
                        "gen_ai.agent.name": "WeatherBot",
                        "gen_ai.conversation.id": conversation,
                    },
                ):
                    messages.append({"role": "user", "content": question})
                    while True:
                        reply = client.chat.completions.create(
                            model="gpt-4o-mini", messages=messages, tools=TOOLS
                        )
                        message = reply.choices[0].message
                        messages.append(message.model_dump(exclude_none=True))
                        if not message.tool_calls:
                            break
                        for call in message.tool_calls:
                            with tracer.start_as_current_span(
                                "execute_tool get_weather",
                                attributes={
                                    "gen_ai.operation.name": "execute_tool",
                                    "gen_ai.tool.name": "get_weather",
                                    "gen_ai.tool.call.id": call.id,
                                },
                            ) as span:
                                try:
                                    result = weather(**json.loads(call.function.arguments))
                                except TimeoutError as exc:
                                    span.record_exception(exc)
                                    span.set_status(Status(StatusCode.ERROR, str(exc)))
                                    result = f"error: {exc}"
                                else:
                                    span.set_attribute("gen_ai.tool.call.result", result)
                            messages.append(
                                {"role": "tool", "tool_call_id": call.id, "content": result}
                            )
            assert provider.force_flush(10_000)
    finally:
        instrumentor.uninstrument()

    session = read_session(otlp_env, conversation)
    summary = session["summary"]
    assert summary["status"] == "completed"
    # system, and per turn: user, tool call, tool result, answer.
    assert summary["message_count"] == 1 + 2 * 4
    assert (summary["tool_call_count"], summary["tool_error_count"]) == (2, 1)
    assert summary["input_tokens"] == sum(c.input_tokens for c in fake.calls)
    assert summary["output_tokens"] == sum(c.output_tokens for c in fake.calls)
    assert summary["models"] == [MODEL]
    assert summary["agent"] == "WeatherBot"
    tool_events = [e for e in session["timeline"]["events"] if e.get("kind") == "tool_call"]
    assert [e["status"] for e in tool_events] == ["success", "error"]
    assert tool_events[0]["result"] == "18C and sunny in Paris"


def test_openai_agents_sdk_instrumented_by_openinference(provider, otlp_env) -> None:
    agents = pytest.importorskip("agents", reason="needs openai-agents")
    openinference = pytest.importorskip(
        "openinference.instrumentation.openai_agents",
        reason="needs openinference-instrumentation-openai-agents",
    )
    import openai
    from openinference.instrumentation import using_session

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return weather(city)

    instrumentor = openinference.OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    conversation = "agents-chat-1"
    try:
        with fake_openai() as fake:
            client = openai.AsyncOpenAI(base_url=fake.url, api_key="test-key", max_retries=0)
            model = agents.OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client)
            agent = agents.Agent(
                name="Forecaster",
                instructions="You report the weather.",
                tools=[get_weather],
                model=model,
            )
            history: list = []
            for question in ("What is the weather in Paris?", "And in Oslo?"):
                with using_session(conversation):
                    result = agents.Runner.run_sync(
                        agent, [*history, {"role": "user", "content": question}]
                    )
                history = result.to_input_list()
            assert provider.force_flush(10_000)
    finally:
        instrumentor.uninstrument()

    session = read_session(otlp_env, conversation)
    summary = session["summary"]
    assert summary["status"] == "completed"
    assert (summary["tool_call_count"], summary["tool_error_count"]) == (2, 1)
    assert summary["input_tokens"] == sum(c.input_tokens for c in fake.calls)
    assert summary["output_tokens"] == sum(c.output_tokens for c in fake.calls)
    assert summary["models"] == [MODEL]
    assert summary["agent"] == "Forecaster"
    # One step per run: the agent, not the SDK's "Agent workflow" span around it.
    assert [step["name"] for step in session["steps"]] == ["Forecaster"] * 2
    texts = [e.get("text") or "" for e in session["timeline"]["events"]]
    assert any("What is the weather in Paris?" in t for t in texts), texts
    assert any("And in Oslo?" in t for t in texts), texts
    tools = [e for e in session["timeline"]["events"] if e.get("kind") == "tool_call"]
    assert [(e["status"], e["status_source"]) for e in tools] == [
        ("success", "explicit"),
        ("error", "explicit"),
    ]
