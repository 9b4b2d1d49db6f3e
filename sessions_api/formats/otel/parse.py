"""OpenTelemetry traces of agents onto the canonical session.

The document is the product's own: ``POST /v1/traces`` (sessions_api/ingest/otlp.py) turns
each OTLP span into one JSON object and keeps every span of a session in one document that
grows by appending::

    {"otel_session": {"id": "<session key>", "grouped_by": "gen_ai.conversation.id"},
     "spans": [
    {"trace_id": "<32 hex>", "span_id": "<16 hex>", "parent_span_id": "<16 hex>",
     "name": "chat gpt-4o", "kind": "CLIENT",
     "start_time_unix_nano": "1733...", "end_time_unix_nano": "1733...",
     "status": {"code": "ERROR", "message": "..."},
     "attributes": {"gen_ai.operation.name": "chat", ...},
     "events": [{"name": "exception", "time_unix_nano": "...", "attributes": {...}}],
     "resource": {"service.name": "..."}, "scope": {"name": "...", "version": "..."}},
    ...
    ]}

Spans are in arrival order in the document; the adapter reads them by start time, then span
id, so the same spans give the same session whatever order they came in. A span id seen twice
is read once.

Conventions read (GenAI semantic conventions, OpenInference, OpenLLMetry):

- **Span kinds**: a model call is ``gen_ai.operation.name`` ``chat`` / ``text_completion`` /
  ``generate_content`` or ``openinference.span.kind`` ``LLM``; a tool call ``execute_tool`` or
  ``TOOL``; an agent ``invoke_agent`` / ``create_agent`` or ``AGENT``; a chain ``CHAIN``.
- **Messages** of a model call: ``gen_ai.system_instructions``, ``gen_ai.input.messages`` and
  ``gen_ai.output.messages`` (JSON with ``parts``); the older ``gen_ai.prompt`` /
  ``gen_ai.completion`` events (JSON lists) and OpenLLMetry's flattened
  ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*``; OpenInference ``llm.input_messages.N.*`` /
  ``llm.output_messages.N.*``, else ``input.value`` / ``output.value`` as text. Every model call
  resends the conversation so far: an input message already in the transcript (same role,
  text and tool ids, counted with multiplicity) is history and is not repeated. Input messages
  are timed at the span's start, output messages at its end (explicit timestamps).
- **Tool calls** are the ``tool_call`` parts of assistant messages, paired by id with the
  ``tool`` messages that answer them. A tool span (``execute_tool`` / ``TOOL``) gives the result
  (``gen_ai.tool.call.result`` or ``output.value``) of the call with its
  ``gen_ai.tool.call.id``, else of the oldest unanswered call of the same tool name (spans of
  OpenInference tools carry no call id); a tool span no model call asked for becomes a call of
  its own. A tool span with status ``ERROR`` or an ``exception`` event is a tool error
  (explicit); otherwise the span's result is a success (explicit). Results only seen in a
  model's input carry no status and get the shared text heuristic (marked heuristic).
- **Tokens**: per model call, ``gen_ai.usage.input_tokens`` / ``output_tokens`` (older
  ``prompt_tokens`` / ``completion_tokens``), ``gen_ai.usage.cache_read.input_tokens``,
  OpenInference ``llm.token_count.prompt`` / ``completion`` / ``total`` /
  ``prompt_details.cache_read``; put on the call's first output message; the session's tokens
  are their sum. Usage on agent spans (an aggregate of their calls) is not added again.
- **Model**: ``gen_ai.response.model``, else ``gen_ai.request.model``, else
  ``llm.model_name``. **Agent**: the first ``gen_ai.agent.name`` or OpenInference
  ``agent.name``, else the name of the first agent span, else the resource's
  ``service.name``. **User**: ``user.id``, ``enduser.id`` or ``gen_ai.user.id``.
- **Steps**: each agent span, and each root chain span, is a step (named after its agent or
  span, in start order), except unnamed ones around a named agent (the Agents SDK's "Agent
  workflow"); messages are tagged with the step of their nearest such ancestor.
- **Status**: ``running``. A conversation may go on in a new trace at any time, so a session
  ends only when every trace has delivered its root span (SDKs export a span when it ends, so
  the root comes last) *and* no span has arrived for ``OTEL_SESSION_IDLE``: the
  ``close_idle_otel_sessions`` job then sets ``completed``, or ``error`` when the latest root
  ended with status ``ERROR``. ``raw_status`` says where the roots stand (``roots open``,
  ``roots closed``, ``roots closed, last with error``); new spans make a session running again.
- Errors of other spans (status ``ERROR``, ``exception`` events) become error log entries.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sessions_api.domain import (
    LogEntry,
    LogLevel,
    Message,
    ParsedSession,
    Role,
    Session,
    SessionStatus,
    StatusSource,
    StepState,
    TimestampSource,
    TokenUsage,
    ToolCall,
    ToolStatus,
)
from sessions_api.errors import InvalidDocument
from sessions_api.formats.base import (
    MAX_SAFE_INTEGER,
    DetectionRule,
    ModuleAdapter,
    ParseContext,
    content_to_text,
    expect,
)
from sessions_api.formats.common import sum_token_usages
from sessions_api.formats.pairing import looks_like_error, pair_tool_calls

FORMAT_ID = "otel"
V_SPANS = "spans"

# raw_status: whether every trace of the session has delivered its root span, and how the
# latest root ended. The idle job reads them (sessions_api/lifecycle/otel_idle.py).
ROOTS_OPEN = "roots open"
ROOTS_CLOSED = "roots closed"
ROOTS_CLOSED_ERROR = "roots closed, last with error"

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
_ROLES = {
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "user": Role.USER,
    "human": Role.USER,
    "assistant": Role.ASSISTANT,
    "ai": Role.ASSISTANT,
    "model": Role.ASSISTANT,
    "tool": Role.TOOL,
    "function": Role.TOOL,
}


def is_otel_document(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("otel_session"), dict)
        and isinstance(doc.get("spans"), list)
    )


RULES = (
    DetectionRule(
        number=17,
        format_id=FORMAT_ID,
        description="OpenTelemetry spans of one session (otel_session + spans)",
        matches=is_otel_document,
        variant=V_SPANS,
    ),
)


# --- the span, read -----------------------------------------------------------------------


@dataclass
class _Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    start_ns: int
    end_ns: int
    status_code: str
    status_message: str
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    resource: dict[str, Any]
    path: str
    kind: str = "other"  # llm, tool, agent, chain, other

    @property
    def start(self) -> datetime | None:
        return _time(self.start_ns)

    @property
    def end(self) -> datetime | None:
        return _time(self.end_ns)

    def attr(self, *keys: str) -> Any:
        for key in keys:
            value = self.attributes.get(key)
            if value is not None and value != "":
                return value
        return None

    def text_attr(self, *keys: str) -> str | None:
        value = self.attr(*keys)
        return value if isinstance(value, str) else None

    @property
    def exception(self) -> dict[str, Any] | None:
        for event in self.events:
            if event.get("name") == "exception":
                attributes = event.get("attributes")
                return attributes if isinstance(attributes, dict) else {}
        return None

    @property
    def failed(self) -> bool:
        return self.status_code == "ERROR" or self.exception is not None

    def error_text(self) -> str:
        exception = self.exception or {}
        parts = [
            str(exception.get("exception.type") or ""),
            str(exception.get("exception.message") or self.status_message or ""),
        ]
        return ": ".join(part for part in parts if part) or "error"


def _time(nanos: int) -> datetime | None:
    if nanos <= 0:
        return None
    try:
        moment = datetime.fromtimestamp(nanos / 1e9, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment if 1990 <= moment.year < 2200 else None


def _nanos(value: Any, path: str) -> int:
    if value is None:
        return 0
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise InvalidDocument(f"{path}: expected a count of nanoseconds", path=path, code="wrong_type")


def _read_spans(doc: dict[str, Any], ctx: ParseContext) -> list[_Span]:
    spans: dict[str, _Span] = {}
    for index, raw in enumerate(expect(doc["spans"], list, "/spans")):
        path = f"/spans/{index}"
        expect(raw, dict, path)
        span_id = expect(raw.get("span_id"), str, f"{path}/span_id")
        trace_id = expect(raw.get("trace_id"), str, f"{path}/trace_id")
        if span_id in spans:
            continue  # an exporter's retry: read once
        status = raw.get("status") or {}
        expect(status, dict, f"{path}/status")
        attributes = raw.get("attributes") or {}
        expect(attributes, dict, f"{path}/attributes")
        events = raw.get("events") or []
        expect(events, list, f"{path}/events")
        resource = raw.get("resource") or {}
        expect(resource, dict, f"{path}/resource")
        span = _Span(
            trace_id=trace_id,
            span_id=span_id,
            parent_id=str(raw.get("parent_span_id") or ""),
            name=str(raw.get("name") or ""),
            start_ns=_nanos(raw.get("start_time_unix_nano"), f"{path}/start_time_unix_nano"),
            end_ns=_nanos(raw.get("end_time_unix_nano"), f"{path}/end_time_unix_nano"),
            status_code=str(status.get("code") or "UNSET"),
            status_message=str(status.get("message") or ""),
            attributes=attributes,
            events=[event for event in events if isinstance(event, dict)],
            resource=resource,
            path=path,
        )
        span.kind = _kind(span)
        spans[span_id] = span
    return sorted(spans.values(), key=lambda s: (s.start_ns, s.span_id))


def _kind(span: _Span) -> str:
    openinference = str(span.attributes.get("openinference.span.kind") or "").upper()
    operation = str(span.attributes.get("gen_ai.operation.name") or "")
    if openinference == "LLM" or operation in LLM_OPERATIONS:
        return "llm"
    if openinference == "TOOL" or operation == "execute_tool":
        return "tool"
    if openinference == "AGENT" or operation in AGENT_OPERATIONS:
        return "agent"
    if openinference == "CHAIN":
        return "chain"
    if (
        not operation
        and not openinference
        and ("gen_ai.request.model" in span.attributes or "gen_ai.prompt.0.role" in span.attributes)
    ):
        return "llm"  # older instrumentations set no operation name
    return "other"


# --- messages of a model call -------------------------------------------------------------


@dataclass
class _Draft:
    """A message before it has a seq: what the conventions say about it."""

    role: Role
    text: str = ""
    parts: Any = None
    tool_calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (id, name, args)
    tool_call_id: str | None = None
    name: str | None = None
    finish_reason: str | None = None
    raw_role: str | None = None
    # Set for results a tool span gave: explicit status.
    tool_status: ToolStatus | None = None

    def fingerprint(self) -> tuple[Any, ...]:
        return (
            self.role,
            self.text.strip(),
            tuple(call[0] for call in self.tool_calls),
            self.tool_call_id,
        )


def _role(raw: Any) -> tuple[Role, str | None]:
    text = str(raw or "").lower()
    role = _ROLES.get(text)
    return (role, None) if role is not None else (Role.OTHER, str(raw or "") or None)


def _json_value(value: Any) -> Any:
    """An attribute that holds JSON: a string is decoded (kept as text when it is not JSON)."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value


def _arguments(value: Any) -> Any:
    decoded = _json_value(value)
    return decoded


def _semconv_messages(value: Any) -> list[_Draft]:
    """``gen_ai.input.messages`` / ``gen_ai.output.messages``: [{role, parts: [...]}]."""
    messages = _json_value(value)
    if not isinstance(messages, list):
        return []
    drafts: list[_Draft] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role, raw_role = _role(message.get("role"))
        parts = message.get("parts")
        if not isinstance(parts, list):
            # The older shape: {role, content, tool_calls?, tool_call_id?}.
            drafts.extend(_chat_messages([message]))
            continue
        texts: list[str] = []
        calls: list[tuple[str, str, Any]] = []
        responses: list[tuple[str, Any]] = []
        for part in parts:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text":
                texts.append(str(part.get("content") or ""))
            elif kind == "tool_call":
                calls.append(
                    (str(part.get("id") or ""), str(part.get("name") or ""), part.get("arguments"))
                )
            elif kind == "tool_call_response":
                result = part.get("response", part.get("result"))
                responses.append((str(part.get("id") or ""), result))
        if responses:
            for call_id, result in responses:
                text, structured = content_to_text(result)
                drafts.append(
                    _Draft(
                        role=Role.TOOL,
                        text=text if isinstance(result, str) else _dump(result),
                        parts=structured if not isinstance(result, str) else None,
                        tool_call_id=call_id or None,
                    )
                )
            continue
        drafts.append(
            _Draft(
                role=role,
                raw_role=raw_role,
                text="\n".join(texts),
                # Parts beyond text and tool calls (images, reasoning) are kept whole.
                parts=parts if len(parts) != len(texts) + len(calls) else None,
                tool_calls=calls,
                name=message.get("name") if isinstance(message.get("name"), str) else None,
                finish_reason=_str_or_none(message.get("finish_reason")),
            )
        )
    return drafts


def _chat_messages(messages: Any) -> list[_Draft]:
    """Chat-completions shaped messages: [{role, content, tool_calls?, tool_call_id?}]."""
    if not isinstance(messages, list):
        return []
    drafts = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role, raw_role = _role(message.get("role"))
        text, parts = content_to_text(message.get("content"))
        calls = []
        for call in message.get("tool_calls") or []:
            if not isinstance(call, dict):
                continue
            function = call.get("function") if isinstance(call.get("function"), dict) else call
            calls.append(
                (
                    str(call.get("id") or ""),
                    str(function.get("name") or ""),
                    _arguments(function.get("arguments")),
                )
            )
        drafts.append(
            _Draft(
                role=role,
                raw_role=raw_role,
                text=text,
                parts=parts,
                tool_calls=calls,
                tool_call_id=_str_or_none(message.get("tool_call_id") or message.get("id"))
                if role is Role.TOOL
                else None,
                finish_reason=_str_or_none(message.get("finish_reason")),
            )
        )
    return drafts


def _indexed(attributes: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Flattened lists (``prefix.0.role``, ``prefix.0.content`` ...) as a list of dicts of the
    keys after the index, in index order."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if index.isdigit() and rest:
            found.setdefault(int(index), {})[rest] = value
    return [found[index] for index in sorted(found)]


def _openinference_messages(attributes: dict[str, Any], prefix: str) -> list[_Draft]:
    drafts = []
    for flat in _indexed(attributes, prefix):
        role, raw_role = _role(flat.get("message.role"))
        text = flat.get("message.content")
        if not isinstance(text, str):
            contents = _indexed(flat, "message.contents.")
            text = "\n".join(
                str(item.get("message_content.text") or "")
                for item in contents
                if item.get("message_content.text")
            )
        calls = [
            (
                str(call.get("tool_call.id") or ""),
                str(call.get("tool_call.function.name") or ""),
                _arguments(call.get("tool_call.function.arguments")),
            )
            for call in _indexed(flat, "message.tool_calls.")
        ]
        drafts.append(
            _Draft(
                role=role,
                raw_role=raw_role,
                text=text,
                tool_calls=calls,
                tool_call_id=_str_or_none(flat.get("message.tool_call_id")),
                name=_str_or_none(flat.get("message.name")),
            )
        )
    return drafts


def _openllmetry_messages(attributes: dict[str, Any], prefix: str) -> list[_Draft]:
    drafts = []
    for flat in _indexed(attributes, prefix):
        role, raw_role = _role(flat.get("role"))
        content = _json_value(flat.get("content"))
        text, parts = content_to_text(content)
        calls = [
            (
                str(call.get("id") or ""),
                str(call.get("name") or ""),
                _arguments(call.get("arguments")),
            )
            for call in _indexed(flat, "tool_calls.")
        ]
        drafts.append(
            _Draft(
                role=role,
                raw_role=raw_role,
                text=text,
                parts=parts,
                tool_calls=calls,
                tool_call_id=_str_or_none(flat.get("tool_call_id")),
                finish_reason=_str_or_none(flat.get("finish_reason")),
            )
        )
    return drafts


def _event_messages(span: _Span, event_name: str, key: str) -> list[_Draft]:
    for event in span.events:
        if event.get("name") == event_name:
            attributes = event.get("attributes") or {}
            return _chat_messages(_json_value(attributes.get(key)))
    return []


def _model_call_messages(span: _Span) -> tuple[list[_Draft], list[_Draft]]:
    """(input, output) messages of a model call, from the first convention that has them."""
    attributes = span.attributes
    if "gen_ai.input.messages" in attributes or "gen_ai.output.messages" in attributes:
        system = _semconv_instructions(attributes.get("gen_ai.system_instructions"))
        return (
            system + _semconv_messages(attributes.get("gen_ai.input.messages")),
            _semconv_messages(attributes.get("gen_ai.output.messages")),
        )
    if "llm.input_messages.0.message.role" in attributes or any(
        key.startswith("llm.output_messages.") for key in attributes
    ):
        return (
            _openinference_messages(attributes, "llm.input_messages."),
            _openinference_messages(attributes, "llm.output_messages."),
        )
    if "gen_ai.prompt.0.role" in attributes or "gen_ai.completion.0.role" in attributes:
        return (
            _openllmetry_messages(attributes, "gen_ai.prompt."),
            _openllmetry_messages(attributes, "gen_ai.completion."),
        )
    inputs = _event_messages(span, "gen_ai.content.prompt", "gen_ai.prompt")
    outputs = _event_messages(span, "gen_ai.content.completion", "gen_ai.completion")
    if inputs or outputs:
        return inputs, outputs
    return _value_messages(span)


def _semconv_instructions(value: Any) -> list[_Draft]:
    instructions = _json_value(value)
    if isinstance(instructions, str) and instructions:
        return [_Draft(role=Role.SYSTEM, text=instructions)]
    if isinstance(instructions, list):
        texts = [
            str(part.get("content") or "")
            for part in instructions
            if isinstance(part, dict) and part.get("type") == "text"
        ]
        if texts:
            return [_Draft(role=Role.SYSTEM, text="\n".join(texts))]
    return []


def _value_messages(span: _Span) -> tuple[list[_Draft], list[_Draft]]:
    """OpenInference's generic ``input.value`` / ``output.value``: a user turn and a reply."""
    inputs, outputs = [], []
    value = span.attributes.get("input.value")
    if isinstance(value, str) and value:
        inputs.append(_Draft(role=Role.USER, text=value))
    value = span.attributes.get("output.value")
    if isinstance(value, str) and value:
        outputs.append(_Draft(role=Role.ASSISTANT, text=value))
    return inputs, outputs


def _dump(value: Any) -> str:
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return str(value)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- tokens and names ---------------------------------------------------------------------


def _count(value: Any, span: _Span, key: str, ctx: ParseContext) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        ctx.warn("bad_token_count", f"{key} is not a number", f"{span.path}/attributes")
        return None
    number = int(value)
    if number < 0 or number > MAX_SAFE_INTEGER:
        ctx.warn("bad_token_count", f"{key} is out of range", f"{span.path}/attributes")
        return None
    return number


def _usage(span: _Span, ctx: ParseContext) -> TokenUsage | None:
    def read(*keys: str) -> int | None:
        for key in keys:
            if key in span.attributes:
                return _count(span.attributes[key], span, key, ctx)
        return None

    usage = TokenUsage(
        input=read(
            "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"
        ),
        output=read(
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.token_count.completion",
        ),
        total=read("gen_ai.usage.total_tokens", "llm.token_count.total"),
        cached=read(
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "llm.token_count.prompt_details.cache_read",
        ),
        reasoning=read(
            "gen_ai.usage.reasoning.output_tokens",
            "llm.token_count.completion_details.reasoning",
        ),
    )
    if usage.is_empty:
        return None
    if usage.total is None and usage.input is not None and usage.output is not None:
        usage = TokenUsage(
            input=usage.input,
            output=usage.output,
            total=usage.input + usage.output,
            cached=usage.cached,
            reasoning=usage.reasoning,
        )
    return usage


def _model(span: _Span) -> str | None:
    return span.text_attr("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")


def _agent_name(span: _Span) -> str | None:
    """The agent a span names; an agent span without a name attribute is named by the span."""
    name = span.text_attr("gen_ai.agent.name", "agent.name")
    if name is None and span.kind == "agent":
        name = span.name.removeprefix("invoke_agent ").removeprefix("create_agent ") or None
    return name


# --- the transcript -----------------------------------------------------------------------


@dataclass
class _Entry:
    draft: _Draft
    timestamp: datetime | None
    step: str | None = None
    model: str | None = None
    tokens: TokenUsage | None = None
    author: str | None = None
    span_id: str = ""


@dataclass(kw_only=True)
class _Context(ParseContext):
    entries: list[_Entry] = field(default_factory=list)
    seen: Counter = field(default_factory=Counter)
    answered: set[str] = field(default_factory=set)
    synthetic_calls: int = 0

    def add(self, entry: _Entry) -> None:
        draft = entry.draft
        if draft.role is Role.TOOL and draft.tool_call_id:
            if draft.tool_call_id in self.answered:
                return  # a tool span already gave this result
            self.answered.add(draft.tool_call_id)
        self.entries.append(entry)
        self.seen[draft.fingerprint()] += 1


def _model_call(span: _Span, step: str | None, ctx: _Context) -> list[TokenUsage]:
    inputs, outputs = _model_call_messages(span)
    model = _model(span)
    in_this_call: Counter = Counter()
    for draft in inputs:
        key = draft.fingerprint()
        in_this_call[key] += 1
        if in_this_call[key] <= ctx.seen[key]:
            continue  # history the call resends
        ctx.add(_Entry(draft, span.start, step=step, span_id=span.span_id))
    usage = _usage(span, ctx)
    if not outputs and usage is not None:
        outputs = [_Draft(role=Role.ASSISTANT)]  # the call's tokens need a turn to sit on
    for index, draft in enumerate(outputs):
        ctx.add(
            _Entry(
                draft,
                span.end,
                step=step,
                model=model if draft.role is Role.ASSISTANT else None,
                tokens=usage if index == 0 else None,
                author=step,
                span_id=span.span_id,
            )
        )
    return [usage] if usage is not None else []


def _tool_span(span: _Span, step: str | None, ctx: _Context) -> None:
    name = span.text_attr("gen_ai.tool.name", "tool.name") or span.name
    call_id = span.text_attr("gen_ai.tool.call.id", "tool_call.id")
    arguments = _arguments(span.attr("gen_ai.tool.call.arguments", "input.value"))
    result = span.attr("gen_ai.tool.call.result", "output.value")
    if call_id is None or not _has_call(ctx, call_id):
        call_id = _oldest_unanswered_call(ctx, name) if call_id is None else call_id
    if call_id is None or not _has_call(ctx, call_id):
        # A tool no model call asked for (or whose call we never saw): a call of its own.
        call_id = call_id or f"span:{span.span_id}"
        ctx.add(
            _Entry(
                _Draft(role=Role.ASSISTANT, tool_calls=[(call_id, name, arguments)]),
                span.start,
                step=step,
                author=step,
                span_id=span.span_id,
            )
        )
    if call_id in ctx.answered:
        return
    failed = span.failed
    text_value = span.error_text() if failed and result is None else result
    decoded = _json_value(text_value)
    ctx.add(
        _Entry(
            _Draft(
                role=Role.TOOL,
                text=decoded if isinstance(decoded, str) else _dump(decoded),
                parts=None if isinstance(decoded, str) or decoded is None else decoded,
                tool_call_id=call_id,
                name=name,
                tool_status=ToolStatus.ERROR if failed else ToolStatus.SUCCESS,
            ),
            span.end,
            step=step,
            author=name,
            span_id=span.span_id,
        )
    )


def _has_call(ctx: _Context, call_id: str) -> bool:
    return any(call[0] == call_id for entry in ctx.entries for call in entry.draft.tool_calls)


def _oldest_unanswered_call(ctx: _Context, name: str) -> str | None:
    for entry in ctx.entries:
        for call_id, call_name, _ in entry.draft.tool_calls:
            if call_name == name and call_id and call_id not in ctx.answered:
                return call_id
    return None


def _messages(ctx: _Context) -> list[Message]:
    messages = []
    for seq, entry in enumerate(ctx.entries):
        draft = entry.draft
        calls = tuple(
            ToolCall(call_id=call_id or f"tool_call:{seq}:{index}", name=name, arguments=args)
            for index, (call_id, name, args) in enumerate(draft.tool_calls)
        )
        messages.append(
            Message(
                seq=seq,
                role=draft.role,
                content_text=draft.text or "",
                content_parts=draft.parts,
                author=draft.name or entry.author,
                timestamp=entry.timestamp,
                timestamp_source=(
                    TimestampSource.EXPLICIT if entry.timestamp else TimestampSource.NONE
                ),
                step=entry.step,
                model=entry.model,
                tokens=entry.tokens,
                finish_reason=draft.finish_reason,
                tool_calls=calls,
                tool_call_id=draft.tool_call_id,
                tool_status=draft.tool_status,
                tool_status_source=(
                    StatusSource.EXPLICIT if draft.tool_status else StatusSource.NONE
                ),
                raw_role=draft.raw_role,
                extra={"span_id": entry.span_id} if entry.span_id else {},
            )
        )
    return messages


# --- the session --------------------------------------------------------------------------


def _wrappers_of_named_agents(spans: list[_Span], by_id: dict[str, _Span]) -> set[str]:
    """Unnamed agent and chain spans around a named agent (the OpenAI Agents SDK's
    "Agent workflow" trace span around the agent): the named agent is the step, not them."""
    wrappers: set[str] = set()
    for span in spans:
        if span.kind == "agent" and span.text_attr("gen_ai.agent.name", "agent.name"):
            parent = by_id.get(span.parent_id)
            seen = 0
            while parent is not None and seen < len(by_id):
                if parent.kind in ("agent", "chain") and not parent.text_attr(
                    "gen_ai.agent.name", "agent.name"
                ):
                    wrappers.add(parent.span_id)
                parent = by_id.get(parent.parent_id)
                seen += 1
    return wrappers


def parse(doc: Any) -> ParsedSession:
    expect(doc, dict, "")
    header = expect(doc.get("otel_session"), dict, "/otel_session")
    session_id = expect(header.get("id"), str, "/otel_session/id")
    ctx = _Context()
    spans = _read_spans(doc, ctx)
    by_id = {span.span_id: span for span in spans}

    step_of: dict[str, str | None] = {}
    steps: list[StepState] = []
    logs: list[LogEntry] = []
    usages: list[TokenUsage] = []
    agent = fallback_agent = user = None
    wrappers = _wrappers_of_named_agents(spans, by_id)
    for span in spans:
        parent = by_id.get(span.parent_id)
        step = step_of.get(parent.span_id) if parent is not None else None
        agent_name = _agent_name(span)
        is_step = span.kind == "agent" or (span.kind == "chain" and parent is None)
        if is_step and span.span_id not in wrappers:
            step = agent_name or span.name
            steps.append(
                StepState(
                    name=step,
                    order=len(steps),
                    state={"span_id": span.span_id, "trace_id": span.trace_id},
                    is_active=False,
                    saved_at=span.end,
                )
            )
        step_of[span.span_id] = step
        if span.text_attr("gen_ai.agent.name", "agent.name"):
            agent = agent or agent_name
        else:
            fallback_agent = fallback_agent or agent_name
        user = user or span.text_attr("user.id", "enduser.id", "gen_ai.user.id")
        if span.kind == "llm":
            usages.extend(_model_call(span, step, ctx))
        elif span.kind == "tool":
            _tool_span(span, step, ctx)
        if span.failed and span.kind != "tool":
            logs.append(
                LogEntry(
                    level=LogLevel.ERROR,
                    message=f"{span.name}: {span.error_text()}",
                    timestamp=span.end,
                    extra={"span_id": span.span_id, "trace_id": span.trace_id},
                    seq=len(logs),
                )
            )

    messages, pairing_warnings = pair_tool_calls(_messages(ctx), heuristic=looks_like_error)
    ctx.warnings.extend(pairing_warnings)
    agent = agent or fallback_agent
    if agent is None and spans:
        agent = _str_or_none(spans[0].resource.get("service.name"))

    traces = {span.trace_id for span in spans}
    roots = [span for span in spans if not span.parent_id]
    open_traces = traces - {span.trace_id for span in roots}
    if not spans:
        status, raw_status = SessionStatus.UNKNOWN, ""
    elif open_traces:
        status, raw_status = SessionStatus.RUNNING, ROOTS_OPEN
    else:
        # Every root has closed, yet the conversation may go on in a new trace: it stays
        # running until it has been idle long enough (lifecycle/otel_idle.py ends it).
        last_root = max(roots, key=lambda s: (s.end_ns, s.span_id))
        status = SessionStatus.RUNNING
        raw_status = ROOTS_CLOSED_ERROR if last_root.status_code == "ERROR" else ROOTS_CLOSED
    starts = [span.start for span in spans if span.start]
    ends = [span.end for span in spans if span.end]
    session = Session(
        source_format=FORMAT_ID,
        format_variant=V_SPANS,
        external_id=session_id,
        user_id=user,
        agent_name=agent,
        status=status,
        raw_status=raw_status,
        created_at=min(starts) if starts else None,
        updated_at=max(ends) if ends else None,
        tokens=sum_token_usages(usages, "/spans", skip_empty=True),
        messages=tuple(messages),
        steps=tuple(steps),
        logs=tuple(logs),
        metadata={
            "grouped_by": header.get("grouped_by"),
            "traces": len(traces),
            "spans": len(spans),
            "service": spans[0].resource.get("service.name") if spans else None,
        },
    )
    return ParsedSession(session=session, warnings=tuple(ctx.warnings))


ADAPTER = ModuleAdapter(FORMAT_ID, RULES, parse)
