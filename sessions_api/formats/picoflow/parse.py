"""Picoflow session documents (picoflow.io, ``@picoflow/core``) onto the canonical session.

Picoflow writes one JSON document per session to its session store.
Three generations are in the wild and all are read here:

- ``v1-ext``: a ``mongoexport`` of the Mongo document: ``_id`` is ``{"$oid": hex}``, dates are
  ``{"$date": ISO}``; a ``flows[]`` array; steps carry ``modelName`` and ``temperature``.
- ``v1-plain``: the same document with plain strings for ``_id`` and dates; steps carry
  ``modelName``, ``modelParamsName`` and ``modelParams``; ``flows[].sequence`` lists step names.
- ``v1.5``: a single ``flow`` object; ``memory`` is an object of namespaces
  ``{ns: {messages[]}}``; messages carry an explicit ``timestamp``; ``sequence`` entries are
  ``{level, stepName}``; ``currentStep`` names the active step; the model lives in
  ``flow.model`` (a step's ``model`` only when it overrides it); ``revision`` is a CAS counter;
  ``tokens`` adds reasoning/cache counts; there is no ``expireAfter``.

Quirks this adapter deals with:

- Messages are LangChain-serialised (``type`` system/human/ai/tool). Their ``id`` is
  ``"<StepName>|<ISO time>|<10 digits>"``: the step segment attributes a message to a step, and
  in v1 the time segment is the only per-message time (``derived-from-id``). A missing or bad
  time segment is a warning; the message keeps its place in document order. A v1.5 message
  without ``timestamp`` falls back to the id time the same way.
- A tool message's id may carry the *next* step's name (the tool triggered the transition), so
  a paired tool result is attributed to the step of the AI message that made the call; the id's
  own step is kept in ``extra["id_step"]``.
- Tool status is explicit (``status`` success/error), so pairing runs without the text
  heuristic: a tool message without a status stays ``unknown`` rather than being guessed.
- Expiry: the docs only say a session "expires after ``expireAfter`` seconds" without naming the
  basis; we use ``saveOn + expireAfter`` (the last save) and keep the raw seconds in
  ``expire_after_s``. v1 ``temperature: -1`` means "provider default" and is kept verbatim.
- Tokens are session totals only. An AI message's model is its step's model: that is how the
  dashboard attributes tokens to models.
- Messages are concatenated across flows and namespaces in document order and never deduped:
  steps that share memory legitimately repeat messages.

What the canonical session gets beyond the obvious fields:

- ``steps`` are ordered by first activation in their flow's ``sequence`` (steps never activated
  come last, in ``steps[]`` order); ``model_params`` holds ``temperature``/``preset``
  (modelParamsName)/``params`` in v1 and ``provider``/``params``/``retryAttempts`` in v1.5.
- ``flows``: one ``{"name", "namespaces", "sequence": [{"step", "level"}], "current_step",
  "context"}`` per flow, plus ``temperature`` (v1), ``model`` and ``summaries`` (v1.5).
- A field of the wrong JSON type raises InvalidDocument at its JSON pointer; nothing is
  coerced ("451" is not 451). Odd but survivable things are warnings.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from sessions_api.formats.base import (
    LATEST_PLAUSIBLE,
    MAX_SAFE_INTEGER,
    DetectionRule,
    InvalidDocument,
    ModuleAdapter,
    ParseContext,
    array_items,
    checked_content,
    expect,
    optional,
    parse_timestamp,
    pointer,
    pointer_join,
    token_count,
)
from sessions_api.formats.common import parse_tool_arguments
from sessions_api.formats.pairing import pair_tool_calls

FORMAT_ID = "picoflow"
V1_EXT, V1_PLAIN, V1_5 = "v1-ext", "v1-plain", "v1.5"

_ROLES = {"system": Role.SYSTEM, "human": Role.USER, "ai": Role.ASSISTANT, "tool": Role.TOOL}
_RUN_STATUSES = {
    "running": SessionStatus.RUNNING,
    "completed": SessionStatus.COMPLETED,
    "aborted": SessionStatus.ABORTED,
}
_TOOL_STATUSES = {"success": ToolStatus.SUCCESS, "error": ToolStatus.ERROR}
_LOG_ARRAYS = (
    ("log", LogLevel.LOG),
    ("error", LogLevel.ERROR),
    ("warn", LogLevel.WARN),
    ("debug", LogLevel.DEBUG),
    ("verbose", LogLevel.VERBOSE),
)
# (document key, TokenUsage field)
_TOKEN_FIELDS = (
    ("inputTokens", "input"),
    ("outputTokens", "output"),
    ("totalTokens", "total"),
    ("reasoningTokens", "reasoning"),
    ("cachedInputTokens", "cached"),
    ("cacheCreationInputTokens", "cache_write"),
)


# --- detection (rule 1) ----------------------------------------------------------------------


def looks_like_picoflow(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and "runStatus" in doc
        and ("flow" in doc or "flows" in doc)
        and all(key in doc for key in ("log", "error", "warn"))
    )


def variant_of(doc: dict[str, Any]) -> str:
    """The generation, exactly as detection rule 1 tells them apart (so detection and parsing
    agree)."""
    if isinstance(doc.get("flow"), dict):
        return V1_5
    if isinstance(doc.get("createdOn"), dict) or isinstance(doc.get("_id"), dict):
        return V1_EXT
    return V1_PLAIN


def _rule(variant: str, shape: str) -> DetectionRule:
    # One rule per generation, all numbered 1: they are mutually exclusive through variant_of.
    return DetectionRule(
        number=1,
        format_id=FORMAT_ID,
        description=f"Picoflow {variant} (runStatus + flow/flows + log/error/warn; {shape})",
        matches=lambda doc: looks_like_picoflow(doc) and variant_of(doc) == variant,
        variant=variant,
    )


# --- parse state ------------------------------------------------------------------------------


@dataclass(kw_only=True)
class _Parse(ParseContext):
    variant: str
    messages: list[Message] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class _Where:
    """Where a message sits: its flow and namespace, and the models its steps use."""

    flow: str | None
    namespace: str | None
    step_models: dict[str, str | None]
    default_model: str | None


@dataclass
class _Flow:
    name: str | None
    info: dict[str, Any]
    steps: list[StepState]
    context: Any


def _timestamp(value: Any, path: str, ctx: _Parse) -> datetime | None:
    """An ISO string or ``{"$date": ...}``; other types are wrong, unreadable values warn."""
    if value is None:
        return None
    if isinstance(value, dict):
        inner = expect(value.get("$date"), (str, int, dict), pointer_join(path, "$date"))
        if isinstance(inner, dict):
            expect(inner.get("$numberLong"), str, pointer_join(path, "$date", "$numberLong"))
    else:
        expect(value, str, path)
    return parse_timestamp(value, path, ctx.warnings)


def _as_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):
        return repr(value)[:200]


# --- session-level fields ---------------------------------------------------------------------


def _session_id(doc: dict[str, Any], ctx: _Parse) -> str:
    doc_id = optional(doc, "id", str, "")
    mongo_id = _mongo_id(doc.get("_id"))
    if doc_id and mongo_id and doc_id != mongo_id:
        ctx.warn("id_mismatch", f"id {doc_id!r} differs from _id {mongo_id!r}; using id", "/id")
    external_id = doc_id or mongo_id
    if not external_id:
        raise InvalidDocument(
            "missing session id: a Picoflow document needs `id` or `_id`",
            path="/id",
            code="missing_session_id",
        )
    return external_id


def _mongo_id(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    expect(value, (str, dict), "/_id")
    return expect(value.get("$oid"), str, "/_id/$oid")


def _run_status(doc: dict[str, Any], ctx: _Parse) -> tuple[SessionStatus, str | None]:
    raw = optional(doc, "runStatus", str, "")
    if raw is None:
        ctx.warn("missing_status", "no runStatus; status is unknown", "/runStatus")
        return SessionStatus.UNKNOWN, None
    status = _RUN_STATUSES.get(raw)
    if status is None:
        ctx.warn("unknown_status", f"unknown runStatus {raw[:80]!r}; kept as raw", "/runStatus")
        return SessionStatus.UNKNOWN, raw
    return status, raw


def _expiry(
    doc: dict[str, Any], saved_at: datetime | None, ctx: _Parse
) -> tuple[int | None, datetime | None]:
    seconds = optional(doc, "expireAfter", int, "")
    if seconds is None:
        return None, None
    if not 0 <= seconds <= MAX_SAFE_INTEGER:
        raise InvalidDocument(
            f"/expireAfter: {seconds} is out of range (0 to 2^53-1 seconds)",
            path="/expireAfter",
            code="out_of_range",
        )
    if saved_at is None:
        ctx.warn("expiry_without_basis", "expireAfter without a readable saveOn", "/expireAfter")
        return seconds, None
    try:
        expires_at: datetime | None = saved_at + timedelta(seconds=seconds)
    except OverflowError:
        expires_at = None
    if expires_at is None or expires_at > LATEST_PLAUSIBLE:
        ctx.warn(
            "implausible_expiry", f"saveOn + {seconds} s is not a plausible date", "/expireAfter"
        )
        return seconds, None
    return seconds, expires_at


def _tokens(doc: dict[str, Any]) -> tuple[TokenUsage, int | None]:
    """Session totals (the only usage Picoflow records) and v1.5 visibleOutputTokens."""
    tokens = optional(doc, "tokens", dict, "")
    if tokens is None:
        return TokenUsage(), None
    counts = {
        name: token_count(tokens.get(key), pointer("tokens", key)) for key, name in _TOKEN_FIELDS
    }
    visible = token_count(tokens.get("visibleOutputTokens"), "/tokens/visibleOutputTokens")
    return TokenUsage(**counts), visible


def _logs(doc: dict[str, Any], ctx: _Parse) -> tuple[LogEntry, ...]:
    entries: list[LogEntry] = []
    for key, level in _LOG_ARRAYS:
        for _, item, path in array_items(doc, key, ""):
            entries.append(_log_entry(item, level, path, len(entries), ctx))
    return tuple(entries)


def _log_entry(item: Any, level: LogLevel, path: str, seq: int, ctx: _Parse) -> LogEntry:
    if isinstance(item, str):
        return LogEntry(level=level, message=item, seq=seq)
    if not isinstance(item, dict):
        # A log line is never worth rejecting the session for: show it as it was written.
        ctx.warn("odd_log_entry", f"log entry is a {type(item).__name__}, not text/object", path)
        return LogEntry(level=level, message=_as_text(item), seq=seq)
    message = item.get("message")
    if not isinstance(message, str):
        message = "" if message is None else _as_text(message)
    timestamp = parse_timestamp(
        item.get("timestamp"), pointer_join(path, "timestamp"), ctx.warnings
    )
    extra = {k: v for k, v in item.items() if k not in ("message", "timestamp")}
    if extra.get("level") == level.value:
        del extra["level"]  # the array already says it
    return LogEntry(level=level, message=message, timestamp=timestamp, extra=extra or None, seq=seq)


# --- flows, steps, memory ---------------------------------------------------------------------


def _flows(doc: dict[str, Any], ctx: _Parse) -> list[_Flow]:
    if ctx.variant == V1_5:
        return [_flow(doc["flow"], "/flow", ctx)]
    if "flows" not in doc and "flow" in doc:
        expect(doc["flow"], dict, "/flow")  # a `flow` that is not an object: say so there
    return [_flow(raw, path, ctx) for _, raw, path in array_items(doc, "flows", "")]


def _flow(raw: Any, path: str, ctx: _Parse) -> _Flow:
    expect(raw, dict, path)
    name = optional(raw, "name", str, path)
    context = optional(raw, "context", dict, path)
    info: dict[str, Any] = {"name": name}
    default_model, default_params = None, None
    if ctx.variant == V1_5:
        default_model, default_params = _model_spec(raw.get("model"), pointer_join(path, "model"))
        if raw.get("model") is not None:
            info["model"] = raw["model"]
    elif raw.get("temperature") is not None:
        info["temperature"] = expect(
            raw["temperature"], (int, float), pointer_join(path, "temperature")
        )

    steps = [
        _step(item, item_path, name, ctx, default_model, default_params)
        for _, item, item_path in array_items(raw, "steps", path)
    ]
    current_step = _current_step(raw, path, steps, ctx)
    if ctx.variant == V1_5:
        steps = [dataclasses.replace(s, is_active=s.name == current_step) for s in steps]

    where_models = {step.name: step.model for step in steps}
    namespaces, summaries = _memory(raw, path, ctx, name, where_models, default_model)
    info.update(
        namespaces=namespaces,
        sequence=_sequence(raw, path, ctx),
        current_step=current_step,
        context=context,
    )
    if summaries:
        info["summaries"] = summaries
    return _Flow(name=name, info=info, steps=steps, context=context)


def _current_step(
    raw: dict[str, Any], path: str, steps: list[StepState], ctx: _Parse
) -> str | None:
    if ctx.variant != V1_5:
        # v1 has no currentStep: the step flagged isActive is the current one.
        return next((step.name for step in steps if step.is_active), None)
    current = optional(raw, "currentStep", str, path)
    if current is not None and all(step.name != current for step in steps):
        ctx.warn("unknown_current_step", f"currentStep {current!r} is not in steps[]", path)
    return current


def _model_spec(value: Any, path: str) -> tuple[str | None, dict[str, Any] | None]:
    """A v1.5 model ``{provider, name, params, retryAttempts?}`` as (name, model_params)."""
    if value is None:
        return None, None
    if isinstance(value, str):
        return value, None  # tolerate a bare model name
    expect(value, dict, path)
    params = {
        key: found
        for key, kind in (("provider", str), ("params", dict), ("retryAttempts", int))
        if (found := optional(value, key, kind, path)) is not None
    }
    return optional(value, "name", str, path), params or None


def _step(
    raw: Any,
    path: str,
    flow: str | None,
    ctx: _Parse,
    default_model: str | None,
    default_params: dict[str, Any] | None,
) -> StepState:
    expect(raw, dict, path)
    name = expect(raw.get("name"), str, pointer_join(path, "name"))
    state = optional(raw, "state", dict, path)
    saved_at = None
    if state is not None:
        state = dict(state)
        saved_at = _timestamp(
            state.pop("_saveOn", None), pointer_join(path, "state", "_saveOn"), ctx
        )
    if ctx.variant == V1_5:
        is_active = None  # set from flow.currentStep by the caller
        if raw.get("model") is not None:
            model, params = _model_spec(raw["model"], pointer_join(path, "model"))
        else:
            model, params = default_model, default_params
    else:
        is_active = optional(raw, "isActive", bool, path)
        model = optional(raw, "modelName", str, path)
        params = _v1_model_params(raw, path)
    return StepState(
        name=name,
        order=0,  # assigned from the flow's sequence by _ordered_steps
        state=state,
        is_active=is_active,
        model=model,
        model_params=params,
        saved_at=saved_at,
        flow=flow,
    )


def _v1_model_params(raw: dict[str, Any], path: str) -> dict[str, Any] | None:
    params = {
        out: found
        for key, out, kind in (
            ("temperature", "temperature", (int, float)),  # -1 = provider default
            ("modelParamsName", "preset", str),
            ("modelParams", "params", dict),
        )
        if (found := optional(raw, key, kind, path)) is not None
    }
    return params or None


def _sequence(raw: dict[str, Any], path: str, ctx: _Parse) -> list[dict[str, Any]]:
    """Step activation order, repeats kept: v1 bare names, v1.5 ``{level, stepName}``."""
    entries: list[dict[str, Any]] = []
    for _, item, item_path in array_items(raw, "sequence", path):
        if isinstance(item, str):
            entries.append({"step": item, "level": 1})
            continue
        expect(item, (str, dict), item_path)
        step = expect(item.get("stepName"), str, pointer_join(item_path, "stepName"))
        level = optional(item, "level", int, item_path)
        if level is None or level < 1:
            ctx.warn("bad_step_level", f"sequence level {level!r} is not >= 1; using 1", item_path)
            level = 1
        entries.append({"step": step, "level": level})
    return entries


def _memory(
    raw: dict[str, Any],
    path: str,
    ctx: _Parse,
    flow: str | None,
    step_models: dict[str, str | None],
    default_model: str | None,
) -> tuple[list[str | None], dict[str, Any]]:
    """Append the flow's messages to ``ctx.messages``; return its namespaces and summaries."""
    namespaces: list[str | None] = []
    summaries: dict[str, Any] = {}
    for namespace, entry_path, entry, key in _namespaces(raw, path, ctx):
        namespaces.append(namespace)
        where = _Where(flow, namespace, step_models, default_model)
        for _, message, message_path in array_items(entry, key, entry_path):
            ctx.messages.append(_message(message, message_path, ctx, where))
        if namespace is not None and entry.get("summary") is not None:
            summaries[namespace] = {
                "summary": entry["summary"],
                "summarized_through_id": entry.get("summarizedThroughId"),
            }
    return namespaces, summaries


def _namespaces(
    raw: dict[str, Any], path: str, ctx: _Parse
) -> Iterator[tuple[str | None, str, dict[str, Any], str]]:
    """(namespace, entry path, entry, message-list key) for v1 ``memory[]`` or v1.5 ``memory{}``."""
    if ctx.variant == V1_5:
        memory = optional(raw, "memory", dict, path) or {}
        for namespace, entry in memory.items():
            entry_path = pointer_join(path, "memory", namespace)
            yield namespace, entry_path, expect(entry, dict, entry_path), "messages"
        return
    for _, entry, entry_path in array_items(raw, "memory", path):
        expect(entry, dict, entry_path)
        yield optional(entry, "nameSpace", str, entry_path), entry_path, entry, "history"


# --- messages ---------------------------------------------------------------------------------


def _message(raw: Any, path: str, ctx: _Parse, where: _Where) -> Message:
    expect(raw, dict, path)
    seq = len(ctx.messages)
    raw_type = optional(raw, "type", str, path)
    role = _ROLES.get(raw_type or "")
    if role is None:
        ctx.warn("unknown_role", f"unknown message type {raw_type!r}; shown as other", path)
        role = Role.OTHER
    # Text, or an object from a structured-output step (kept whole as parts).
    text, parts = checked_content(raw.get("content"), f"{path}/content", (str, dict, list))
    message_id = optional(raw, "id", str, path)
    step, id_time = _split_message_id(message_id)
    timestamp, timestamp_source = _message_time(raw, id_time, path, ctx)
    kwargs = optional(raw, "additional_kwargs", dict, path)
    tool_call_id, tool_status, status_source = _tool_result_fields(raw, role, path, ctx)
    model = None
    if role is Role.ASSISTANT:
        model = where.step_models.get(step or "") or where.default_model
    return Message(
        seq=seq,
        role=role,
        content_text=text,
        content_parts=parts,
        external_id=message_id,
        author=optional(raw, "name", str, path),
        timestamp=timestamp,
        timestamp_source=timestamp_source,
        step=step,
        namespace=where.namespace,
        flow=where.flow,
        model=model,
        tool_calls=_tool_calls(raw, path, seq, ctx) if role is Role.ASSISTANT else (),
        tool_call_id=tool_call_id,
        tool_status=tool_status,
        tool_status_source=status_source,
        raw_role=raw_type if role is Role.OTHER else None,
        extra={"additional_kwargs": kwargs} if kwargs else {},
    )


def _split_message_id(message_id: str | None) -> tuple[str | None, str | None]:
    """``"<Step>|<ISO time>|<digits>"`` -> (step, time segment); anything else -> (None, None)."""
    if not message_id or "|" not in message_id:
        return None, None
    step, time_segment = message_id.split("|")[:2]
    return step or None, time_segment


def _message_time(
    raw: dict[str, Any], id_time: str | None, path: str, ctx: _Parse
) -> tuple[datetime | None, TimestampSource]:
    if raw.get("timestamp") is not None:
        explicit = _timestamp(raw["timestamp"], f"{path}/timestamp", ctx)
        return explicit, TimestampSource.EXPLICIT if explicit else TimestampSource.NONE
    id_path = f"{path}/id"
    if id_time is None:
        ctx.warn("no_message_time", "message id has no time segment; document order used", id_path)
        return None, TimestampSource.NONE
    derived = parse_timestamp(id_time, id_path, ctx.warnings)
    return derived, TimestampSource.DERIVED_FROM_ID if derived else TimestampSource.NONE


def _tool_result_fields(
    raw: dict[str, Any], role: Role, path: str, ctx: _Parse
) -> tuple[str | None, ToolStatus | None, StatusSource]:
    if role is not Role.TOOL:
        return None, None, StatusSource.NONE
    call_id = optional(raw, "tool_call_id", str, path)
    if call_id is None:
        ctx.warn("tool_result_without_call_id", "tool message without tool_call_id", path)
    raw_status = optional(raw, "status", str, path)
    if raw_status is None:
        return call_id, None, StatusSource.NONE
    status = _TOOL_STATUSES.get(raw_status)
    if status is None:
        ctx.warn("unknown_tool_status", f"unknown tool status {raw_status[:80]!r}", path)
        return call_id, ToolStatus.UNKNOWN, StatusSource.NONE
    return call_id, status, StatusSource.EXPLICIT


def _tool_calls(raw: dict[str, Any], path: str, seq: int, ctx: _Parse) -> tuple[ToolCall, ...]:
    calls = []
    for index, item, item_path in array_items(raw, "tool_calls", path):
        expect(item, dict, item_path)
        call_id = optional(item, "id", str, item_path)
        if not call_id:
            ctx.warn("tool_call_without_id", "tool call without id; it cannot be paired", item_path)
            call_id = f"missing-id:{seq}:{index}"
        # Picoflow writes args as an object; a string is parsed if it holds JSON, else kept.
        arguments, arguments_error = parse_tool_arguments(
            item.get("args"),
            pointer_join(item_path, "args"),
            ctx.warnings,
            check_type=False,
            blank_is_none=False,
        )
        calls.append(
            ToolCall(
                call_id=call_id,
                name=optional(item, "name", str, item_path) or "",
                arguments=arguments,
                arguments_error=arguments_error,
            )
        )
    return tuple(calls)


def _attribute_results_to_calling_step(messages: list[Message]) -> list[Message]:
    """A paired tool result belongs to its AI message's step, not the one its id names."""
    calling_step = {
        call.result_seq: message.step
        for message in messages
        for call in message.tool_calls
        if call.result_seq is not None and message.step is not None
    }
    result = []
    for message in messages:
        step = calling_step.get(message.seq)
        if step is not None and step != message.step:
            extra = {**message.extra, "id_step": message.step}
            message = dataclasses.replace(message, step=step, extra=extra)
        result.append(message)
    return result


def _ordered_steps(flows: list[_Flow]) -> tuple[StepState, ...]:
    """Steps in activation order (first appearance in each flow's sequence), then the rest."""
    ordered: list[StepState] = []
    for flow in flows:
        first_seen: dict[str, tuple[int, int]] = {}
        for index, entry in enumerate(flow.info["sequence"]):
            first_seen.setdefault(entry["step"], (index, entry["level"]))
        unseen = len(flow.info["sequence"])
        ranked = sorted(
            enumerate(flow.steps),
            key=lambda pair: first_seen.get(pair[1].name, (unseen + pair[0], 1))[0],
        )
        for _, step in ranked:
            level = first_seen.get(step.name, (0, 1))[1]
            ordered.append(dataclasses.replace(step, order=len(ordered), level=level))
    return tuple(ordered)


def _session_context(flows: list[_Flow]) -> Any:
    if len(flows) <= 1:
        return flows[0].context if flows else None
    contexts: dict[str, Any] = {}
    for index, flow in enumerate(flows):
        key = flow.name if flow.name and flow.name not in contexts else str(index)
        contexts[key] = flow.context
    return contexts


# --- the adapter ------------------------------------------------------------------------------


RULES: tuple[DetectionRule, ...] = (
    _rule(V1_5, "`flow` is an object"),
    _rule(V1_EXT, "createdOn/_id are Mongo extended JSON"),
    _rule(V1_PLAIN, "plain `_id` and dates"),
)


def parse(doc: Any) -> ParsedSession:
    """Map a Picoflow session document (any generation) onto the canonical session."""
    expect(doc, dict, "")
    ctx = _Parse(variant=variant_of(doc))
    external_id = _session_id(doc, ctx)
    status, raw_status = _run_status(doc, ctx)
    created_at = _timestamp(doc.get("createdOn"), "/createdOn", ctx)
    updated_at = _timestamp(doc.get("saveOn"), "/saveOn", ctx)
    expire_after_s, expires_at = (
        (None, None) if ctx.variant == V1_5 else _expiry(doc, updated_at, ctx)
    )
    tokens, visible_output = _tokens(doc)
    version = optional(doc, "version", (int, float), "")
    revision = optional(doc, "revision", int, "")
    flows = _flows(doc, ctx)
    logs = _logs(doc, ctx)

    # Status is explicit in Picoflow: no text heuristic (see the module docstring).
    messages, pairing_warnings = pair_tool_calls(ctx.messages, heuristic=None)
    messages = _attribute_results_to_calling_step(messages)

    metadata: dict[str, Any] = {"version": version}
    if expire_after_s is not None:
        metadata["expiry_basis"] = "saveOn + expireAfter"
    if visible_output is not None:
        metadata["visible_output_tokens"] = visible_output
    session = Session(
        source_format=FORMAT_ID,
        format_variant=ctx.variant,
        external_id=external_id,
        agent_name=flows[0].name if flows else None,
        status=status,
        raw_status=raw_status,
        created_at=created_at,
        updated_at=updated_at,
        expires_at=expires_at,
        expire_after_s=expire_after_s,
        revision=revision,
        context=_session_context(flows),
        tokens=tokens,
        messages=tuple(messages),
        steps=_ordered_steps(flows),
        logs=logs,
        flows=tuple(flow.info for flow in flows),
        metadata=metadata,
    )
    return ParsedSession(session=session, warnings=(*ctx.warnings, *pairing_warnings))


ADAPTER = ModuleAdapter(FORMAT_ID, RULES, parse)
