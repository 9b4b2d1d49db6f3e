"""Spans made by the real OpenTelemetry SDK, as the OTLP exporter would send them.

``recorded_spans`` runs a function against a tracer of its own provider and returns the ended
spans; ``export_body`` encodes spans exactly as ``OTLPSpanExporter`` does (protobuf, optionally
OTLP/JSON). Nothing here touches the global tracer provider.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer


def recorded_spans(
    run: Callable[[Tracer], Any], *, service: str = "test-agent"
) -> tuple[ReadableSpan, ...]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    run(provider.get_tracer("tests.otel"))
    provider.shutdown()
    return exporter.get_finished_spans()


def export_body(spans: Sequence[ReadableSpan], *, as_json: bool = False) -> bytes:
    request = encode_spans(spans)
    if not as_json:
        return request.SerializeToString()
    value = json_format.MessageToDict(request)
    # OTLP/JSON writes ids as hex, where protobuf's JSON mapping writes base64.
    return json.dumps(_ids_as_hex(value)).encode()


def _ids_as_hex(value: Any) -> Any:
    import base64

    if isinstance(value, dict):
        return {
            key: base64.b64decode(item).hex()
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(item, str)
            else _ids_as_hex(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_ids_as_hex(item) for item in value]
    return value


def messages_json(*messages: dict[str, Any]) -> str:
    return json.dumps(list(messages))


# --- a GenAI-instrumented agent: two turns of one conversation, one trace each --------------

CONVERSATION = "conv-weather-1"


def _chat(tracer: Tracer, *, inputs: list, outputs: list, usage: tuple[int, int]) -> None:
    with tracer.start_as_current_span("chat gpt-4o") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.provider.name", "openai")
        span.set_attribute("gen_ai.request.model", "gpt-4o")
        span.set_attribute("gen_ai.response.model", "gpt-4o-2024-08-06")
        span.set_attribute("gen_ai.input.messages", messages_json(*inputs))
        span.set_attribute("gen_ai.output.messages", messages_json(*outputs))
        span.set_attribute("gen_ai.usage.input_tokens", usage[0])
        span.set_attribute("gen_ai.usage.output_tokens", usage[1])


def _tool(tracer: Tracer, *, call_id: str, city: str, result: str | None) -> None:
    with tracer.start_as_current_span("execute_tool get_weather") as span:
        span.set_attribute("gen_ai.operation.name", "execute_tool")
        span.set_attribute("gen_ai.tool.name", "get_weather")
        span.set_attribute("gen_ai.tool.call.id", call_id)
        span.set_attribute("gen_ai.tool.call.arguments", json.dumps({"city": city}))
        if result is None:
            try:
                raise TimeoutError(f"weather service timed out for {city}")
            except TimeoutError as exc:
                span.record_exception(exc)
                from opentelemetry.trace import Status, StatusCode

                span.set_status(Status(StatusCode.ERROR, str(exc)))
        else:
            span.set_attribute("gen_ai.tool.call.result", result)


def _user(text: str) -> dict:
    return {"role": "user", "parts": [{"type": "text", "content": text}]}


def _assistant(text: str) -> dict:
    return {"role": "assistant", "parts": [{"type": "text", "content": text}]}


def _asks(call_id: str, city: str) -> dict:
    return {
        "role": "assistant",
        "parts": [
            {"type": "tool_call", "id": call_id, "name": "get_weather", "arguments": {"city": city}}
        ],
    }


def _answer(call_id: str, result: str) -> dict:
    return {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": call_id, "response": result}],
    }


def weather_turns(tracer: Tracer) -> None:
    """Turn 1: a tool call that answers; turn 2 (a new trace): a tool call that fails."""
    history: list[dict] = []
    turns = (
        ("What is the weather in Paris?", "call_1", "Paris", "18C and sunny", "It is 18C."),
        ("And in Oslo?", "call_2", "Oslo", None, "The weather service failed."),
    )
    for question, call_id, city, result, reply in turns:
        with tracer.start_as_current_span("invoke_agent WeatherBot") as agent:
            agent.set_attribute("gen_ai.operation.name", "invoke_agent")
            agent.set_attribute("gen_ai.agent.name", "WeatherBot")
            agent.set_attribute("gen_ai.conversation.id", CONVERSATION)
            agent.set_attribute("user.id", "ada")
            history.append(_user(question))
            _chat(tracer, inputs=list(history), outputs=[_asks(call_id, city)], usage=(10, 5))
            history.append(_asks(call_id, city))
            _tool(tracer, call_id=call_id, city=city, result=result)
            history.append(_answer(call_id, result if result is not None else "error"))
            _chat(tracer, inputs=list(history), outputs=[_assistant(reply)], usage=(20, 7))
            history.append(_assistant(reply))
