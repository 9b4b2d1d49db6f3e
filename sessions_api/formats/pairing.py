"""Pair tool calls with their results by call id, the same way for every format.

Adapters build messages whose assistant turns carry ``ToolCall(call_id, name, arguments)`` and
whose tool-result messages carry ``tool_call_id`` (plus the status the format records, if any).
This module fills in each call's result, status and status source, and reports what does not
pair: calls with no result ("pending"), results for an unknown id ("unmatched", left on the
result message), and duplicate call ids (the first unanswered call with that id takes the result).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from typing import Any

from sessions_api.domain import Message, ParseWarning, StatusSource, ToolCall, ToolStatus

# A heuristic that reads a result's content and says whether it looks like an error.
ErrorHeuristic = Callable[[Any], bool]

_ERROR_PREFIXES = ("error:", "error ", "tool error", "exception:", "traceback (most recent call")


def looks_like_error(content: Any) -> bool:
    """The shared text heuristic for formats without a status field."""
    if not isinstance(content, str):
        return False
    head = content.lstrip()[:200].lower()
    return head.startswith(_ERROR_PREFIXES)


def pair_tool_calls(
    messages: Sequence[Message],
    *,
    heuristic: ErrorHeuristic | None = looks_like_error,
) -> tuple[list[Message], list[ParseWarning]]:
    warnings: list[ParseWarning] = []
    # call id -> list of (message index, call index) still waiting for a result, in order.
    waiting: dict[str, list[tuple[int, int]]] = {}
    seen_ids: set[str] = set()
    calls: list[list[ToolCall]] = [list(m.tool_calls) for m in messages]
    result_messages: list[Message] = list(messages)

    for m_index, message in enumerate(messages):
        for c_index, call in enumerate(message.tool_calls):
            if call.call_id in seen_ids:
                warnings.append(
                    ParseWarning(
                        code="duplicate_tool_call_id",
                        message=f"tool call id {call.call_id!r} is used more than once "
                        f"(message #{message.seq})",
                    )
                )
            seen_ids.add(call.call_id)
            waiting.setdefault(call.call_id, []).append((m_index, c_index))

        if message.tool_call_id is None:
            continue
        queue = waiting.get(message.tool_call_id)
        if not queue:
            warnings.append(
                ParseWarning(
                    code="unmatched_tool_result",
                    message=f"tool result for unknown call id {message.tool_call_id!r} "
                    f"(message #{message.seq})",
                )
            )
            continue
        call_m, call_c = queue.pop(0)
        status, source = _result_status(message, heuristic)
        content: Any = (
            message.content_parts if message.content_parts is not None else (message.content_text)
        )
        calls[call_m][call_c] = _replace(
            calls[call_m][call_c],
            result_content=content,
            result_seq=message.seq,
            status=status,
            status_source=source,
        )
        if message.tool_status is not status or message.tool_status_source is not source:
            result_messages[m_index] = _replace(
                message, tool_status=status, tool_status_source=source
            )

    for m_index, message in enumerate(result_messages):
        if message.tool_calls:
            result_messages[m_index] = _replace(message, tool_calls=tuple(calls[m_index]))
    pending = sum(1 for queue in waiting.values() for _ in queue)
    if pending:
        warnings.append(
            ParseWarning(
                code="tool_call_without_result",
                message=f"{pending} tool call(s) have no result in the document",
            )
        )
    return result_messages, warnings


def _replace(value: Any, **changes: Any) -> Any:
    """``dataclasses.replace``, about twice as fast for the domain classes: one C call reads
    every field (``attrgetter``) and the constructor takes them positionally, instead of
    ``fields()`` plus a keyword dict per call (pairing replaces every call and every message
    holding calls: thousands for a 10,000-message session). Same result, ``__init__`` (and any
    ``__post_init__``) included; classes with keyword-only or non-init fields take the regular
    path."""
    cls = type(value)
    plan = _PLANS.get(cls)
    if plan is None:
        fields = dataclasses.fields(cls)
        # attrgetter of one name returns the value itself, not a tuple: two or more only.
        if len(fields) > 1 and all(f.init and not f.kw_only for f in fields):
            names = [f.name for f in fields]
            plan = (operator.attrgetter(*names), {name: i for i, name in enumerate(names)})
        else:
            plan = False
        _PLANS[cls] = plan
    if not plan:
        return dataclasses.replace(value, **changes)
    getter, index = plan
    values = list(getter(value))
    for name, new in changes.items():
        position = index.get(name)
        if position is None:
            raise TypeError(f"{cls.__name__} has no field {name!r}")
        values[position] = new
    return cls(*values)


_PLANS: dict[type, Any] = {}


def _result_status(
    message: Message, heuristic: ErrorHeuristic | None
) -> tuple[ToolStatus, StatusSource]:
    if message.tool_status in (ToolStatus.SUCCESS, ToolStatus.ERROR):
        return message.tool_status, message.tool_status_source
    if message.tool_status is ToolStatus.UNKNOWN:
        # The document states a status no one can read: say so rather than guess from text.
        return ToolStatus.UNKNOWN, StatusSource.NONE
    if heuristic is not None:
        content = (
            message.content_parts if message.content_parts is not None else (message.content_text)
        )
        if heuristic(content):
            return ToolStatus.ERROR, StatusSource.HEURISTIC
        return ToolStatus.SUCCESS, StatusSource.HEURISTIC
    return ToolStatus.UNKNOWN, StatusSource.NONE


def count_recorded_tool_errors(messages: Sequence[Message]) -> int:
    """Tool errors the format records (explicitly or by documented convention).

    Heuristic verdicts are shown, marked as heuristic, but not counted.
    """
    return sum(
        1
        for m in messages
        for call in m.tool_calls
        if call.status is ToolStatus.ERROR
        and call.status_source in (StatusSource.EXPLICIT, StatusSource.CONVENTION)
    )
