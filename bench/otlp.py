"""B11: OpenTelemetry in. OTLP/protobuf exports of 512 spans against the same sessions sent as
whole documents.

The spans are those of a GenAI-instrumented agent: per turn one trace of four spans (the agent,
a model call asking for a tool, the tool, a model call answering), each model call carrying the
conversation so far in ``gen_ai.input.messages`` as the instrumentations do. ``group`` agents
talk at once, turn by turn, so each export holds a few spans of many sessions and a session
grows over several exports, as a BatchSpanProcessor in a busy service sends them. The messages
are built with the official ``opentelemetry-proto`` classes, the bodies serialised before the
clock starts.

The same sessions as documents: each session's final ``otel`` document (every span, as the
receiver stores it) sent once to ``POST /api/v1/sessions``, on a fresh database.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

SPANS_PER_TURN = 4
_T0 = 1_765_000_000 * 10**9


def _attribute(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _span(
    trace: bytes,
    span_id: int,
    parent: int | None,
    name: str,
    start: int,
    end: int,
    attributes: dict[str, Any],
    *,
    error: str | None = None,
) -> Span:
    span = Span(
        trace_id=trace,
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name,
        kind=Span.SPAN_KIND_INTERNAL if parent is None else Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=[_attribute(k, v) for k, v in attributes.items()],
    )
    if error:
        span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=error))
        span.events.add(
            name="exception",
            time_unix_nano=end,
            attributes=[_attribute("exception.message", error)],
        )
    return span


@dataclass
class Conversation:
    key: str
    number: int
    history: list[dict[str, Any]]
    spans: int = 0


def _turn(conversation: Conversation, turn: int) -> list[Span]:
    """The four spans of one turn, in the order an SDK exports them (children end first)."""
    n = conversation.number
    # Ids unique across runs and warm-ups too: derived from the conversation's key.
    trace = hashlib.blake2b(f"{conversation.key}/{turn}".encode(), digest_size=16).digest()
    base = _T0 + (n * 100 + turn) * 10**9
    ids = [
        int.from_bytes(
            hashlib.blake2b(f"{conversation.key}/{turn}/{k}".encode(), digest_size=8).digest()
        )
        or 1
        for k in range(SPANS_PER_TURN)
    ]
    city = ("Paris", "Oslo", "Lima", "Kyoto")[turn % 4]
    call_id = f"call_{n}_{turn}"
    failed = turn % 5 == 4
    history = conversation.history
    history.append({"role": "user", "parts": [{"type": "text", "content": f"Weather in {city}?"}]})
    asks = {
        "role": "assistant",
        "parts": [
            {"type": "tool_call", "id": call_id, "name": "get_weather", "arguments": {"city": city}}
        ],
    }
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    }
    first = _span(
        trace,
        ids[1],
        ids[0],
        "chat gpt-4o-mini",
        base + 1_000_000,
        base + 200_000_000,
        {
            **chat,
            "gen_ai.input.messages": json.dumps(history),
            "gen_ai.output.messages": json.dumps([asks]),
            "gen_ai.usage.input_tokens": 40 * len(history),
            "gen_ai.usage.output_tokens": 12,
        },
    )
    history.append(asks)
    result = f"timeout reaching the weather service for {city}" if failed else f"18C in {city}"
    tool = _span(
        trace,
        ids[2],
        ids[0],
        "execute_tool get_weather",
        base + 210_000_000,
        base + 300_000_000,
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.call.arguments": json.dumps({"city": city}),
            **({} if failed else {"gen_ai.tool.call.result": result}),
        },
        error=result if failed else None,
    )
    history.append(
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": call_id, "response": result}],
        }
    )
    reply = {"role": "assistant", "parts": [{"type": "text", "content": f"Here it is: {result}."}]}
    second = _span(
        trace,
        ids[3],
        ids[0],
        "chat gpt-4o-mini",
        base + 310_000_000,
        base + 600_000_000,
        {
            **chat,
            "gen_ai.input.messages": json.dumps(history),
            "gen_ai.output.messages": json.dumps([reply]),
            "gen_ai.usage.input_tokens": 40 * len(history),
            "gen_ai.usage.output_tokens": 20,
        },
    )
    history.append(reply)
    agent = _span(
        trace,
        ids[0],
        None,
        "invoke_agent WeatherBot",
        base,
        base + 610_000_000,
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "WeatherBot",
            "gen_ai.conversation.id": conversation.key,
        },
    )
    conversation.spans += SPANS_PER_TURN
    return [first, tool, second, agent]


def span_stream(*, prefix: str, sessions: int, turns: int, group: int) -> list[Span]:
    """Every span of ``sessions`` conversations of ``turns`` turns, ``group`` at a time."""
    spans: list[Span] = []
    for start in range(0, sessions, group):
        conversations = [
            Conversation(key=f"{prefix}-{n}", number=n, history=[])
            for n in range(start, min(start + group, sessions))
        ]
        for turn in range(turns):
            for conversation in conversations:
                spans.extend(_turn(conversation, turn))
    return spans


def export_bodies(spans: list[Span], *, batch: int) -> list[bytes]:
    """Protobuf ExportTraceServiceRequest bodies of ``batch`` spans each."""
    bodies = []
    for start in range(0, len(spans), batch):
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource={"attributes": [_attribute("service.name", "weather-agent")]},
                    scope_spans=[
                        ScopeSpans(
                            scope={"name": "bench.otlp", "version": "1"},
                            spans=spans[start : start + batch],
                        )
                    ],
                )
            ]
        )
        bodies.append(request.SerializeToString())
    return bodies


def session_documents(spans: list[Span]) -> list[bytes]:
    """Each session's ``otel`` document with every span, as the receiver would store it (needs
    Django set up: it uses the receiver's own conversion)."""
    from sessions_api.ingest.otlp import ExportOutcome, read_export, render_document

    outcome = ExportOutcome()
    read, _ = read_export(
        ExportTraceServiceRequest.FromString(export_bodies(spans, batch=len(spans))[0]), outcome
    )
    by_session: dict[str, list[dict[str, Any]]] = {}
    trace_keys: dict[str, str] = {}
    for span, key in read:
        if key is not None:
            trace_keys[span["trace_id"]] = key[0]
    for span, _key in read:
        by_session.setdefault(trace_keys[span["trace_id"]], []).append(span)
    return [
        render_document(key, "gen_ai.conversation.id", session_spans)
        for key, session_spans in by_session.items()
    ]
