"""PraisonAI session files (``praisonaiagents``) onto the canonical session.

PraisonAI's session stores write one JSON file per session (``~/.praisonai/sessions/<id>.json``):
``{session_id, created_at, updated_at, agent_name, user_id, agent_id, metadata{model?,
total_tokens?, cost?, source?, title?, ...}, gateway_session_id, runtime_state, messages[],
archived_messages[], last_compaction?, model?, total_tokens?, cost?, source?}``. Shapes
recognised (detection rule 11: ``session_id`` + ``messages`` and ``archived_messages`` or
``runtime_state``), reported as ``format_variant``:

- ``default``: a ``DefaultSessionStore`` file (what a real ``Agent(memory={"session_id": ...})``
  run writes);
- ``hierarchical``: a ``HierarchicalSessionStore`` file, which adds ``parent_id``,
  ``forked_from_message_id``, ``children_ids``, ``is_shared``, ``title``, ``snapshots[]`` and a
  ``snapshot_storage {version, records{key: message|null}}`` pool that the snapshots reference
  by key (``transcript_refs``). The pool only repeats messages, so ``Session.metadata`` keeps the
  snapshots and a summary of the pool (``{version, records: <count>}``); the pool itself stays
  in the raw document.

Quirks of the format, and what this adapter does about them:

- Messages are ``archived_messages`` (turns compaction rolled out of the active window) followed
  by ``messages``, in that order; archived ones carry ``extra["archived"] = true``.
- Compaction inserts a synthetic system message ``"[Session Summary] ..."`` with
  ``metadata.compaction: true``: it is kept (it is what the model saw) and flagged with
  ``extra["compaction_summary"] = true``. ``last_compaction`` goes to ``Session.metadata``.
- An interrupted stream leaves a message with ``metadata.partial: true``: kept and flagged with
  ``extra["partial"] = true``. Every message's own ``metadata`` is kept in ``extra["metadata"]``.
- Timestamps are explicit epoch seconds (floats) per message; ``created_at``/``updated_at`` are
  ISO strings. Compaction summaries can carry a later time than the turns after them: document
  order (``seq``) stays the order.
- Tool calls are OpenAI-shaped (``tool_calls[].id``/``function{name, arguments}``, arguments a
  JSON *string*) and pair with ``role: "tool"`` messages by ``tool_call_id``. There is no status
  field: a result is ``error`` when its text reads like one ("Error: ...") and ``success``
  otherwise, both ``heuristic``; a ``metadata.status`` of ``"success"``/``"error"`` that an app
  set on the tool message is used instead, as ``convention``.
- A tool that raises aborts the turn and leaves an assistant ``tool_calls`` entry with no tool
  message. There is no session status field: the status is derived as ``running``, or
  ``aborted`` when the *last* message is an assistant turn whose tool call(s) have no result
  (``metadata["status_derived_from"]`` says so). ``raw_status`` stays empty.
- Tokens are session-level only: ``total_tokens`` (top level, mirrored in ``metadata``) is
  reported as the total; there is no input/output split. Streaming runs record
  ``total_tokens: 0`` (and ``cost: 0.0``) whatever they used, so a 0 means *not reported*: the
  tokens stay unknown (None) with a warning, the cost is not claimed either, and the recorded
  values are kept in ``metadata["recorded_usage"]``. ``cost`` (USD) otherwise lands in
  ``metadata["cost"]``. A ``total_tokens`` that is not an integer is an ``unreadable_usage``
  warning (unknown tokens), a negative one is clamped to 0 with a warning.
- ``model`` (top level or ``metadata.model``) is put on every assistant message, so that
  ``Session.models`` reports it. The system prompt is not stored by PraisonAI.
- Forks: ``parent_id`` becomes ``parent_external_id``; ``forked_from_message_id``,
  ``children_ids`` and ``is_shared`` go to ``Session.metadata``.
- Every other key is kept: unknown top-level keys in ``metadata["envelope_extra"]``, unknown
  message keys in ``Message.extra``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessions_api.domain import (
    Message,
    ParsedSession,
    Role,
    Session,
    SessionStatus,
    StatusSource,
    TimestampSource,
    TokenSource,
    TokenUsage,
    ToolCall,
    ToolStatus,
)
from sessions_api.formats.base import (
    DetectionRule,
    InvalidDocument,
    ModuleAdapter,
    ParseContext,
    checked_content,
    enumerate_array,
    expect,
    optional,
    required,
)
from sessions_api.formats.common import (
    CHAT_ROLES,
    map_role,
    parse_tool_arguments,
    result_looks_like_error,
    timestamp_field,
    tool_call_objects,
    usage_count,
)
from sessions_api.formats.pairing import pair_tool_calls

FORMAT_ID = "praisonai"
VARIANT_DEFAULT = "default"
VARIANT_HIERARCHICAL = "hierarchical"

_APP_TOOL_STATUSES = {"success": ToolStatus.SUCCESS, "error": ToolStatus.ERROR}
# Keys only HierarchicalSessionStore writes.
_HIERARCHY_KEYS = (
    "parent_id",
    "forked_from_message_id",
    "children_ids",
    "snapshots",
    "snapshot_storage",
    "is_shared",
)
# Top-level keys this adapter maps; anything else is kept in metadata["envelope_extra"].
_ENVELOPE_KEYS = frozenset(
    {
        "session_id",
        "messages",
        "archived_messages",
        "created_at",
        "updated_at",
        "agent_name",
        "user_id",
        "agent_id",
        "metadata",
        "gateway_session_id",
        "runtime_state",
        "last_compaction",
        "model",
        "total_tokens",
        "cost",
        "source",
        "reasoning_effort",
        "title",
        *_HIERARCHY_KEYS,
    }
)
_MESSAGE_KEYS = frozenset(
    {"role", "content", "timestamp", "metadata", "tool_calls", "tool_call_id", "name", "id"}
)


# --------------------------------------------------------------------------------- detection


def looks_like_praisonai(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and "session_id" in doc
        and isinstance(doc.get("messages"), list)
        and ("archived_messages" in doc or "runtime_state" in doc)
    )


def variant_of(doc: dict[str, Any]) -> str:
    return VARIANT_HIERARCHICAL if any(k in doc for k in _HIERARCHY_KEYS) else VARIANT_DEFAULT


def _rule(variant: str, shape: str) -> DetectionRule:
    return DetectionRule(
        number=11,
        format_id=FORMAT_ID,
        description=(
            "PraisonAI session file (session_id + messages + archived_messages/runtime_state; "
            f"{shape})"
        ),
        matches=lambda doc: looks_like_praisonai(doc) and variant_of(doc) == variant,
        variant=variant,
    )


RULES: tuple[DetectionRule, ...] = (
    _rule(VARIANT_HIERARCHICAL, "HierarchicalSessionStore: forks, snapshots"),
    _rule(VARIANT_DEFAULT, "DefaultSessionStore"),
)


# ----------------------------------------------------------------------------------- parsing


@dataclass
class _Parse(ParseContext):
    model: str | None = None


def parse(doc: Any) -> ParsedSession:
    expect(doc, dict, "")
    ctx = _Parse()
    external_id = _session_id(doc)
    doc_metadata = dict(optional(doc, "metadata", dict, "") or {})
    ctx.model = _mirrored(doc, doc_metadata, "model", str, ctx)

    raw_messages: list[tuple[Any, str, bool]] = []
    if doc.get("archived_messages") is not None:
        raw_messages.extend(
            (item, path, True)
            for _, item, path in enumerate_array(doc["archived_messages"], "/archived_messages")
        )
    if doc.get("messages") is None:
        raise InvalidDocument(
            "/messages: required (an array of messages)", path="/messages", code="missing_field"
        )
    raw_messages.extend(
        (item, path, False) for _, item, path in enumerate_array(doc["messages"], "/messages")
    )
    messages = [
        _message(item, seq, path, archived, ctx)
        for seq, (item, path, archived) in enumerate(raw_messages)
    ]
    paired, pairing_warnings = pair_tool_calls(messages, heuristic=result_looks_like_error)
    status, status_note = _derived_status(paired)

    metadata = _session_metadata(doc, doc_metadata, ctx)
    if status_note:
        metadata["status_derived_from"] = status_note
    tokens = _tokens(doc, doc_metadata, metadata, ctx)

    session = Session(
        source_format=FORMAT_ID,
        format_variant=variant_of(doc),
        external_id=external_id,
        user_id=optional(doc, "user_id", str, ""),
        agent_name=optional(doc, "agent_name", str, ""),
        status=status,
        created_at=timestamp_field(doc, "created_at", "", ctx.warnings),
        updated_at=timestamp_field(doc, "updated_at", "", ctx.warnings),
        title=_mirrored(doc, doc_metadata, "title", str, ctx),
        parent_external_id=optional(doc, "parent_id", str, ""),
        tokens=tokens,
        messages=tuple(paired),
        metadata=metadata,
    )
    return ParsedSession(session=session, warnings=(*ctx.warnings, *pairing_warnings))


def _session_id(doc: dict[str, Any]) -> str:
    value = doc.get("session_id")
    if value is None:
        raise InvalidDocument(
            "missing session id: a PraisonAI session file needs `session_id`",
            path="/session_id",
            code="missing_session_id",
        )
    value = expect(value, str, "/session_id")
    if not value.strip():
        raise InvalidDocument(
            "/session_id: must not be blank", path="/session_id", code="missing_session_id"
        )
    return value


def _mirrored(
    doc: dict[str, Any], doc_metadata: dict[str, Any], key: str, kind: type, ctx: _Parse
) -> Any:
    """A value PraisonAI writes both at the top level and in ``metadata``: top level wins."""
    top = optional(doc, key, kind, "")
    inner = optional(doc_metadata, key, kind, "/metadata")
    if top is not None and inner is not None and top != inner:
        ctx.warn(
            "mirrored_value_differs",
            f"{key} differs between the top level and metadata; using the top level",
            f"/{key}",
        )
    return top if top is not None else inner


# ---------------------------------------------------------------------------------- messages


def _message(item: Any, seq: int, path: str, archived: bool, ctx: _Parse) -> Message:
    raw = expect(item, dict, path)
    raw_role = required(raw, "role", str, path)
    role = map_role(raw_role, CHAT_ROLES, path, ctx.warnings)
    text, parts = checked_content(raw.get("content"), f"{path}/content")
    timestamp = timestamp_field(raw, "timestamp", path, ctx.warnings, (int, float, str))
    metadata = optional(raw, "metadata", dict, path) or {}

    extra: dict[str, Any] = {}
    if archived:
        extra["archived"] = True
    if metadata.get("compaction") is True:
        extra["compaction_summary"] = True
    if metadata.get("partial") is True:
        extra["partial"] = True
    if metadata:
        extra["metadata"] = metadata
    extra.update((k, v) for k, v in raw.items() if k not in _MESSAGE_KEYS and v is not None)

    tool_status, status_source = _app_tool_status(metadata, role, path, ctx)
    tool_call_id = optional(raw, "tool_call_id", str, path)
    if role is Role.TOOL and tool_call_id is None:
        ctx.warn("tool_result_without_call_id", "tool message has no tool_call_id", path)
    message_id = raw.get("id")
    expect(message_id, (str, int), f"{path}/id", nullable=True)
    return Message(
        seq=seq,
        role=role,
        content_text=text,
        content_parts=parts,
        external_id=None if message_id is None else str(message_id),
        author=optional(raw, "name", str, path),
        timestamp=timestamp,
        timestamp_source=TimestampSource.EXPLICIT if timestamp else TimestampSource.NONE,
        model=ctx.model if role is Role.ASSISTANT else None,
        tool_calls=_tool_calls(raw.get("tool_calls"), seq, f"{path}/tool_calls", ctx),
        tool_call_id=tool_call_id,
        tool_status=tool_status,
        tool_status_source=status_source,
        raw_role=raw_role if role is Role.OTHER else None,
        extra=extra,
    )


def _app_tool_status(
    metadata: dict[str, Any], role: Role, path: str, ctx: _Parse
) -> tuple[ToolStatus | None, StatusSource]:
    """A ``metadata.status`` an app set on a tool message (not written by PraisonAI itself)."""
    if role is not Role.TOOL or metadata.get("status") is None:
        return None, StatusSource.NONE
    raw = metadata["status"]
    status = _APP_TOOL_STATUSES.get(raw) if isinstance(raw, str) else None
    if status is None:
        ctx.warn("unknown_tool_status", f"unknown metadata.status {str(raw)[:80]!r}", path)
        return None, StatusSource.NONE
    return status, StatusSource.CONVENTION


def _tool_calls(value: Any, seq: int, path: str, ctx: _Parse) -> tuple[ToolCall, ...]:
    calls = []
    for raw, item_path, call_id in tool_call_objects(value, seq, path, ctx.warnings):
        function = optional(raw, "function", dict, item_path)
        if function is None:
            ctx.warn("malformed_tool_call", "tool call has no 'function' object", item_path)
            calls.append(ToolCall(call_id=call_id, name=""))
            continue
        function_path = f"{item_path}/function"
        name = optional(function, "name", str, function_path) or ""
        arguments, error = parse_tool_arguments(
            function.get("arguments"), f"{function_path}/arguments", ctx.warnings
        )
        calls.append(
            ToolCall(call_id=call_id, name=name, arguments=arguments, arguments_error=error)
        )
    return tuple(calls)


def _derived_status(messages: list[Message]) -> tuple[SessionStatus, str | None]:
    """``aborted`` when the last turn is a tool call with no result; else ``running``."""
    if messages:
        last = messages[-1]
        if last.role is Role.ASSISTANT and any(
            call.status is ToolStatus.PENDING for call in last.tool_calls
        ):
            return SessionStatus.ABORTED, (
                "the last message is a tool call with no result (the turn was aborted)"
            )
    return SessionStatus.RUNNING, "PraisonAI records no status; a session file stays open"


# ----------------------------------------------------------------------- session and tokens


def _session_metadata(
    doc: dict[str, Any], doc_metadata: dict[str, Any], ctx: _Parse
) -> dict[str, Any]:
    metadata = dict(doc_metadata)
    for key in ("agent_id", "source", "reasoning_effort"):
        value = doc.get(key)
        if value is not None:
            metadata[key] = value
    if ctx.model is not None:
        metadata["model"] = ctx.model
    for key in ("gateway_session_id", "last_compaction", "forked_from_message_id", "is_shared"):
        if doc.get(key) is not None:
            metadata[key] = doc[key]
    runtime_state = optional(doc, "runtime_state", dict, "")
    if runtime_state:
        metadata["runtime_state"] = runtime_state
    children = optional(doc, "children_ids", list, "")
    if children:
        metadata["children_ids"] = children
    snapshots = optional(doc, "snapshots", list, "")
    if snapshots:
        metadata["snapshots"] = snapshots
    storage = optional(doc, "snapshot_storage", dict, "")
    if storage is not None:
        records = optional(storage, "records", dict, "/snapshot_storage") or {}
        metadata["snapshot_storage"] = {"version": storage.get("version"), "records": len(records)}
    extra = {k: v for k, v in doc.items() if k not in _ENVELOPE_KEYS and v is not None}
    if extra:
        metadata["envelope_extra"] = extra
    return metadata


def _total_tokens(value: Any, path: str, ctx: _Parse) -> int | None:
    """A session's ``total_tokens``: optional data, so one that is not an integer is an
    ``unreadable_usage`` warning and unknown tokens (never coerced); a negative one is 0 with a
    warning (``common.usage_count``)."""
    try:
        return usage_count(value, path, ctx.warnings)
    except InvalidDocument as exc:
        if exc.code != "wrong_type":
            raise
        ctx.warn("unreadable_usage", f"{exc.message}; its tokens are not counted", path)
        return None


def _tokens(
    doc: dict[str, Any], doc_metadata: dict[str, Any], metadata: dict[str, Any], ctx: _Parse
) -> TokenUsage:
    top = _total_tokens(doc.get("total_tokens"), "/total_tokens", ctx)
    inner = _total_tokens(doc_metadata.get("total_tokens"), "/metadata/total_tokens", ctx)
    if top is not None and inner is not None and top != inner:
        ctx.warn(
            "mirrored_value_differs",
            "total_tokens differs between the top level and metadata; using the top level",
            "/total_tokens",
        )
    total = top if top is not None else inner
    cost = doc.get("cost", doc_metadata.get("cost"))
    if cost is not None:
        expect(cost, (int, float), "/cost" if "cost" in doc else "/metadata/cost")
    metadata.pop("total_tokens", None)
    if cost is not None:
        metadata["cost"] = cost
    if total == 0:
        # Streaming runs write 0 whatever they used: 0 is "not reported", not a measurement.
        metadata["recorded_usage"] = {"total_tokens": 0}
        if cost is not None:
            metadata["recorded_usage"]["cost"] = cost
            if cost == 0:
                metadata["cost"] = None  # as unreported as the tokens
        ctx.warn(
            "tokens_not_reported",
            "total_tokens is 0 (PraisonAI's streaming path records 0 whatever it used); "
            "tokens are shown as unknown",
            "/total_tokens" if top is not None else "/metadata/total_tokens",
        )
        return TokenUsage()
    if total is None:
        return TokenUsage()
    return TokenUsage(total=total, source=TokenSource.REPORTED)


# ----------------------------------------------------------------------------------- adapter


ADAPTER = ModuleAdapter(FORMAT_ID, RULES, parse)
