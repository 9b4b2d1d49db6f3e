"""Anthropic Messages API transcripts onto the canonical session.

Shapes recognised, each reported as ``format_variant``:

- ``transcript`` (detection rule 15): ``{model?, system?: str | [{type:"text", text,
  cache_control?}], messages: [{role, content: str | blocks}], ...}`` — the request body an app
  keeps, often with ``session_id``, ``metadata.user_id``, ``usage`` and ``responses`` (the full
  ``Message.model_dump()`` of each model response) added. Messages may themselves be full
  ``Message`` dumps (``{id:"msg_...", type:"message", role, model, content, stop_reason,
  usage}``).
- ``message`` (rule 15 too): one full ``Message`` dump on its own (``type:"message"``,
  ``role:"assistant"``, ``content`` blocks, ``model`` and ``stop_reason`` keys): a one-message
  session whose id is the message id.
- ``bare-list``: a top-level array of messages. Rule 7 (OpenAI Agents items) claims such lists,
  so this shape is only read when forced with ``?format=anthropic``.

Rule 15 matches a ``messages`` array with any ``tool_use``/``tool_result``/``thinking``/
``redacted_thinking`` block or any ``*_tool_use``/``*_tool_result`` block, or a top-level
``system`` when at least one message has a role and none has the role ``system``. Those are
exactly the documents rule 16 (``openai_chat``) declines, so the boundary holds both ways.

Quirks of the format, and what this adapter does about them:

- A top-level ``system`` becomes one ``system`` message at seq 0 (a list of text blocks is
  joined for the text and kept whole as parts, ``cache_control`` included).
- ``tool_result`` blocks live in a *user* message, possibly several of them plus text. Such a
  message is split, in block order, into one ``tool`` message per ``tool_result`` (its
  ``tool_call_id`` is ``tool_use_id``, ``raw_role`` is the document's role, ``author`` the
  called tool's name) and one message of the original role per run of other blocks; seq keeps
  increasing and every piece has ``extra["transcript_message"]`` = the index in ``messages``.
  So the canonical message count is the manifest's (transcript messages + system) plus one per
  extra piece; ``transcript_message`` recovers the transcript count.
- Tool status is **explicit**: ``is_error: true`` is ``error``; ``is_error`` false *or absent*
  is ``success`` with source ``explicit`` too, because the API defines the field as defaulting
  to false (an absent flag is the API's own statement of success, not an inference). Pairing
  runs without the text heuristic.
- ``tool_use`` blocks are the tool calls (``input`` is already an object). Server-side and
  connector tools (``server_tool_use``, ``mcp_tool_use``, any ``*_tool_use`` block) are tool
  calls too: they run inside the API, and their result is a ``*_tool_result`` block
  (``web_search_tool_result``, ``web_fetch_tool_result``, ``code_execution_tool_result``,
  ``mcp_tool_result`` ...) usually in the same assistant message, paired by ``tool_use_id``
  after the client calls are paired. Status, all ``explicit``: ``is_error: true`` or a result
  content whose ``type`` ends in ``_error`` (``web_fetch_tool_result_error`` ...) is ``error``,
  any other result ``success``; a code execution result with a non-zero ``return_code`` is
  ``error`` by ``convention``. No result -> ``pending`` with a warning; a result for no call ->
  a warning. ``extra["server_tool_calls"]`` lists the ids of a message's server-side calls.
- ``thinking`` blocks are not text: they stay in the parts (shown as collapsed structured
  content), as do ``redacted_thinking``, ``image``, ``document`` and any other block. An unknown
  block type is kept and warned about once per type.
- Usage is per model response: ``usage{input_tokens, output_tokens,
  cache_creation_input_tokens, cache_read_input_tokens}`` -> input, output, cache_write, cached;
  ``total`` is input + output (Anthropic reports no total; ``input_tokens`` excludes cached
  input). A message that is a full dump has its own usage; otherwise each ``responses[]`` item
  is matched to the next assistant message with the same content (never by position) and
  gives it its usage, ``stop_reason`` (-> ``finish_reason``), id and model; an unmatched response
  is a warning but still counts. Session tokens: an envelope ``usage`` is ``reported``; else the
  sum of every response/message usage (``summed``); else unknown. Usage is optional data: a
  list of usage objects is summed, an unreadable one is a warning (``unreadable_usage``), a
  negative count is 0 with a warning (``common.usage_count``).
- No timestamps and no status in the format: messages keep document order, status is
  ``unknown``; envelope ``created_at``/``created``/``updated_at`` are read when an app adds them.
- Session id: envelope ``session_id``, else ``id`` (the message id for a single dump); none ->
  the ingest service derives one from the content hash. User: ``user``/``user_id`` or the API's
  ``metadata.user_id``. The envelope ``model`` is put on assistant messages that name none.
- Every other non-null key is kept: message keys in ``Message.extra``, envelope keys (``tools``,
  ``max_tokens``...) in ``Session.metadata["envelope_extra"]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sessions_api.domain import (
    Message,
    ParsedSession,
    ParseWarning,
    Role,
    Session,
    SessionStatus,
    StatusSource,
    TokenUsage,
    ToolCall,
    ToolStatus,
)
from sessions_api.formats.base import (
    DetectionRule,
    InvalidDocument,
    ModuleAdapter,
    ParseContext,
    content_to_text,
    enumerate_array,
    expect,
    optional,
    parse_timestamp,
    pointer_join,
    required,
)
from sessions_api.formats.common import (
    first_id,
    first_string,
    has_anthropic_blocks,
    map_role,
    read_usages,
    sum_token_usages,
    usage_count,
)
from sessions_api.formats.pairing import pair_tool_calls

FORMAT_ID = "anthropic"

V_TRANSCRIPT = "transcript"
V_MESSAGE = "message"
V_BARE_LIST = "bare-list"

_ROLES = {"user": Role.USER, "assistant": Role.ASSISTANT, "system": Role.SYSTEM}
_SERVER_CALL_TYPES = frozenset({"server_tool_use", "mcp_tool_use"})


def _is_server_call(block_type: Any) -> bool:
    """``server_tool_use``, ``mcp_tool_use`` and any newer ``*_tool_use`` block."""
    return isinstance(block_type, str) and (
        block_type in _SERVER_CALL_TYPES
        or (block_type != "tool_use" and block_type.endswith("_tool_use"))
    )


_KNOWN_BLOCK_TYPES = frozenset(
    {
        "text",
        "image",
        "document",
        "search_result",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "tool_result",
        "container_upload",
        *_SERVER_CALL_TYPES,
    }
)
# Message keys read into Message fields; the rest (non-null) lands in Message.extra.
_MESSAGE_KEYS = frozenset({"role", "content", "id", "type", "model", "stop_reason", "usage"})
_RESPONSE_KEYS = frozenset({"id", "type", "role", "model", "content", "stop_reason", "usage"})
_ENVELOPE_KEYS = frozenset(
    {
        "messages",
        "system",
        "model",
        "usage",
        "responses",
        "metadata",
        "session_id",
        "id",
        "user",
        "user_id",
        "title",
        "created_at",
        "created",
        "updated_at",
    }
)


# --------------------------------------------------------------------------------- detection


def is_transcript(doc: Any) -> bool:
    """Rule 15: Anthropic blocks in ``messages[]``, or a top-level ``system`` and no message
    with the role ``system`` (the same tests openai_chat yields on). Never raises."""
    if not isinstance(doc, dict) or not isinstance(doc.get("messages"), list):
        return False
    messages = doc["messages"]
    if any(has_anthropic_blocks(message) for message in messages):
        return True
    if doc.get("system") is None:
        return False
    roles = {m.get("role") for m in messages if isinstance(m, dict)}
    roles = {role for role in roles if isinstance(role, str)}
    return bool(roles) and "system" not in roles


def is_message_dump(doc: Any) -> bool:
    """A single ``anthropic.types.Message`` dump. Never raises."""
    return (
        isinstance(doc, dict)
        and doc.get("type") == "message"
        and doc.get("role") == "assistant"
        and isinstance(doc.get("content"), list)
        and "model" in doc
        and "stop_reason" in doc
        and "messages" not in doc
    )


RULES: tuple[DetectionRule, ...] = (
    DetectionRule(
        number=15,
        format_id=FORMAT_ID,
        description="Anthropic Messages transcript (tool_use/tool_result/thinking blocks "
        "or a top-level system)",
        matches=is_transcript,
        variant=V_TRANSCRIPT,
    ),
    DetectionRule(
        number=15,
        format_id=FORMAT_ID,
        description="Anthropic Message dump (type message, role assistant, stop_reason)",
        matches=is_message_dump,
        variant=V_MESSAGE,
    ),
)


# ----------------------------------------------------------------------------------- parsing


@dataclass
class _ServerCall:
    message_seq: int
    record: dict[str, Any]


@dataclass
class _Ctx(ParseContext):
    messages: list[Message] = field(default_factory=list)
    # tool_use id -> tool name, for naming the tool-result messages.
    tool_names: dict[str, str] = field(default_factory=dict)
    server_calls: list[_ServerCall] = field(default_factory=list)
    # server tool_use_id -> (seq, status, status source, content) of its result block(s).
    server_results: dict[str, list[tuple[int, ToolStatus, StatusSource, Any]]] = field(
        default_factory=dict
    )
    unknown_block_types: set[str] = field(default_factory=set)
    # Assistant messages that a response may match: (index in messages, normalised content).
    candidates: list[tuple[int, Any]] = field(default_factory=list)

    @property
    def seq(self) -> int:
        return len(self.messages)


def parse(doc: Any) -> ParsedSession:
    """Map an Anthropic transcript / Message dump onto the canonical session."""
    expect(doc, (dict, list), "")
    ctx = _Ctx()
    envelope, items, variant = _split_document(doc)

    session_model = optional(envelope, "model", str, "") if variant == V_TRANSCRIPT else None
    if variant == V_TRANSCRIPT and envelope.get("system") is not None:
        ctx.messages.append(_system_message(envelope["system"], ctx))
    for index, item, path in items:
        _parse_message(item, index, path, ctx)
    if len(ctx.messages) == 0:
        ctx.warn("no_messages", "the transcript has no messages", "/messages")

    unmatched_usage = _apply_responses(envelope, ctx) if variant == V_TRANSCRIPT else []
    messages = ctx.messages
    if session_model:
        messages = [
            dataclasses.replace(m, model=session_model)
            if m.role is Role.ASSISTANT and m.model is None
            else m
            for m in messages
        ]
    paired, pairing_warnings = pair_tool_calls(messages, heuristic=None)
    ctx.warnings.extend(pairing_warnings)
    paired = _server_tool_calls(paired, ctx)
    session = _build_session(doc, envelope, variant, tuple(paired), unmatched_usage, ctx)
    return ParsedSession(session=session, warnings=tuple(ctx.warnings))


def _split_document(doc: Any) -> tuple[dict[str, Any], list[tuple[int, Any, str]], str]:
    """(envelope, [(index, message, path)], variant)."""
    if isinstance(doc, list):
        return {}, list(enumerate_array(doc, "")), V_BARE_LIST
    if "messages" not in doc and doc.get("type") == "message":
        return {}, [(0, doc, "")], V_MESSAGE
    if doc.get("messages") is None:
        raise InvalidDocument(
            "messages: required (an array of Anthropic messages)",
            path="/messages",
            code="missing_field",
        )
    return doc, list(enumerate_array(doc["messages"], "/messages")), V_TRANSCRIPT


def _system_message(system: Any, ctx: _Ctx) -> Message:
    expect(system, (str, list), "/system")
    if isinstance(system, list):
        for index, block, block_path in enumerate_array(system, "/system"):
            expect(block, dict, block_path)
            if block.get("type") != "text":
                ctx.warn(
                    "odd_system_block",
                    f"system block of type {str(block.get('type'))[:40]!r} (the API takes text)",
                    block_path,
                )
            if block.get("text") is not None or block.get("type") == "text":
                expect(block.get("text"), str, pointer_join("/system", index, "text"))
    text, parts = content_to_text(system)
    return Message(seq=0, role=Role.SYSTEM, content_text=text, content_parts=parts)


# ---------------------------------------------------------------------------------- messages


def _parse_message(item: Any, index: int, path: str, ctx: _Ctx) -> None:
    raw = expect(item, dict, path)
    raw_role = required(raw, "role", str, path)
    role = map_role(raw_role, _ROLES, pointer_join(path, "role"), ctx.warnings)
    if role is Role.SYSTEM:
        ctx.warn(
            "system_role_in_messages",
            "a message with the role 'system' (the API keeps the system prompt top-level)",
            pointer_join(path, "role"),
        )
    content_path = pointer_join(path, "content")
    content = raw.get("content")
    expect(content, (str, list), content_path, nullable=True)
    if content is None:
        ctx.warn("missing_content", "message has no content", content_path)
    if isinstance(content, list):
        for _, block, block_path in enumerate_array(content, content_path):
            _check_block(block, block_path, ctx)

    fields = _message_fields(raw, path, ctx)
    extra = {k: v for k, v in raw.items() if k not in _MESSAGE_KEYS and v is not None}
    has_results = isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )
    if not has_results:
        message = _message(role, raw_role, content, content_path, 0, fields, extra, ctx)
        if role is Role.ASSISTANT:
            ctx.candidates.append((message.seq, _normalised(content)))
        ctx.messages.append(message)
        return

    if role is not Role.USER:
        ctx.warn(
            "tool_result_outside_user_message",
            f"tool_result blocks in a {raw_role[:40]!r} message (the API puts them in user "
            "messages); split out all the same",
            content_path,
        )
    # Split in block order: each tool_result its own tool message, other blocks grouped.
    first_seq = ctx.seq
    group: list[Any] = []
    group_start = 0
    for block_index, block in enumerate(content):  # type: ignore[arg-type]
        if isinstance(block, dict) and block.get("type") == "tool_result":
            if group:
                _append_piece(role, raw_role, group, content_path, group_start, index, ctx)
                group = []
            ctx.messages.append(
                _tool_result_message(
                    block, pointer_join(content_path, block_index), raw_role, index, ctx
                )
            )
            continue
        if not group:
            group_start = block_index
        group.append(block)
    if group:
        _append_piece(role, raw_role, group, content_path, group_start, index, ctx)
    if fields or extra:
        # Message-level keys (rare on a user message) are kept on its first piece.
        piece = ctx.messages[first_seq]
        kept = {**extra, **piece.extra}
        if fields:
            kept["message_fields"] = _fields_extra(fields)
        ctx.messages[first_seq] = dataclasses.replace(piece, extra=kept)


def _append_piece(
    role: Role,
    raw_role: str,
    blocks: list[Any],
    content_path: str,
    start: int,
    index: int,
    ctx: _Ctx,
) -> None:
    message = _message(
        role, raw_role, blocks, content_path, start, {}, {"transcript_message": index}, ctx
    )
    ctx.messages.append(message)


def _message(
    role: Role,
    raw_role: str,
    content: Any,
    content_path: str,
    offset: int,
    fields: dict[str, Any],
    extra: dict[str, Any],
    ctx: _Ctx,
) -> Message:
    """A canonical message from ``content`` (blocks from index ``offset`` of the original)."""
    seq = ctx.seq
    text, parts = content_to_text(content)
    tool_calls: list[ToolCall] = []
    server_calls: list[dict[str, Any]] = []
    if isinstance(content, list):
        for position, block in enumerate(content):
            if not isinstance(block, dict):
                continue
            block_path = pointer_join(content_path, offset + position)
            block_type = block.get("type")
            if block_type == "tool_use":
                if role is not Role.ASSISTANT:
                    ctx.warn(
                        "tool_use_outside_assistant_message",
                        f"tool_use block in a {raw_role[:40]!r} message",
                        block_path,
                    )
                tool_calls.append(_tool_call(block, block_path, seq, len(tool_calls), ctx))
            elif _is_server_call(block_type):
                number = len(ctx.server_calls) + len(server_calls)
                server_calls.append(_server_call(block, block_path, number, ctx))
            elif _is_server_result(block):
                _server_result(block, block_path, seq, ctx)
    message_extra = dict(extra)
    if server_calls:
        message_extra["server_tool_calls"] = [record["call_id"] for record in server_calls]
        ctx.server_calls.extend(_ServerCall(seq, record) for record in server_calls)
    return Message(
        seq=seq,
        role=role,
        content_text=text,
        content_parts=parts,
        external_id=fields.get("id"),
        model=fields.get("model"),
        tokens=fields.get("usage"),
        finish_reason=fields.get("stop_reason"),
        tool_calls=tuple(tool_calls),
        raw_role=raw_role if raw_role != role.value else None,
        extra=message_extra,
    )


def _message_fields(raw: dict[str, Any], path: str, ctx: _Ctx) -> dict[str, Any]:
    """The keys a full Message dump adds: id, model, stop_reason, usage (type-checked)."""
    fields: dict[str, Any] = {}
    for key in ("id", "model", "stop_reason"):
        value = optional(raw, key, str, path)
        if value is not None:
            fields[key] = value
    optional(raw, "type", str, path)
    if raw.get("usage") is not None:
        usage = _read_usage(raw["usage"], pointer_join(path, "usage"), ctx)
        if usage is not None:
            fields["usage"] = usage
    return fields


def _fields_extra(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (dataclasses.asdict(v) if isinstance(v, TokenUsage) else v) for k, v in fields.items()
    }


def _check_block(block: Any, path: str, ctx: _Ctx) -> None:
    """Type-check a content block; unknown or untyped blocks are kept with a warning."""
    if isinstance(block, str):
        ctx.warn("string_block", "a bare string in a content list (the API takes blocks)", path)
        return
    expect(block, dict, path)
    block_type = block.get("type")
    if block_type is None:
        ctx.warn("untyped_block", "content block has no type; kept as is", path)
        return
    expect(block_type, str, pointer_join(path, "type"))
    if block_type == "text":
        expect(block.get("text"), str, pointer_join(path, "text"))
    elif block_type == "thinking":
        optional(block, "thinking", str, path)
        optional(block, "signature", str, path)
    elif block_type == "redacted_thinking":
        optional(block, "data", str, path)
    elif block_type == "tool_use" or _is_server_call(block_type):
        optional(block, "id", str, path)
        optional(block, "name", str, path)
        optional(block, "input", dict, path)
    elif block_type == "tool_result" or _is_server_result(block):
        optional(block, "tool_use_id", str, path)
        optional(block, "is_error", bool, path)
        if block_type == "tool_result":
            _check_result_content(block.get("content"), pointer_join(path, "content"))
    elif block_type not in _KNOWN_BLOCK_TYPES and block_type not in ctx.unknown_block_types:
        ctx.unknown_block_types.add(block_type)
        ctx.warn(
            "unknown_block_type",
            f"content block type {block_type[:60]!r} is not one this adapter knows; kept as is",
            path,
        )


def _check_result_content(content: Any, path: str) -> None:
    expect(content, (str, list), path, nullable=True)
    if isinstance(content, list):
        for _, block, block_path in enumerate_array(content, path):
            expect(block, dict, block_path)
            if block.get("type") == "text":
                expect(block.get("text"), str, pointer_join(block_path, "text"))


def _is_server_result(block: dict[str, Any]) -> bool:
    block_type = block.get("type")
    return (
        isinstance(block_type, str)
        and block_type != "tool_result"
        and block_type.endswith("_tool_result")
    )


# -------------------------------------------------------------------------------- tool calls


def _tool_call(block: dict[str, Any], path: str, seq: int, index: int, ctx: _Ctx) -> ToolCall:
    call_id = block.get("id")
    if not call_id:
        call_id = f"tool_use:{seq}:{index}"
        ctx.warn("missing_tool_call_id", f"tool_use block has no id; using {call_id!r}", path)
    name = block.get("name") or ""
    if not name:
        ctx.warn("missing_tool_name", "tool_use block has no name", path)
    ctx.tool_names.setdefault(call_id, name)
    return ToolCall(call_id=call_id, name=name, arguments=block.get("input"))


def _tool_result_message(
    block: dict[str, Any], path: str, raw_role: str, index: int, ctx: _Ctx
) -> Message:
    call_id = block.get("tool_use_id")
    if not call_id:
        ctx.warn("tool_result_without_call_id", "tool_result block has no tool_use_id", path)
        call_id = None
    status = ToolStatus.ERROR if block.get("is_error") is True else ToolStatus.SUCCESS
    text, parts = content_to_text(block.get("content"))
    extra: dict[str, Any] = {"transcript_message": index}
    extra.update(
        (k, v)
        for k, v in block.items()
        if k not in ("type", "tool_use_id", "content", "is_error") and v is not None
    )
    return Message(
        seq=ctx.seq,
        role=Role.TOOL,
        content_text=text,
        content_parts=parts,
        author=ctx.tool_names.get(call_id or "") or None,
        tool_call_id=call_id,
        tool_status=status,
        tool_status_source=StatusSource.EXPLICIT,
        raw_role=raw_role,
        extra=extra,
    )


def _server_call(block: dict[str, Any], path: str, number: int, ctx: _Ctx) -> dict[str, Any]:
    call_id = block.get("id")
    if not call_id:
        call_id = f"server_tool:{number}"
        ctx.warn(
            "missing_tool_call_id",
            f"server tool block has no id; using {call_id!r} (it can have no result)",
            path,
        )
    return {"call_id": call_id, "name": block.get("name"), "input": block.get("input")}


def _server_result(block: dict[str, Any], path: str, seq: int, ctx: _Ctx) -> None:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        ctx.warn("server_tool_result_without_call_id", "server tool result has no id", path)
        return
    content = block.get("content")
    status, source = ToolStatus.SUCCESS, StatusSource.EXPLICIT
    error_content = isinstance(content, dict) and str(content.get("type", "")).endswith("_error")
    return_code = content.get("return_code") if isinstance(content, dict) else None
    if block.get("is_error") is True or error_content:
        status = ToolStatus.ERROR
    elif type(return_code) is int and return_code != 0:
        status, source = ToolStatus.ERROR, StatusSource.CONVENTION
    ctx.server_results.setdefault(call_id, []).append((seq, status, source, content))


def _server_tool_calls(messages: list[Message], ctx: _Ctx) -> list[Message]:
    """``messages`` with each server-side call added to its message's tool calls, paired with
    its result block by id (client calls are paired by then; these never reach pairing)."""
    claimed: set[str] = set()
    pending = 0
    by_seq: dict[int, list[ToolCall]] = {}
    for call in ctx.server_calls:
        record = call.record
        call_id = record["call_id"]
        results = ctx.server_results.get(call_id)
        tool_call = ToolCall(
            call_id=call_id,
            name=record["name"] if isinstance(record["name"], str) else "",
            arguments=record["input"],
        )
        if not results or call_id in claimed:
            pending += 1
        else:
            claimed.add(call_id)
            seq, status, source, content = results[0]
            tool_call = dataclasses.replace(
                tool_call,
                result_content=content,
                result_seq=seq,
                status=status,
                status_source=source,
            )
        by_seq.setdefault(call.message_seq, []).append(tool_call)
    if pending:
        ctx.warn(
            "server_tool_call_without_result",
            f"{pending} server tool call(s) have no result block in the document",
            "",
        )
    orphans = [call_id for call_id in ctx.server_results if call_id not in claimed]
    if orphans:
        ctx.warn(
            "unmatched_server_tool_result",
            f"server tool result(s) for unknown call id(s): {', '.join(o[:40] for o in orphans)}",
            "",
        )
    return [
        dataclasses.replace(m, tool_calls=(*m.tool_calls, *by_seq[m.seq])) if m.seq in by_seq else m
        for m in messages
    ]


# ------------------------------------------------------------------------------------ tokens


def _read_usage(value: Any, path: str, ctx: _Ctx) -> TokenUsage | None:
    """An optional usage: an object, or a list of them (summed); unreadable -> a warning."""
    usages = read_usages(value, path, ctx.warnings, lambda u, at: _usage(u, at, ctx.warnings))
    if not usages:
        return None
    return usages[0] if len(usages) == 1 else sum_token_usages(usages, path)


def _usage(usage: dict[str, Any], path: str, warnings: list[ParseWarning]) -> TokenUsage:
    def count(key: str) -> int | None:
        return usage_count(usage.get(key), pointer_join(path, key), warnings)

    input_tokens = count("input_tokens")
    output_tokens = count("output_tokens")
    total = None
    if input_tokens is not None and output_tokens is not None:
        total = input_tokens + output_tokens
    return TokenUsage(
        input=input_tokens,
        output=output_tokens,
        total=total,
        cached=count("cache_read_input_tokens"),
        cache_write=count("cache_creation_input_tokens"),
    )


def _normalised(content: Any) -> Any:
    """Content in a comparable form: a string is one text block; null keys dropped."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [
            {k: v for k, v in block.items() if v is not None} if isinstance(block, dict) else block
            for block in content
        ]
    return content


def _apply_responses(envelope: dict[str, Any], ctx: _Ctx) -> list[TokenUsage]:
    """Give each ``responses[]`` item's usage, stop_reason, id and model to the next assistant
    message with the same content. Returns the usage of the responses that matched none."""
    responses = optional(envelope, "responses", list, "")
    if not responses:
        return []
    unmatched: list[TokenUsage] = []
    position = 0
    for index, item, path in enumerate_array(responses, "/responses"):
        response = expect(item, dict, path)
        fields = _message_fields(response, path, ctx)
        content = response.get("content")
        expect(content, list, pointer_join(path, "content"), nullable=True)
        wanted = _normalised(content)
        match = next(
            (
                offset
                for offset in range(position, len(ctx.candidates))
                if ctx.candidates[offset][1] == wanted
            ),
            None,
        )
        if match is None:
            ctx.warn(
                "unmatched_response",
                f"response #{index} matches no assistant message by content; its usage still "
                "counts in the session total",
                path,
            )
            if fields.get("usage") is not None:
                unmatched.append(fields["usage"])
            continue
        position = match + 1
        seq = ctx.candidates[match][0]
        message = ctx.messages[seq]
        rest = {k: v for k, v in response.items() if k not in _RESPONSE_KEYS and v is not None}
        extra = dict(message.extra)
        if rest:
            extra["response_extra"] = rest
        ctx.messages[seq] = dataclasses.replace(
            message,
            external_id=message.external_id or fields.get("id"),
            model=message.model or fields.get("model"),
            finish_reason=message.finish_reason or fields.get("stop_reason"),
            tokens=message.tokens if message.tokens is not None else fields.get("usage"),
            extra=extra,
        )
    return unmatched


def _session_tokens(
    envelope: dict[str, Any], messages: Iterable[Message], unmatched: list[TokenUsage], ctx: _Ctx
) -> TokenUsage:
    usage = _read_usage(envelope.get("usage"), "/usage", ctx)
    if usage is not None:
        return usage
    usages = [m.tokens for m in messages if m.tokens is not None] + unmatched
    # This message never named the path (the others start with it): kept as it was.
    return sum_token_usages(usages, "/responses", path_in_message=False)


# ----------------------------------------------------------------------------------- session


def _build_session(
    doc: Any,
    envelope: dict[str, Any],
    variant: str,
    messages: tuple[Message, ...],
    unmatched_usage: list[TokenUsage],
    ctx: _Ctx,
) -> Session:
    if variant == V_MESSAGE:
        return Session(
            source_format=FORMAT_ID,
            format_variant=variant,
            external_id=messages[0].external_id if messages else None,
            tokens=_session_tokens({}, messages, [], ctx),
            messages=messages,
        )
    metadata = dict(optional(envelope, "metadata", dict, "") or {})
    user = first_string(envelope, ("user", "user_id"), "") or optional(
        metadata, "user_id", str, "/metadata"
    )
    extra = {k: v for k, v in envelope.items() if k not in _ENVELOPE_KEYS and v is not None}
    if extra:
        metadata["envelope_extra"] = extra
    created_key = "created_at" if envelope.get("created_at") is not None else "created"
    return Session(
        source_format=FORMAT_ID,
        format_variant=variant,
        external_id=first_id(envelope, ("session_id", "id"), "", ctx.warnings),
        user_id=user,
        status=SessionStatus.UNKNOWN,
        created_at=parse_timestamp(
            envelope.get(created_key), pointer_join("", created_key), ctx.warnings
        ),
        updated_at=parse_timestamp(envelope.get("updated_at"), "/updated_at", ctx.warnings),
        title=optional(envelope, "title", str, ""),
        tokens=_session_tokens(envelope, messages, unmatched_usage, ctx),
        messages=messages,
        metadata=metadata,
    )


# ----------------------------------------------------------------------------------- adapter


ADAPTER = ModuleAdapter(FORMAT_ID, RULES, parse)
