"""LangChain message lists and LangGraph thread state onto the canonical session.

Shapes recognised, each reported as ``format_variant`` (with their detection rules):

- ``thread-state`` (rule 8): a LangGraph thread state as ``graph.get_state()`` serialised by the
  LangGraph API server: ``{values, next, tasks, metadata, created_at, checkpoint,
  parent_checkpoint, interrupts, ...}``. The rule needs ``values`` and ``next`` plus one of
  ``checkpoint``/``config``/``tasks``/``metadata``/``created_at`` (the API server writes
  ``checkpoint``; a ``StateSnapshot._asdict()`` has ``config`` instead, so either is accepted).
- ``state-history`` (rule 8): a list of such states (``graph.get_state_history()``), newest
  first. The session is the newest state; every state becomes a step.
- ``messages_to_dict`` (rule 12): a list (bare, or under ``messages`` in an app envelope) of
  ``{"type", "data": {...model_dump...}}`` — what the chat-history stores write.
- ``dumpd`` (rule 13): a list (bare or under ``messages``) of
  ``{"lc": 1, "type": "constructor", "id": [..., "AIMessage"], "kwargs": {...}}``; ``kwargs``
  holds only the fields that differ from their defaults.
- ``model_dump`` (rule 14): a list (bare or under ``messages``) of flat
  ``{"type": "human"|"ai"|"system"|"tool"|..., "content", ...}``.

A rule matches only when *every* item of the list has its shape (a mixed list is forced with
``?format=langchain``, and then each item is read by its own shape). Inside a thread state the
``values.messages`` items may have any of the three shapes.

Quirks of the format, and what this adapter does about them:

- Roles come from the message type: human -> user, ai -> assistant, system, tool, function
  (legacy, a tool result without a call id), chat (its own ``role``), remove (LangGraph's
  deletion marker, shown as ``other``); ``*MessageChunk`` types map like their message. An
  unknown type is ``other`` with a warning. In ``dumpd`` the class name (last ``id`` element)
  decides; in ``messages_to_dict`` the outer ``type`` does (it is what ``messages_from_dict``
  reads) and a differing inner ``data.type`` is a warning.
- Content is a string or a list of blocks (``text``, ``image_url``, ``thinking``, ``tool_use``,
  v1 ``reasoning``/``tool_call`` ...): text blocks make the text, the list is kept whole as
  parts (so a ``thinking`` block is shown as structured content, not as text).
- Tool calls come from ``tool_calls`` (``args`` is already an object). Provider blocks in the
  content that repeat a call (Anthropic ``tool_use``, v1 ``tool_call`` with the same id) are not
  counted twice; such a block whose id is *not* in ``tool_calls`` becomes a call with a warning.
  A message serialised before ``tool_calls`` existed (no such key) has its raw OpenAI
  ``additional_kwargs.tool_calls`` read instead.
- ``invalid_tool_calls`` (arguments that failed to parse) are shown as calls whose
  ``arguments`` is the raw string and whose ``arguments_error`` is LangChain's ``error``, with a
  warning. If a tool message answers one it is paired like any call; otherwise its status is
  ``unknown`` (it never ran: not ``pending``, and not counted as a tool error).
- Tool status is explicit: ``ToolMessage.status`` ``success``/``error``; a tool message
  without ``status`` (written before the field existed, or ``dumpd`` of the default) is
  ``success`` — except when its text is LangGraph ``ToolNode``'s error template
  (``"Error: ...\\n Please fix your mistakes."`` or ``"Error: X is not a valid tool..."``),
  which is ``error`` by ``convention``. An explicit ``success`` with that text stays
  ``success`` with a warning. Pairing runs without the text heuristic.
- Tokens: ``usage_metadata`` on AI messages (``input_token_details.cache_read`` -> cached,
  ``cache_creation`` -> cache_write, ``output_token_details.reasoning`` -> reasoning); the
  session total is their sum (source ``summed``); none at all -> unknown (all null).
- Model: ``response_metadata.model_name`` or ``model``; finish reason: ``finish_reason`` or
  ``stop_reason`` there.
- No per-message timestamps anywhere: messages keep document order. A thread state's
  ``created_at`` is the session's ``updated_at``; a history's oldest state gives ``created_at``.
- Session id: the state's ``checkpoint.thread_id`` (or ``config.configurable.thread_id``); an
  envelope's ``session_id``/``thread_id``/``id``; a bare list has none (``external_id`` None:
  the ingest service derives one from the content hash).
- Status (thread state only): a task with an ``error`` -> ``error`` (the error is also an
  ``error`` log entry); else non-empty ``next``/``tasks``/``interrupts`` -> ``running``
  (interrupts are ``event`` log entries); else ``unknown``. Message lists: ``unknown``.
- Steps: one per state, named ``"step <metadata.step>: <node>"`` where the node is what wrote
  that checkpoint (the previous state's task names in a history, ``metadata.writes`` keys in
  older versions), else ``"step <n> (<metadata.source>)"``; the newest is active. In a
  history each message is attributed to the step where its id first appears. Messages that
  older states hold but the newest does not (removed, or another fork) are reported in a
  warning.
- User/agent: ``metadata.user_id`` (or ``config.configurable.user_id``);
  ``metadata.graph_id``/``assistant_id``. The other ``values`` channels are the session
  ``state``; the rest of the envelope is in ``Session.metadata``.
- Every other non-empty message field (``additional_kwargs``, the rest of
  ``response_metadata``, ``artifact``, unknown keys) is kept in ``Message.extra``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sessions_api.domain import (
    LogEntry,
    LogLevel,
    Message,
    ParsedSession,
    ParseWarning,
    Role,
    Session,
    SessionStatus,
    StatusSource,
    StepState,
    TokenUsage,
    ToolCall,
    ToolStatus,
)
from sessions_api.formats.base import (
    DetectionRule,
    InvalidDocument,
    ModuleAdapter,
    ParseContext,
    array_items,
    content_to_text,
    enumerate_array,
    expect,
    optional,
    parse_timestamp,
    pointer_join,
)
from sessions_api.formats.common import (
    first_id,
    first_string,
    parse_tool_arguments,
    read_usages,
    sum_token_usages,
    tool_call_id,
    usage_count,
)
from sessions_api.formats.pairing import pair_tool_calls

FORMAT_ID = "langchain"

V_THREAD_STATE = "thread-state"
V_STATE_HISTORY = "state-history"
V_MESSAGES_TO_DICT = "messages_to_dict"
V_DUMPD = "dumpd"
V_MODEL_DUMP = "model_dump"

# Message `type` -> canonical role (None: read the ChatMessage's own `role`).
_TYPE_ROLES: dict[str, Role | None] = {
    "human": Role.USER,
    "ai": Role.ASSISTANT,
    "system": Role.SYSTEM,
    "tool": Role.TOOL,
    "function": Role.TOOL,
    "chat": None,
    "remove": Role.OTHER,
}
# Serialisable class names (dumpd `id[-1]`, and the `type` of chunk messages) -> message type.
_CLASS_TYPES = {
    "HumanMessage": "human",
    "AIMessage": "ai",
    "SystemMessage": "system",
    "ToolMessage": "tool",
    "FunctionMessage": "function",
    "ChatMessage": "chat",
    "RemoveMessage": "remove",
    "HumanMessageChunk": "human",
    "AIMessageChunk": "ai",
    "SystemMessageChunk": "system",
    "ToolMessageChunk": "tool",
    "FunctionMessageChunk": "function",
    "ChatMessageChunk": "chat",
}
_MESSAGE_TYPES = frozenset(_TYPE_ROLES) | frozenset(_CLASS_TYPES)
_CHAT_ROLES = {
    "user": Role.USER,
    "human": Role.USER,
    "assistant": Role.ASSISTANT,
    "ai": Role.ASSISTANT,
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "tool": Role.TOOL,
    "function": Role.TOOL,
}
_TOOL_STATUSES = {"success": ToolStatus.SUCCESS, "error": ToolStatus.ERROR}
# Content blocks that repeat a tool call of `tool_calls` (provider-native and v1 standard).
_CALL_BLOCK_TYPES = frozenset({"tool_use", "tool_call"})
# Message fields read into Message fields (the rest of a message lands in `extra`).
_MESSAGE_KEYS = frozenset(
    {
        "content",
        "type",
        "id",
        "name",
        "additional_kwargs",
        "response_metadata",
        "tool_calls",
        "invalid_tool_calls",
        "usage_metadata",
        "tool_call_id",
        "status",
        "role",
    }
)
_RESPONSE_METADATA_READ = ("model_name", "model", "finish_reason", "stop_reason")
# Keys of a thread state that become something other than Session.metadata.
_STATE_READ_KEYS = frozenset({"values", "created_at"})
_ENVELOPE_ID_KEYS = ("session_id", "thread_id", "id")
_ENVELOPE_USER_KEYS = ("user_id", "user")
_ENVELOPE_READ_KEYS = frozenset(
    {"messages", "title", "created_at", "updated_at", "metadata", *_ENVELOPE_ID_KEYS}
    | set(_ENVELOPE_USER_KEYS)
)
_THREAD_STATE_MARKERS = ("checkpoint", "config", "tasks", "metadata", "created_at")
# LangGraph ToolNode's error texts (TOOL_CALL_ERROR_TEMPLATE, INVALID_TOOL_NAME_ERROR_TEMPLATE).
_TOOLNODE_ERROR_SUFFIX = "Please fix your mistakes."
_TOOLNODE_INVALID_TOOL = "is not a valid tool, try one of ["


# --------------------------------------------------------------------------------- detection


def _message_list(doc: Any) -> list[Any] | None:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and isinstance(doc.get("messages"), list):
        return doc["messages"]
    return None


def _is_to_dict_item(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("type"), str)
        and isinstance(item.get("data"), dict)
        and "content" in item["data"]
    )


def _is_dumpd_item(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    lc, ident = item.get("lc"), item.get("id")
    return (
        type(lc) is int
        and lc == 1
        and item.get("type") == "constructor"
        and isinstance(ident, list)
        and bool(ident)
        and ident[-1] in _CLASS_TYPES
        and "kwargs" in item
    )


def _is_model_dump_item(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("type") in _MESSAGE_TYPES
        and "content" in item
        and "data" not in item
        and "lc" not in item
    )


def _all_items(doc: Any, test: Any) -> bool:
    items = _message_list(doc)
    return bool(items) and all(test(item) for item in items)  # type: ignore[union-attr]


def _is_thread_state(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and "values" in doc
        and "next" in doc
        and any(key in doc for key in _THREAD_STATE_MARKERS)
    )


def _is_state_history(doc: Any) -> bool:
    return isinstance(doc, list) and bool(doc) and all(_is_thread_state(item) for item in doc)


_SNIFFERS = (
    (V_THREAD_STATE, _is_thread_state),
    (V_STATE_HISTORY, _is_state_history),
    (V_MESSAGES_TO_DICT, lambda doc: _all_items(doc, _is_to_dict_item)),
    (V_DUMPD, lambda doc: _all_items(doc, _is_dumpd_item)),
    (V_MODEL_DUMP, lambda doc: _all_items(doc, _is_model_dump_item)),
)


def sniff_variant(doc: Any) -> str | None:
    """The variant one of this adapter's rules gives ``doc``, or None. Never raises."""
    for variant, test in _SNIFFERS:
        try:
            if test(doc):
                return variant
        except (AttributeError, TypeError, KeyError, IndexError):
            return None
    return None


RULES: tuple[DetectionRule, ...] = (
    DetectionRule(
        number=8,
        format_id=FORMAT_ID,
        description="LangGraph thread state (values + next + checkpoint/config/tasks/metadata)",
        matches=_is_thread_state,
        variant=V_THREAD_STATE,
    ),
    DetectionRule(
        number=8,
        format_id=FORMAT_ID,
        description="LangGraph state history (a list of thread states, newest first)",
        matches=_is_state_history,
        variant=V_STATE_HISTORY,
    ),
    DetectionRule(
        number=12,
        format_id=FORMAT_ID,
        description="LangChain messages_to_dict list ({type, data:{content...}} items)",
        matches=lambda doc: _all_items(doc, _is_to_dict_item),
        variant=V_MESSAGES_TO_DICT,
    ),
    DetectionRule(
        number=13,
        format_id=FORMAT_ID,
        description='LangChain dumpd list ({"lc":1,"type":"constructor","id":[...Message]})',
        matches=lambda doc: _all_items(doc, _is_dumpd_item),
        variant=V_DUMPD,
    ),
    DetectionRule(
        number=14,
        format_id=FORMAT_ID,
        description="LangChain model_dump list ({type: human/ai/system/tool/..., content})",
        matches=lambda doc: _all_items(doc, _is_model_dump_item),
        variant=V_MODEL_DUMP,
    ),
)


# ----------------------------------------------------------------------------------- parsing


@dataclass
class _Ctx(ParseContext):
    # Invalid tool calls per message seq, attached after pairing unless a result answers them.
    invalid_calls: dict[int, list[ToolCall]] = field(default_factory=dict)


@dataclass
class _Messages:
    messages: list[Message]
    path: str


def parse(doc: Any) -> ParsedSession:
    """Map a LangChain message list or a LangGraph state onto the canonical session."""
    expect(doc, (dict, list), "")
    ctx = _Ctx()
    variant = sniff_variant(doc) or _forced_variant(doc)
    if variant == V_THREAD_STATE:
        session = _thread_state_session(doc, ctx)
    elif variant == V_STATE_HISTORY:
        session = _history_session(doc, ctx)
    else:
        session = _list_session(doc, variant, ctx)
    return ParsedSession(session=session, warnings=tuple(ctx.warnings))


def _forced_variant(doc: Any) -> str:
    """The shape of a document parsed with ?format=langchain that no rule of ours matches."""
    if isinstance(doc, dict) and "values" in doc:
        return V_THREAD_STATE
    if isinstance(doc, list) and doc and isinstance(doc[0], dict) and "values" in doc[0]:
        return V_STATE_HISTORY
    items = _message_list(doc) or []
    first = next((item for item in items if isinstance(item, dict)), None)
    if first is not None and "lc" in first:
        return V_DUMPD
    if first is not None and "data" in first:
        return V_MESSAGES_TO_DICT
    return V_MODEL_DUMP


# ------------------------------------------------------------------------------ message lists


def _list_session(doc: Any, variant: str, ctx: _Ctx) -> Session:
    if isinstance(doc, list):
        envelope: dict[str, Any] = {}
        raw_messages: Any = doc
        path = ""
    else:
        envelope = doc
        if doc.get("messages") is None:
            raise InvalidDocument(
                "messages: required (an array of LangChain messages)",
                path="/messages",
                code="missing_field",
            )
        raw_messages, path = doc["messages"], "/messages"
    messages = _parse_messages(raw_messages, path, ctx)
    metadata = dict(optional(envelope, "metadata", dict, "") or {})
    extra = {k: v for k, v in envelope.items() if k not in _ENVELOPE_READ_KEYS and v is not None}
    if extra:
        metadata["envelope_extra"] = extra
    return Session(
        source_format=FORMAT_ID,
        format_variant=variant,
        external_id=first_id(envelope, _ENVELOPE_ID_KEYS, "", ctx.warnings),
        user_id=first_string(envelope, _ENVELOPE_USER_KEYS, ""),
        status=SessionStatus.UNKNOWN,
        created_at=parse_timestamp(envelope.get("created_at"), "/created_at", ctx.warnings),
        updated_at=parse_timestamp(envelope.get("updated_at"), "/updated_at", ctx.warnings),
        title=optional(envelope, "title", str, ""),
        tokens=_session_tokens(messages, path),
        messages=tuple(messages),
        metadata=metadata,
    )


def _parse_messages(raw_messages: Any, path: str, ctx: _Ctx) -> list[Message]:
    messages = [
        _parse_item(item, index, item_path, ctx)
        for index, item, item_path in enumerate_array(raw_messages, path)
    ]
    if not messages:
        ctx.warn("no_messages", "the document has no messages", path)
    answered = {m.tool_call_id for m in messages if m.tool_call_id is not None}
    # Invalid calls that a tool message answers take part in pairing like any call.
    for seq, calls in ctx.invalid_calls.items():
        pairable = tuple(c for c in calls if c.call_id in answered)
        if pairable:
            messages[seq] = dataclasses.replace(
                messages[seq], tool_calls=(*messages[seq].tool_calls, *pairable)
            )
    paired, pairing_warnings = pair_tool_calls(messages, heuristic=None)
    ctx.warnings.extend(pairing_warnings)
    for seq, calls in ctx.invalid_calls.items():
        unanswered = tuple(
            dataclasses.replace(c, status=ToolStatus.UNKNOWN, status_source=StatusSource.NONE)
            for c in calls
            if c.call_id not in answered
        )
        if unanswered:
            paired[seq] = dataclasses.replace(
                paired[seq], tool_calls=(*paired[seq].tool_calls, *unanswered)
            )
    return paired


def _parse_item(item: Any, seq: int, path: str, ctx: _Ctx) -> Message:
    """One serialised message, whichever of the three shapes it has."""
    raw = expect(item, dict, path)
    if "lc" in raw:
        return _parse_dumpd_item(raw, seq, path, ctx)
    if "data" in raw and "content" not in raw:
        outer = expect(raw.get("type"), str, pointer_join(path, "type"))
        body_path = pointer_join(path, "data")
        body = expect(raw.get("data"), dict, body_path)
        inner = body.get("type")
        if isinstance(inner, str) and inner != outer:
            ctx.warn(
                "type_mismatch",
                f"outer type {outer[:40]!r} differs from data.type {inner[:40]!r}; using the outer",
                pointer_join(body_path, "type"),
            )
        extra = {k: v for k, v in raw.items() if k not in ("type", "data") and v is not None}
        return _build_message(outer, body, body_path, seq, ctx, outer_extra=extra)
    raw_type = raw.get("type")
    if raw_type is None:
        raise InvalidDocument(
            f"{path}/type: required (the LangChain message type)",
            path=pointer_join(path, "type"),
            code="missing_field",
        )
    expect(raw_type, str, pointer_join(path, "type"))
    return _build_message(raw_type, raw, path, seq, ctx)


def _parse_dumpd_item(raw: dict[str, Any], seq: int, path: str, ctx: _Ctx) -> Message:
    expect(raw["lc"], int, pointer_join(path, "lc"))
    kind = expect(raw.get("type"), str, pointer_join(path, "type"))
    ident_path = pointer_join(path, "id")
    ident = expect(raw.get("id"), list, ident_path)
    for index, part in enumerate(ident):
        expect(part, str, pointer_join(ident_path, index))
    class_name = ident[-1] if ident else ""
    if kind != "constructor" or "kwargs" not in raw:
        # `not_implemented` / `secret` entries: nothing to read, so show the entry as it is.
        ctx.warn(
            "not_a_message",
            f"dumpd entry of type {kind[:40]!r} ({class_name[:60]!r}) is not a message; "
            "shown as raw content",
            path,
        )
        return Message(
            seq=seq, role=Role.OTHER, content_parts=raw, raw_role=class_name or kind, extra={}
        )
    body_path = pointer_join(path, "kwargs")
    body = expect(raw["kwargs"], dict, body_path)
    message_type = _CLASS_TYPES.get(class_name)
    declared = body.get("type")
    if message_type is None:
        message_type = declared if isinstance(declared, str) else class_name
    elif isinstance(declared, str) and _CLASS_TYPES.get(declared, declared) != message_type:
        ctx.warn(
            "type_mismatch",
            f"class {class_name!r} disagrees with kwargs.type {declared[:40]!r}; using the class",
            pointer_join(body_path, "type"),
        )
    extra = {
        k: v for k, v in raw.items() if k not in ("lc", "type", "id", "kwargs") and v is not None
    }
    return _build_message(message_type, body, body_path, seq, ctx, outer_extra=extra)


def _build_message(
    message_type: str,
    body: dict[str, Any],
    path: str,
    seq: int,
    ctx: _Ctx,
    *,
    outer_extra: dict[str, Any] | None = None,
) -> Message:
    role, raw_role = _role(message_type, body, path, ctx)
    content = body.get("content")
    expect(content, (str, list, dict), pointer_join(path, "content"), nullable=True)
    if isinstance(content, list):
        for index, block in enumerate(content):
            block_path = pointer_join(path, "content", index)
            expect(block, (str, dict), block_path)
            if isinstance(block, dict) and block.get("type") == "text":
                expect(block.get("text"), str, pointer_join(block_path, "text"))
    text, parts = content_to_text(content)

    extra: dict[str, Any] = dict(outer_extra or {})
    additional = optional(body, "additional_kwargs", dict, path)
    if additional:
        extra["additional_kwargs"] = additional
    model, finish_reason = _response_metadata(body, path, extra)

    tool_calls: tuple[ToolCall, ...] = ()
    if "tool_calls" in body or "invalid_tool_calls" in body or role is Role.ASSISTANT:
        tool_calls = _tool_calls(body, content, path, seq, ctx)
    tool_call_id, status, source = None, None, StatusSource.NONE
    if role is Role.TOOL:
        tool_call_id, status, source = _tool_result(body, raw_role or message_type, text, path, ctx)
    if body.get("artifact") is not None:
        extra["artifact"] = body["artifact"]
    extra.update(
        (k, v)
        for k, v in body.items()
        if k not in _MESSAGE_KEYS
        and k != "artifact"
        and v is not None
        and not (k == "example" and v is False)  # a default, written by every model_dump
    )
    return Message(
        seq=seq,
        role=role,
        content_text=text,
        content_parts=parts,
        external_id=optional(body, "id", str, path),
        author=optional(body, "name", str, path),
        model=model,
        tokens=_usage(body, path, ctx.warnings),
        finish_reason=finish_reason,
        tool_calls=tool_calls,
        tool_call_id=tool_call_id,
        tool_status=status,
        tool_status_source=source,
        raw_role=raw_role,
        extra=extra,
    )


def _role(message_type: str, body: dict[str, Any], path: str, ctx: _Ctx) -> tuple[Role, str | None]:
    """(role, raw_role): raw_role is kept whenever the mapping is not one-to-one."""
    canonical_type = _CLASS_TYPES.get(message_type, message_type)
    if canonical_type not in _TYPE_ROLES:
        ctx.warn(
            "unknown_role",
            f"unknown message type {message_type[:80]!r}; shown as 'other'",
            pointer_join(path, "type"),
        )
        return Role.OTHER, message_type
    if canonical_type == "chat":
        chat_role = optional(body, "role", str, path)
        role = _CHAT_ROLES.get(chat_role or "")
        if role is None:
            ctx.warn(
                "unknown_role",
                f"chat message role {str(chat_role)[:80]!r} is not a known role; shown as 'other'",
                pointer_join(path, "role"),
            )
            return Role.OTHER, chat_role or message_type
        return role, chat_role
    if canonical_type == "remove":
        ctx.warn(
            "remove_message",
            "a RemoveMessage (LangGraph deletion marker) is stored in the list; shown as 'other'",
            path,
        )
    role = _TYPE_ROLES[canonical_type]
    assert role is not None
    mapped_name = {Role.USER: "human", Role.ASSISTANT: "ai"}.get(role, role.value)
    return role, None if message_type == mapped_name else message_type


def _response_metadata(
    body: dict[str, Any], path: str, extra: dict[str, Any]
) -> tuple[str | None, str | None]:
    metadata = optional(body, "response_metadata", dict, path)
    if not metadata:
        return None, None
    meta_path = pointer_join(path, "response_metadata")
    model = optional(metadata, "model_name", str, meta_path) or optional(
        metadata, "model", str, meta_path
    )
    finish = optional(metadata, "finish_reason", str, meta_path) or optional(
        metadata, "stop_reason", str, meta_path
    )
    rest = {k: v for k, v in metadata.items() if k not in _RESPONSE_METADATA_READ and v is not None}
    if rest:
        extra["response_metadata"] = rest
    return model, finish


def _usage(body: dict[str, Any], path: str, warnings: list[ParseWarning]) -> TokenUsage | None:
    """``usage_metadata``: optional data, so a list of them is summed and an unreadable one is a
    warning (``common.read_usages``)."""
    if body.get("usage_metadata") is None:
        return None  # the common case (every non-AI message): no pointer built
    usage_path = pointer_join(path, "usage_metadata")
    usages = read_usages(
        body.get("usage_metadata"),
        usage_path,
        warnings,
        lambda usage, at: _usage_metadata(usage, at, warnings),
    )
    if not usages:
        return None
    return usages[0] if len(usages) == 1 else sum_token_usages(usages, usage_path)


def _usage_metadata(
    usage: dict[str, Any], usage_path: str, warnings: list[ParseWarning]
) -> TokenUsage:
    input_details = optional(usage, "input_token_details", dict, usage_path) or {}
    output_details = optional(usage, "output_token_details", dict, usage_path) or {}
    in_path = pointer_join(usage_path, "input_token_details")
    out_path = pointer_join(usage_path, "output_token_details")

    def count(value: Any, at: str) -> int | None:
        return usage_count(value, at, warnings)

    return TokenUsage(
        input=count(usage.get("input_tokens"), pointer_join(usage_path, "input_tokens")),
        output=count(usage.get("output_tokens"), pointer_join(usage_path, "output_tokens")),
        total=count(usage.get("total_tokens"), pointer_join(usage_path, "total_tokens")),
        reasoning=count(output_details.get("reasoning"), pointer_join(out_path, "reasoning")),
        cached=count(input_details.get("cache_read"), pointer_join(in_path, "cache_read")),
        cache_write=count(
            input_details.get("cache_creation"), pointer_join(in_path, "cache_creation")
        ),
    )


# -------------------------------------------------------------------------------- tool calls


def _tool_calls(
    body: dict[str, Any], content: Any, path: str, seq: int, ctx: _Ctx
) -> tuple[ToolCall, ...]:
    calls: list[ToolCall] = []
    if "tool_calls" in body:
        value = body.get("tool_calls")
        if value is not None:
            list_path = pointer_join(path, "tool_calls")
            for index, item, item_path in enumerate_array(value, list_path):
                calls.append(_tool_call(item, item_path, seq, index, ctx))
    else:
        calls.extend(_legacy_tool_calls(body, path, seq, ctx))

    invalid: list[ToolCall] = []
    if body.get("invalid_tool_calls") is not None:
        list_path = pointer_join(path, "invalid_tool_calls")
        for index, item, item_path in enumerate_array(body["invalid_tool_calls"], list_path):
            invalid.append(_invalid_tool_call(item, item_path, seq, index, ctx))
    if invalid:
        ctx.invalid_calls[seq] = invalid

    known = {call.call_id for call in (*calls, *invalid)}
    calls.extend(_calls_only_in_content(content, path, known, ctx))
    return tuple(calls)


def _tool_call(item: Any, path: str, seq: int, index: int, ctx: _Ctx) -> ToolCall:
    raw = expect(item, dict, path)
    name = optional(raw, "name", str, path) or ""
    if not name:
        ctx.warn("missing_tool_name", "tool call has no name", path)
    args = raw.get("args")
    expect(args, dict, pointer_join(path, "args"), nullable=True)
    return ToolCall(
        call_id=tool_call_id(raw, path, seq, index, ctx.warnings), name=name, arguments=args
    )


def _invalid_tool_call(item: Any, path: str, seq: int, index: int, ctx: _Ctx) -> ToolCall:
    raw = expect(item, dict, path)
    name = optional(raw, "name", str, path) or ""
    args = optional(raw, "args", str, path)
    error = optional(raw, "error", str, path) or "invalid tool call (LangChain gave no reason)"
    call_id = optional(raw, "id", str, path) or f"invalid_tool_call:{seq}:{index}"
    ctx.warn(
        "invalid_tool_call",
        f"tool call {name[:60]!r} ({call_id[:60]}) failed to parse: {error[:200]}",
        path,
    )
    return ToolCall(call_id=call_id, name=name, arguments=args, arguments_error=error)


def _legacy_tool_calls(body: dict[str, Any], path: str, seq: int, ctx: _Ctx) -> list[ToolCall]:
    """Raw OpenAI ``additional_kwargs.tool_calls`` of a message from before ``tool_calls``."""
    additional = body.get("additional_kwargs")
    if not isinstance(additional, dict) or additional.get("tool_calls") is None:
        return []
    list_path = pointer_join(path, "additional_kwargs", "tool_calls")
    calls = []
    for index, item, item_path in enumerate_array(additional["tool_calls"], list_path):
        raw = expect(item, dict, item_path)
        function = optional(raw, "function", dict, item_path) or {}
        function_path = pointer_join(item_path, "function")
        name = optional(function, "name", str, function_path) or ""
        arguments, error = parse_tool_arguments(
            function.get("arguments"),
            pointer_join(function_path, "arguments"),
            ctx.warnings,
            warn_path=item_path,
        )
        calls.append(
            ToolCall(
                call_id=tool_call_id(raw, item_path, seq, index, ctx.warnings),
                name=name,
                arguments=arguments,
                arguments_error=error,
            )
        )
    return calls


def _calls_only_in_content(
    content: Any, path: str, known: set[str], ctx: _Ctx
) -> Iterable[ToolCall]:
    """``tool_use``/``tool_call`` content blocks that ``tool_calls`` does not already hold."""
    if not isinstance(content, list):
        return
    for index, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") not in _CALL_BLOCK_TYPES:
            continue
        block_id = block.get("id")
        if not isinstance(block_id, str) or block_id in known:
            continue
        known.add(block_id)
        block_path = pointer_join(path, "content", index)
        name = block.get("name") if isinstance(block.get("name"), str) else ""
        ctx.warn(
            "tool_call_only_in_content",
            f"{block['type']} block {block_id[:60]!r} is not in tool_calls; shown as a call",
            block_path,
        )
        arguments = block.get("input", block.get("args"))
        yield ToolCall(call_id=block_id, name=name, arguments=arguments)


def _tool_result(
    body: dict[str, Any], raw_type: str, text: str, path: str, ctx: _Ctx
) -> tuple[str | None, ToolStatus | None, StatusSource]:
    call_id = optional(body, "tool_call_id", str, path)
    if call_id is None and _CLASS_TYPES.get(raw_type, raw_type) != "function":
        ctx.warn("tool_result_without_call_id", "tool message has no tool_call_id", path)
    status = optional(body, "status", str, path)
    toolnode_error = _is_toolnode_error(text)
    if status is None:
        if toolnode_error:
            return call_id, ToolStatus.ERROR, StatusSource.CONVENTION
        return call_id, ToolStatus.SUCCESS, StatusSource.EXPLICIT  # the field's default
    known = _TOOL_STATUSES.get(status)
    if known is None:
        ctx.warn(
            "unknown_tool_status",
            f"unknown tool status {status[:40]!r}; status unknown",
            pointer_join(path, "status"),
        )
        return call_id, None, StatusSource.NONE
    if known is ToolStatus.SUCCESS and toolnode_error:
        ctx.warn(
            "error_text_with_success_status",
            "tool message says status 'success' but its text is ToolNode's error text",
            pointer_join(path, "status"),
        )
    return call_id, known, StatusSource.EXPLICIT


def _is_toolnode_error(text: str) -> bool:
    if not text.startswith("Error: "):
        return False
    return text.rstrip().endswith(_TOOLNODE_ERROR_SUFFIX) or _TOOLNODE_INVALID_TOOL in text[:2000]


# ------------------------------------------------------------------------------------ tokens


def _session_tokens(messages: Iterable[Message], path: str) -> TokenUsage:
    return sum_token_usages((m.tokens for m in messages if m.tokens is not None), path)


# ------------------------------------------------------------------------------ thread state


@dataclass
class _State:
    """The validated parts of one thread state."""

    raw: dict[str, Any]
    path: str
    values: Any
    next: list[str]
    tasks: list[dict[str, Any]]
    interrupts: list[Any]
    metadata: dict[str, Any]
    created_at: datetime | None
    thread_id: str | None
    checkpoint_id: str | None

    @property
    def step(self) -> int | None:
        step = self.metadata.get("step")
        return step if type(step) is int else None

    @property
    def source(self) -> str | None:
        source = self.metadata.get("source")
        return source if isinstance(source, str) else None


def _read_state(raw: Any, path: str, ctx: _Ctx) -> _State:
    state = expect(raw, dict, path)
    values = state.get("values")
    expect(values, (dict, list), pointer_join(path, "values"), nullable=True)
    if isinstance(values, dict) and values.get("messages") is not None:
        # Checked in every state of a history, though only the newest one's are parsed.
        expect(values["messages"], list, pointer_join(path, "values", "messages"))
    next_nodes = [
        expect(node, str, node_path) for _, node, node_path in array_items(state, "next", path)
    ]
    tasks = []
    for _, task, task_path in array_items(state, "tasks", path):
        expect(task, dict, task_path)
        optional(task, "name", str, task_path)
        optional(task, "error", str, task_path)
        optional(task, "interrupts", list, task_path)
        tasks.append(task)
    interrupts = optional(state, "interrupts", list, path) or []
    metadata = optional(state, "metadata", dict, path) or {}
    metadata_path = pointer_join(path, "metadata")
    if metadata.get("step") is not None:
        expect(metadata["step"], int, pointer_join(metadata_path, "step"))
    optional(metadata, "source", str, metadata_path)
    created_at = state.get("created_at")
    expect(created_at, str, pointer_join(path, "created_at"), nullable=True)
    thread_id, checkpoint_id = _checkpoint_ids(state, path)
    return _State(
        raw=state,
        path=path,
        values=values,
        next=next_nodes,
        tasks=tasks,
        interrupts=interrupts,
        metadata=metadata,
        created_at=parse_timestamp(created_at, pointer_join(path, "created_at"), ctx.warnings),
        thread_id=thread_id,
        checkpoint_id=checkpoint_id,
    )


def _checkpoint_ids(state: dict[str, Any], path: str) -> tuple[str | None, str | None]:
    """(thread_id, checkpoint_id) from ``checkpoint``, else ``config.configurable``."""
    checkpoint = optional(state, "checkpoint", dict, path)
    if checkpoint is not None:
        checkpoint_path = pointer_join(path, "checkpoint")
        thread_id = optional(checkpoint, "thread_id", str, checkpoint_path)
        checkpoint_id = optional(checkpoint, "checkpoint_id", str, checkpoint_path)
        if thread_id or checkpoint_id:
            return thread_id, checkpoint_id
    configurable = _configurable(state, path)
    configurable_path = pointer_join(path, "config", "configurable")
    return (
        optional(configurable, "thread_id", str, configurable_path),
        optional(configurable, "checkpoint_id", str, configurable_path),
    )


def _configurable(state: dict[str, Any], path: str) -> dict[str, Any]:
    config = optional(state, "config", dict, path) or {}
    return optional(config, "configurable", dict, pointer_join(path, "config")) or {}


def _state_messages(state: _State) -> tuple[Any, str]:
    """(the messages value, its JSON pointer); a list-valued state is itself the messages."""
    if isinstance(state.values, list):
        return state.values, pointer_join(state.path, "values")
    values = state.values or {}
    return values.get("messages") or [], pointer_join(state.path, "values", "messages")


def _thread_state_session(doc: Any, ctx: _Ctx) -> Session:
    state = _read_state(doc, "", ctx)
    raw_messages, path = _state_messages(state)
    messages = _parse_messages(raw_messages, path, ctx)
    step = StepState(
        name=_step_name(state, _nodes_from_writes(state)),
        order=0,
        state=_step_state(state),
        is_active=True,
        saved_at=state.created_at,
    )
    return _state_session(state, V_THREAD_STATE, messages, path, (step,), None, ctx)


def _history_session(doc: Any, ctx: _Ctx) -> Session:
    states = [_read_state(item, path, ctx) for _, item, path in enumerate_array(doc, "")]
    newest_index = 0
    if len(states) > 1 and _chronology_key(states[-1]) > _chronology_key(states[0]):
        newest_index = len(states) - 1
        ctx.warn(
            "history_oldest_first",
            "the history is oldest-first (LangGraph writes newest first); using the last state",
            "",
        )
    newest = states[newest_index]
    chronological = states[::-1] if newest_index == 0 else states
    thread_ids = {s.thread_id for s in states if s.thread_id}
    if len(thread_ids) > 1:
        ctx.warn(
            "mixed_threads",
            f"the history mixes {len(thread_ids)} thread ids; the newest state's is used",
            "",
        )

    steps: list[StepState] = []
    first_step_of: dict[str, str] = {}
    previous: _State | None = None
    for order, state in enumerate(chronological):
        # What wrote this checkpoint: the tasks the previous checkpoint scheduled.
        scheduled = (
            [t["name"] for t in previous.tasks if isinstance(t.get("name"), str)]
            if (previous)
            else []
        )
        nodes = _nodes_from_writes(state) or scheduled
        name = _step_name(state, nodes)
        steps.append(
            StepState(
                name=name,
                order=order,
                state=_step_state(state),
                is_active=state is newest,
                saved_at=state.created_at,
            )
        )
        for message_id in _message_ids(state):
            first_step_of.setdefault(message_id, name)
        previous = state

    raw_messages, path = _state_messages(newest)
    messages = _parse_messages(raw_messages, path, ctx)
    messages = [
        dataclasses.replace(m, step=first_step_of.get(m.external_id or ""))
        if m.external_id in first_step_of
        else m
        for m in messages
    ]
    kept = {m.external_id for m in messages if m.external_id}
    dropped = [message_id for message_id in first_step_of if message_id not in kept]
    if dropped:
        ctx.warn(
            "history_messages_not_in_latest",
            f"{len(dropped)} message(s) of older states are not in the newest state (removed, "
            f"or on another fork): {', '.join(d[:40] for d in dropped[:5])}",
            "",
        )
    created_at = next((s.created_at for s in chronological if s.created_at), None)
    return _state_session(
        newest, V_STATE_HISTORY, messages, path, tuple(steps), created_at, ctx, states=len(states)
    )


def _chronology_key(state: _State) -> tuple[int, str]:
    step = state.step if state.step is not None else -(2**31)
    return step, state.created_at.isoformat() if state.created_at else ""


def _message_ids(state: _State) -> Iterable[str]:
    raw_messages, _ = _state_messages(state)
    if not isinstance(raw_messages, list):
        return
    for item in raw_messages:
        if not isinstance(item, dict):
            continue
        body = item.get("kwargs") if "lc" in item else item.get("data", item)
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            yield body["id"]


def _nodes_from_writes(state: _State) -> list[str]:
    """Older LangGraph versions record what wrote a checkpoint in ``metadata.writes``."""
    writes = state.metadata.get("writes")
    return [str(key) for key in writes] if isinstance(writes, dict) else []


def _step_name(state: _State, nodes: list[str]) -> str:
    """``step 3: agent`` when the writer is known, else ``step 3 (loop)``."""
    if state.step is None:
        return ", ".join(nodes) if nodes else (state.source or "state")
    if nodes:
        return f"step {state.step}: {', '.join(nodes)}"
    return f"step {state.step} ({state.source})" if state.source else f"step {state.step}"


def _step_state(state: _State) -> dict[str, Any]:
    raw_messages, _ = _state_messages(state)
    summary: dict[str, Any] = {
        "step": state.step,
        "source": state.source,
        "checkpoint_id": state.checkpoint_id,
        "next": state.next,
        "messages": len(raw_messages) if isinstance(raw_messages, list) else None,
    }
    failed = [{"name": t.get("name"), "error": t["error"]} for t in state.tasks if t.get("error")]
    if failed:
        summary["failed_tasks"] = failed
    if state.interrupts:
        summary["interrupts"] = state.interrupts
    if isinstance(state.metadata.get("writes"), dict):
        summary["writes"] = state.metadata["writes"]
    return summary


def _state_session(
    state: _State,
    variant: str,
    messages: list[Message],
    messages_path: str,
    steps: tuple[StepState, ...],
    created_at: datetime | None,
    ctx: _Ctx,
    *,
    states: int | None = None,
) -> Session:
    status, logs = _state_status(state)
    configurable = _configurable(state.raw, state.path)
    values_state = None
    if isinstance(state.values, dict):
        values_state = {k: v for k, v in state.values.items() if k != "messages"} or None
    metadata = {k: v for k, v in state.raw.items() if k not in _STATE_READ_KEYS and v is not None}
    if states is not None:
        metadata["history_states"] = states
    return Session(
        source_format=FORMAT_ID,
        format_variant=variant,
        external_id=state.thread_id or None,
        user_id=first_string(state.metadata, ("user_id",), pointer_join(state.path, "metadata"))
        or first_string(configurable, ("user_id",), ""),
        agent_name=first_string(
            state.metadata, ("graph_id", "assistant_id"), pointer_join(state.path, "metadata")
        ),
        status=status,
        created_at=created_at,
        updated_at=state.created_at,
        state=values_state,
        tokens=_session_tokens(messages, messages_path),
        messages=tuple(messages),
        steps=steps,
        logs=tuple(logs),
        metadata=metadata,
    )


def _state_status(state: _State) -> tuple[SessionStatus, list[LogEntry]]:
    logs: list[LogEntry] = []
    for task in state.tasks:
        name = task.get("name") or "?"
        if task.get("error"):
            logs.append(
                LogEntry(
                    level=LogLevel.ERROR,
                    message=f"task {name} failed: {task['error']}",
                    timestamp=state.created_at,
                    extra={"task_id": task.get("id"), "task": name},
                    seq=len(logs),
                )
            )
        for interrupt in task.get("interrupts") or []:
            logs.append(_interrupt_log(interrupt, name, state, len(logs)))
    for interrupt in state.interrupts:
        logs.append(_interrupt_log(interrupt, None, state, len(logs)))
    if any(entry.level is LogLevel.ERROR for entry in logs):
        return SessionStatus.ERROR, logs
    if state.next or state.tasks or state.interrupts:
        return SessionStatus.RUNNING, logs
    return SessionStatus.UNKNOWN, logs


def _interrupt_log(interrupt: Any, task: str | None, state: _State, seq: int) -> LogEntry:
    value = interrupt.get("value", interrupt) if isinstance(interrupt, dict) else interrupt
    where = f" in task {task}" if task else ""
    return LogEntry(
        level=LogLevel.EVENT,
        message=f"interrupted{where}: {_preview(value)}",
        timestamp=state.created_at,
        extra={"interrupt": interrupt},
        seq=seq,
    )


# ---------------------------------------------------------------------------------- helpers


def _preview(value: Any) -> str:
    if isinstance(value, str):
        return value[:300]
    try:
        return json.dumps(value, ensure_ascii=False, default=str)[:300]
    except (ValueError, RecursionError):
        return repr(value)[:300]


# ----------------------------------------------------------------------------------- adapter


ADAPTER = ModuleAdapter(FORMAT_ID, RULES, parse)
