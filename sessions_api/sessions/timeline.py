"""A session's timeline: ordered, JSON-ready events derived from the canonical session (pure).

Order is document order (the only order every format has). Events:

- ``step``: the conversation moved to another step (derived from message step attribution);
- ``message``: a message, with role, text, structured parts, timestamp and its source, model,
  tokens;
- ``tool_call``: a call with its arguments and its paired result, status and status source
  (``heuristic`` is set when the status was inferred from text). A paired result message is not
  repeated as a message: it lives in its call;
- ``tool_result``: a result whose call id matches no call ("unmatched"); a result message that
  carries the call it answers (tool work no assistant turn announced) shows only that call;
- ``log``: a log/warn/error entry. Entries with a timestamp are placed before the first message
  that is later than they are; entries without one come at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sessions_api.domain import LogEntry, Message, Role, Session, StatusSource, ToolCall


def build_timeline(session: Session) -> list[dict[str, Any]]:
    events = [_event(item) for item in timeline_items(session)]
    for index, event in enumerate(events):
        event["index"] = index
    return events


#: One timeline event before it is laid out: (kind, message or log entry, the tool call of a
#: ``tool_call``, the previous step of a ``step``).
TimelineItem = tuple[str, Message | LogEntry, ToolCall | None, str | None]


def timeline_items(session: Session) -> Iterator[TimelineItem]:
    """The timeline's events in order, as the objects they are made of: what the search
    entries read without laying out every event (its timestamps, tokens, statuses)."""
    paired_results = {
        call.result_seq
        for message in session.messages
        for call in message.tool_calls
        if call.result_seq is not None
    }
    logs = sorted(
        (entry for entry in session.logs if entry.timestamp is not None),
        key=lambda entry: entry.timestamp,  # type: ignore[arg-type, return-value]
    )
    log_index = 0
    current_step: str | None = None

    for message in session.messages:
        if message.timestamp is not None:
            while log_index < len(logs) and logs[log_index].timestamp < message.timestamp:  # type: ignore[operator]
                yield "log", logs[log_index], None, None
                log_index += 1
        answered = message.seq in paired_results
        if message.role is Role.TOOL and answered and not message.tool_calls:
            continue
        if message.step and message.step != current_step and message.role is not Role.TOOL:
            yield "step", message, None, current_step
            current_step = message.step
        if message.role is Role.TOOL:
            # A result that answers a call of its own (tool work no assistant turn announced)
            # is shown as that call, below.
            if not answered:
                yield "tool_result", message, None, None
        else:
            yield "message", message, None, None
        for call in message.tool_calls:
            yield "tool_call", message, call, None
    for entry in logs[log_index:]:
        yield "log", entry, None, None
    for entry in session.logs:
        if entry.timestamp is None:
            yield "log", entry, None, None


def _event(item: TimelineItem) -> dict[str, Any]:
    kind, source, call, previous_step = item
    if kind == "log":
        return _log_event(source)  # type: ignore[arg-type]
    message: Message = source  # type: ignore[assignment]
    if kind == "message":
        return _message_event(message)
    if kind == "tool_result":
        return _unmatched_result_event(message)
    if kind == "step":
        return {
            "kind": "step",
            "step": message.step,
            "previous_step": previous_step,
            "flow": message.flow,
            "seq": message.seq,
        }
    assert call is not None
    return {
        "kind": "tool_call",
        "seq": message.seq,
        "call_id": call.call_id,
        "name": call.name,
        "arguments": call.arguments,
        "arguments_error": call.arguments_error,
        "status": call.status.value,
        "status_source": call.status_source.value,
        "heuristic": call.status_source is StatusSource.HEURISTIC,
        "result": call.result_content,
        "result_seq": call.result_seq,
        "step": message.step,
        "timestamp": _iso(message.timestamp),
    }


def _message_event(message: Message) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "message",
        "seq": message.seq,
        "role": message.role.value,
        "raw_role": message.raw_role,
        "author": message.author,
        "text": message.content_text,
        "parts": message.content_parts,
        "timestamp": _iso(message.timestamp),
        "timestamp_source": message.timestamp_source.value,
        "step": message.step,
        "namespace": message.namespace,
        "flow": message.flow,
        "model": message.model,
        "finish_reason": message.finish_reason,
        "is_error": message.is_error,
        "error_code": message.error_code,
        "external_id": message.external_id,
    }
    if message.tokens is not None and not message.tokens.is_empty:
        event["tokens"] = {
            "input": message.tokens.input,
            "output": message.tokens.output,
            "total": message.tokens.total,
        }
    if message.extra:
        event["extra"] = message.extra
    return event


def _unmatched_result_event(message: Message) -> dict[str, Any]:
    return {
        "kind": "tool_result",
        "status": "unmatched",
        "seq": message.seq,
        "call_id": message.tool_call_id,
        "result": message.content_parts
        if message.content_parts is not None
        else message.content_text,
        "tool_status": message.tool_status.value if message.tool_status else None,
        "timestamp": _iso(message.timestamp),
        "step": message.step,
    }


def _log_event(entry: LogEntry) -> dict[str, Any]:
    return {
        "kind": "log",
        "level": entry.level.value,
        "message": entry.message,
        "timestamp": _iso(entry.timestamp),
        "extra": entry.extra,
        "seq": None,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
