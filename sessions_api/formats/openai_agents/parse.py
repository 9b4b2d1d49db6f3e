"""OpenAI Agents SDK (``openai-agents``) sessions onto the canonical session.

A session is an ordered list of Responses input items. Four shapes are read, each reported as
``format_variant`` (detection rules 5-7):

- ``sqlite-dump`` (rule 5): the ``SQLiteSession`` tables as JSON, ``{agent_sessions[],
  agent_messages[]}``, each message row holding one item as a JSON *string* in
  ``message_data``; ``advanced-sqlite-dump`` when ``AdvancedSQLiteSession``'s
  ``message_structure``/``turn_usage`` tables come along;
- ``run-state`` (rule 6): ``result.to_state().to_json()``, ``{"$schemaVersion",
  model_responses[], generated_items[], original_input, context.usage, current_agent, …}``;
- ``items-envelope`` (rule 7): ``{session_id? (else id?), created_at?, updated_at?, items[]}``
  (what ``manage.py import_sessions`` writes per session of a ``SQLiteSession`` file; other keys are
  kept in ``metadata["envelope_extra"]``);
- ``session-items`` (rule 7): a bare list of items (``session.get_items()``).

Detection boundaries. Rule 5 needs both table keys; rule 6 ``$schemaVersion`` and
``model_responses``. Rule 7 needs a non-empty list (bare, or under ``items`` in an object without
a ``messages`` key; an empty ``items`` only with a ``session_id``) in which *every* element is a
Responses item: an object with a known item ``type`` (``message``, ``function_call``,
``reasoning``, a hosted tool call …), an encrypted ``{"__enc__": 1, …}`` item, or a ``{role,
content}`` message with a Responses role (user/system/developer/assistant), only the keys a
Responses message has (``role, content, type, id, status, phase``) and Responses content parts
(``input_text``, ``output_text``, ``refusal`` …). So chat-completions lists (``tool_calls``,
``tool_call_id``, role ``tool``/``function``, ``text``/``image_url`` parts), LangChain lists
(``type`` human/ai), falai rows (``sessionId``…), AgentFlow histories (``tool_results``) never
match. A bare list of plain ``{role, content}`` messages is a Responses item list too and rule 7
comes before rule 16, so it is read here (the documented precedence; ``?format=openai_chat``
overrides).

One document, one session: a dump with several sessions is a 422 ``multiple_sessions``
(``manage.py import_sessions`` splits such a file with :func:`split_sessions`).

Quirks of the format, and what this adapter does about them:

- One canonical Message per item, in document order (dump rows: by their integer ``id``, the
  order ``get_items()`` returns). Roles: user input → user, system/developer → system,
  assistant output, ``reasoning`` (text = its summary) and every tool *call* → assistant, every
  tool *output* → tool. ``step`` is ``turn N``: each user item starts a turn.
- ``function_call`` ↔ ``function_call_output`` (and ``computer_call``, ``local_shell_call``,
  ``shell_call``, ``apply_patch_call``, ``custom_tool_call`` with their ``*_output``) pair by
  ``call_id``. Outputs carry **no status**: the SDK turns a raising tool into the text "An error
  occurred while running the tool. Please try again." (or an app's ``failure_error_function``
  text), so the status is ``heuristic``: that text, or the shared "Error: …" heuristic, means
  error, anything else success. An output with an explicit ``status`` (failed/incomplete/
  completed) is ``explicit``.
- Hosted tools whose item carries its own result (``web_search_call``, ``file_search_call``,
  ``code_interpreter_call``, ``image_generation_call``, ``mcp_call``, ``tool_search_call``) are
  a tool call answered by the same item; the status is the item's own ``status`` (``explicit``;
  ``mcp_call.error`` ⇒ error; in-progress states ⇒ pending; none ⇒ unknown).
- Handoffs are ``function_call`` ``transfer_to_<agent>`` answered by ``{"assistant": "<Agent>"}``:
  the call message gets ``extra["handoff"]``, the output ``extra["handoff_to"]``, and the
  following assistant items *of the same turn* get that agent as ``author``
  (``extra["author_source"] = "handoff"``). Items do not record their agent otherwise (RunState
  ``generated_items`` do: ``agent.name`` is the author there).
- Encrypted items (``EncryptedSession``: ``{"__enc__": 1, "v", "kid", "payload"}``) cannot be
  read without the key: role ``other``, text ``[encrypted]``, the envelope minus the payload in
  ``extra``, and a warning. Unknown item types: role ``other``, the raw item in ``extra["item"]``,
  a warning. A ``message_data`` string that is not strict JSON: role ``other``, the raw text, a
  warning.
- Not stored by the SDK: system instructions, model, per-item timestamps. Dump rows carry
  ``created_at`` (SQLite ``CURRENT_TIMESTAMP``, UTC, 1 s resolution, identical for a turn): used
  as the message time. Status is always ``unknown`` (a RunState waiting on an interruption is
  ``running``).
- Tokens: ``turn_usage`` rows (per user turn) summed (source ``summed``), also kept per turn as
  steps; RunState ``context.usage`` as reported, else ``model_responses[].usage`` summed, and each
  response's usage on the first message it produced. In 0.24.0 the RunState token-detail fields
  are *lists* of objects (summed here); ``turn_usage`` details are JSON strings. A bare item list
  has no usage (tokens null). Usage is optional data: an unreadable usage is an
  ``unreadable_usage`` warning and no tokens, a negative count is 0 with a warning.
- RunState messages are ``original_input`` (a string is one user message) then
  ``generated_items`` (``extra["run_item_type"]``, ``extra["run_state_part"]``), then
  ``pending_input``; ``session_items`` repeats ``generated_items`` and is only counted in
  metadata. A run paused for tool approval ends with a ``tool_approval_item`` whose raw item is
  the call it waits on (same ``call_id``): it is an ``other`` message (``extra
  ["awaiting_approval"]`` = the call id), not a second call; the call itself stays
  ``pending``. A RunState has no session id (the ingest derives one from the content).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sessions_api.domain import (
    Message,
    ParsedSession,
    Role,
    Session,
    SessionStatus,
    StatusSource,
    StepState,
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
    content_to_text,
    expect,
    object_items,
    optional,
    pointer_join,
    required,
)
from sessions_api.formats.common import (
    parse_embedded_json,
    parse_tool_arguments,
    read_usages,
    sum_token_usages,
    timestamp_field,
    usage_count,
)
from sessions_api.formats.pairing import looks_like_error, pair_tool_calls

FORMAT_ID = "openai_agents"

VARIANT_ITEMS = "session-items"
VARIANT_ENVELOPE = "items-envelope"
VARIANT_DUMP = "sqlite-dump"
VARIANT_ADVANCED_DUMP = "advanced-sqlite-dump"
VARIANT_RUN_STATE = "run-state"

# agents/util/_error_tracing + tool.default_tool_error_function (0.24.0).
DEFAULT_TOOL_ERROR_TEXT = "An error occurred while running the tool. Please try again."
HANDOFF_PREFIX = "transfer_to_"

_ROLES = {
    "user": Role.USER,
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "assistant": Role.ASSISTANT,
}
# Keys a Responses message item may have (EasyInputMessage, ResponseInputItem.Message,
# ResponseOutputMessage).
_MESSAGE_ITEM_KEYS = frozenset({"role", "content", "type", "id", "status", "phase"})
_CONTENT_PART_TYPES = frozenset(
    {
        "input_text",
        "input_image",
        "input_file",
        "input_audio",
        "output_text",
        "refusal",
        "summary_text",
        "reasoning_text",
    }
)
_TEXT_PART_TYPES = frozenset({"input_text", "output_text", "summary_text", "reasoning_text"})
# Calls answered by a separate output item (paired by call id) -> that output's type.
_CALLS_WITH_OUTPUT = {
    "function_call": "function_call_output",
    "computer_call": "computer_call_output",
    "local_shell_call": "local_shell_call_output",
    "shell_call": "shell_call_output",
    "apply_patch_call": "apply_patch_call_output",
    "custom_tool_call": "custom_tool_call_output",
}
_OUTPUT_TYPES = frozenset(_CALLS_WITH_OUTPUT.values())
# Hosted tool calls whose item holds their own result and status.
_SELF_CONTAINED_CALLS = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "mcp_call",
        "tool_search_call",
    }
)
# Known items that are neither messages nor tool calls: role and a short display text.
_OTHER_ITEMS: dict[str, tuple[Role, str]] = {
    "mcp_list_tools": (Role.ASSISTANT, "[MCP tools listed]"),
    "mcp_approval_request": (Role.ASSISTANT, "[MCP approval requested]"),
    "mcp_approval_response": (Role.USER, "[MCP approval answered]"),
    "compaction": (Role.OTHER, "[compacted context]"),
    "item_reference": (Role.OTHER, "[reference to an earlier item]"),
}
KNOWN_ITEM_TYPES = frozenset(
    {"message", "reasoning"}
    | set(_CALLS_WITH_OUTPUT)
    | _OUTPUT_TYPES
    | _SELF_CONTAINED_CALLS
    | set(_OTHER_ITEMS)
)
# Item status -> tool status, for hosted calls and outputs that record one.
_ITEM_STATUSES = {
    "completed": ToolStatus.SUCCESS,
    "failed": ToolStatus.ERROR,
    "incomplete": ToolStatus.ERROR,
    "in_progress": ToolStatus.PENDING,
    "searching": ToolStatus.PENDING,
    "generating": ToolStatus.PENDING,
    "interpreting": ToolStatus.PENDING,
    "calling": ToolStatus.PENDING,
}
# Where a call keeps its arguments, and a self-contained call its result (first present wins).
_ARGUMENT_KEYS = ("arguments", "input", "action", "actions", "queries", "code", "operation")
_RESULT_KEYS = ("output", "results", "outputs", "result")


# --------------------------------------------------------------------------------- detection


def is_encrypted_item(item: Any) -> bool:
    return isinstance(item, dict) and "__enc__" in item and "payload" in item


def _is_content_ok(content: Any) -> bool:
    if isinstance(content, str):
        return True
    if not isinstance(content, list):
        return False
    return all(
        isinstance(part, dict) and part.get("type") in _CONTENT_PART_TYPES for part in content
    )


def is_responses_item(item: Any) -> bool:
    """A Responses input item (see the module docstring for the exact boundary). Never raises."""
    if not isinstance(item, dict):
        return False
    if is_encrypted_item(item):
        return True
    item_type = item.get("type")
    if item_type is not None and item_type != "message":
        return isinstance(item_type, str) and item_type in KNOWN_ITEM_TYPES
    role = item.get("role")
    return (
        isinstance(role, str)
        and role in _ROLES
        and "content" in item
        and set(item) <= _MESSAGE_ITEM_KEYS
        and _is_content_ok(item["content"])
    )


def _all_items(items: list[Any]) -> bool:
    return bool(items) and all(is_responses_item(item) for item in items)


def looks_like_item_list(doc: Any) -> bool:
    return isinstance(doc, list) and _all_items(doc)


def looks_like_item_envelope(doc: Any) -> bool:
    if not isinstance(doc, dict) or "messages" in doc or not isinstance(doc.get("items"), list):
        return False
    items = doc["items"]
    if not items:
        return isinstance(doc.get("session_id"), str)
    return _all_items(items)


def looks_like_dump(doc: Any) -> bool:
    return isinstance(doc, dict) and "agent_messages" in doc and "agent_sessions" in doc


def looks_like_run_state(doc: Any) -> bool:
    return isinstance(doc, dict) and "$schemaVersion" in doc and "model_responses" in doc


RULES: tuple[DetectionRule, ...] = (
    DetectionRule(
        number=5,
        format_id=FORMAT_ID,
        description="OpenAI Agents SQLiteSession dump (agent_sessions + agent_messages)",
        matches=looks_like_dump,
        variant=VARIANT_DUMP,
    ),
    DetectionRule(
        number=6,
        format_id=FORMAT_ID,
        description="OpenAI Agents RunState ($schemaVersion + model_responses)",
        matches=looks_like_run_state,
        variant=VARIANT_RUN_STATE,
    ),
    DetectionRule(
        number=7,
        format_id=FORMAT_ID,
        description="OpenAI Agents session items (items[] of Responses input items)",
        matches=looks_like_item_envelope,
        variant=VARIANT_ENVELOPE,
    ),
    DetectionRule(
        number=7,
        format_id=FORMAT_ID,
        description="OpenAI Agents session items (a bare list of Responses input items)",
        matches=looks_like_item_list,
        variant=VARIANT_ITEMS,
    ),
)


# The run item a RunState paused for tool approval ends with; its raw_item is the pending call.
APPROVAL_ITEM = "tool_approval_item"


# ------------------------------------------------------------------------------ parse state


@dataclass(frozen=True)
class _Item:
    """One item to map, with where it came from."""

    value: Any
    path: str
    timestamp: datetime | None = None
    author: str | None = None
    # Keys for Message.extra that the container adds (row id, run item type, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    # A dump row whose message_data is not JSON: the raw text (value is then None).
    unparseable: str | None = None


@dataclass
class _Parse(ParseContext):
    messages: list[Message] = field(default_factory=list)
    # call id -> tool name, to recognise handoff outputs.
    call_names: dict[str, str] = field(default_factory=dict)
    # seq -> a hosted call answered by its own item (kept out of id pairing).
    self_contained: dict[int, ToolCall] = field(default_factory=dict)
    turn: int = 0


# ----------------------------------------------------------------------------------- parsing


def parse(doc: Any) -> ParsedSession:
    if looks_like_dump(doc):
        return _parse_dump(doc)
    if looks_like_run_state(doc):
        return _parse_run_state(doc)
    if isinstance(doc, dict):
        return _parse_envelope(doc)
    expect(doc, list, "")
    ctx = _Parse()
    items = [_Item(value, pointer_join("", index)) for index, value in enumerate(doc)]
    return _finish(
        ctx, items, session=Session(source_format=FORMAT_ID, format_variant=VARIANT_ITEMS)
    )


def _parse_envelope(doc: dict[str, Any]) -> ParsedSession:
    if "items" not in doc:
        raise InvalidDocument(
            "/items: required (an array of session items)", path="/items", code="missing_field"
        )
    raw_items = expect(doc["items"], list, "/items")
    ctx = _Parse()
    # `id` names the session when there is no `session_id` (the envelope apps commonly use).
    id_key = "session_id" if doc.get("session_id") is not None else "id"
    session_id = _session_id(doc.get(id_key), f"/{id_key}", ctx)
    consumed = {"items", id_key, "created_at", "updated_at"}
    extra = {k: v for k, v in doc.items() if k not in consumed and v is not None}
    items = [_Item(value, pointer_join("/items", index)) for index, value in enumerate(raw_items)]
    session = Session(
        source_format=FORMAT_ID,
        format_variant=VARIANT_ENVELOPE,
        external_id=session_id,
        created_at=timestamp_field(doc, "created_at", "", ctx.warnings),
        updated_at=timestamp_field(doc, "updated_at", "", ctx.warnings),
        metadata={"envelope_extra": extra} if extra else {},
    )
    return _finish(ctx, items, session=session)


def _session_id(value: Any, path: str, ctx: _Parse) -> str | None:
    value = expect(value, str, path, nullable=True)
    if value is not None and not value.strip():
        ctx.warn("empty_session_id", "session_id is blank; treated as absent", path)
        return None
    return value


# --- rule 5: the SQLiteSession tables -----------------------------------------------------------


def dump_session_ids(doc: dict[str, Any]) -> list[str]:
    """Every session id a dump names (agent_sessions first, then message rows), in order."""
    ids: dict[str, None] = {}
    for key in ("agent_sessions", "agent_messages", "message_structure", "turn_usage"):
        rows = doc.get(key)
        if isinstance(rows, list):
            for row in rows:
                if isinstance(row, dict) and isinstance(row.get("session_id"), str):
                    ids.setdefault(row["session_id"], None)
    return list(ids)


def _parse_dump(doc: dict[str, Any]) -> ParsedSession:
    expect(doc, dict, "")
    ctx = _Parse()
    sessions = list(object_items(doc, "agent_sessions"))
    messages = list(object_items(doc, "agent_messages"))
    for _, row, path in [*sessions, *messages]:
        expect(row.get("session_id"), str, pointer_join(path, "session_id"))
    ids = dump_session_ids(doc)
    if len(ids) > 1:
        raise InvalidDocument(
            f"this dump holds {len(ids)} sessions ({', '.join(ids[:5])}"
            f"{', …' if len(ids) > 5 else ''}); one document is one session: import the file "
            "with `manage.py import_sessions PATH` (it splits dumps into sessions) or post the "
            "rows of one session at a time",
            path="/agent_sessions",
            code="multiple_sessions",
        )
    if not ids:
        raise InvalidDocument(
            "missing session id: the dump has no agent_sessions or agent_messages rows",
            path="/agent_sessions",
            code="missing_session_id",
        )
    session_id = ids[0]
    created_at = updated_at = None
    if sessions:
        _, row, path = sessions[0]
        created_at = timestamp_field(row, "created_at", path, ctx.warnings)
        updated_at = timestamp_field(row, "updated_at", path, ctx.warnings)

    structure = _message_structure(doc)
    ordered = _ordered_rows(messages)
    items = [_dump_item(row, path, structure, ctx) for row, path in ordered]
    advanced = "message_structure" in doc or "turn_usage" in doc
    extra_tables = {
        k: v
        for k, v in doc.items()
        if k not in ("agent_sessions", "agent_messages", "message_structure", "turn_usage")
    }
    session = Session(
        source_format=FORMAT_ID,
        format_variant=VARIANT_ADVANCED_DUMP if advanced else VARIANT_DUMP,
        external_id=session_id,
        created_at=created_at,
        updated_at=updated_at,
        metadata={"other_tables": extra_tables} if extra_tables else {},
    )
    return _finish(ctx, items, session=session, turn_usage=_turn_usage(doc, ctx))


def _ordered_rows(rows: list[tuple[int, dict[str, Any], str]]) -> list[tuple[dict[str, Any], str]]:
    """Rows by their integer ``id`` (the order get_items() returns), else as written."""
    ids = [row.get("id") for _, row, _ in rows]
    if all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        rows = sorted(rows, key=lambda entry: entry[1]["id"])
    return [(row, path) for _, row, path in rows]


def _dump_item(
    row: dict[str, Any], path: str, structure: dict[Any, dict[str, Any]], ctx: _Parse
) -> _Item:
    row_id = optional(row, "id", (int, str), path)
    timestamp = timestamp_field(row, "created_at", path, ctx.warnings)
    extra: dict[str, Any] = {"row_id": row_id} if row_id is not None else {}
    extra.update(_structure_extra(structure.get(row_id)))
    data_path = pointer_join(path, "message_data")
    data = required(row, "message_data", (str, dict), path)
    if isinstance(data, dict):
        return _Item(data, data_path, timestamp=timestamp, extra=extra)
    value, error = parse_embedded_json(data, data_path)
    if error is not None:
        ctx.warn(
            "unparseable_message_data", f"message_data is not JSON ({error}); kept raw", data_path
        )
        return _Item(None, data_path, timestamp=timestamp, extra=extra, unparseable=data)
    return _Item(value, data_path, timestamp=timestamp, extra=extra)


def _message_structure(doc: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    """AdvancedSQLiteSession ``message_structure`` rows by ``message_id``."""
    found: dict[Any, dict[str, Any]] = {}
    for _, row, path in object_items(doc, "message_structure"):
        message_id = optional(row, "message_id", (int, str), path)
        if message_id is not None:
            found[message_id] = row
    return found


def _structure_extra(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {}
    keys = ("branch_id", "user_turn_number", "branch_turn_number", "sequence_number", "tool_name")
    return {"structure": {k: row[k] for k in keys if row.get(k) is not None}}


# --- rule 6: RunState -----------------------------------------------------------------------


def _parse_run_state(doc: dict[str, Any]) -> ParsedSession:
    ctx = _Parse()
    schema_version = expect(doc["$schemaVersion"], str, "/$schemaVersion")
    responses = expect(doc["model_responses"], list, "/model_responses")
    current_agent = _agent_name(doc.get("current_agent"), "/current_agent")
    items: list[_Item] = []

    original = doc.get("original_input")
    expect(original, (str, list), "/original_input", nullable=True)
    if isinstance(original, str):
        items.append(
            _Item(
                {"role": "user", "content": original},
                "/original_input",
                extra=_part("original_input"),
            )
        )
    elif isinstance(original, list):
        items.extend(
            _Item(value, pointer_join("/original_input", i), extra=_part("original_input"))
            for i, value in enumerate(original)
        )
    first_generated = len(items)
    for index, run_item in enumerate(
        expect(doc.get("generated_items"), list, "/generated_items", nullable=True) or []
    ):
        items.append(_run_item(run_item, pointer_join("/generated_items", index), ctx))
    generated = (first_generated, len(items))
    pending = doc.get("pending_input")
    for index, value in enumerate(expect(pending, list, "/pending_input", nullable=True) or []):
        items.append(
            _Item(value, pointer_join("/pending_input", index), extra=_part("pending_input"))
        )

    usages = [
        _response_usage(r, pointer_join("/model_responses", i), ctx)
        for i, r in enumerate(responses)
    ]
    context = optional(doc, "context", dict, "")
    reported = None
    if context is not None:
        reported = _optional_usage(context.get("usage"), "/context/usage", ctx)
    tokens = reported or sum_token_usages(
        [u for _, u in usages if u is not None], "/model_responses"
    )

    metadata: dict[str, Any] = {
        "schema_version": schema_version,
        "current_agent": current_agent,
        "model_responses": len(responses),
        "response_ids": [rid for rid, _ in usages if rid],
    }
    for key in (
        "current_turn",
        "max_turns",
        "tool_use_tracker",
        "conversation_id",
        "previous_response_id",
    ):
        if doc.get(key) is not None:
            metadata[key] = doc[key]
    if isinstance(doc.get("session_items"), list):
        metadata["session_items"] = len(doc["session_items"])
    if context is not None:
        for key in ("approvals", "tool_invocations"):
            if context.get(key):
                metadata[key] = context[key]
    status, raw_status = SessionStatus.UNKNOWN, None
    current_step = doc.get("current_step")
    if isinstance(current_step, dict) and "interruption" in str(current_step.get("type", "")):
        status, raw_status = SessionStatus.RUNNING, str(current_step["type"])[:64]
        metadata["current_step"] = current_step

    session = Session(
        source_format=FORMAT_ID,
        format_variant=VARIANT_RUN_STATE,
        agent_name=current_agent,
        status=status,
        raw_status=raw_status,
        context=context.get("context") if context is not None else None,
        tokens=tokens,
        metadata=metadata,
    )
    return _finish(ctx, items, session=session, responses=(usages, responses, generated))


def _part(name: str) -> dict[str, Any]:
    return {"run_state_part": name}


def _agent_name(value: Any, path: str) -> str | None:
    if value is None:
        return None
    expect(value, (dict, str), path)
    if isinstance(value, str):
        return value
    return optional(value, "name", str, path)


def _run_item(run_item: Any, path: str, ctx: _Parse) -> _Item:
    expect(run_item, dict, path)
    item_type = optional(run_item, "type", str, path)
    extra: dict[str, Any] = {"run_state_part": "generated_items", "run_item_type": item_type}
    target = _agent_name(run_item.get("target_agent"), pointer_join(path, "target_agent"))
    if target:
        extra["handoff_to"] = target
    source = _agent_name(run_item.get("source_agent"), pointer_join(path, "source_agent"))
    if source:
        extra["handoff_from"] = source
    author = _agent_name(run_item.get("agent"), pointer_join(path, "agent"))
    raw_item = run_item.get("raw_item")
    if raw_item is None:
        ctx.warn("run_item_without_raw_item", f"run item {item_type!r} has no raw_item", path)
        raw_item = {"type": f"run_item:{item_type}", **run_item}
    return _Item(raw_item, pointer_join(path, "raw_item"), author=author, extra=extra)


def _response_usage(response: Any, path: str, ctx: _Parse) -> tuple[str | None, TokenUsage | None]:
    expect(response, dict, path)
    response_id = optional(response, "response_id", str, path)
    return response_id, _optional_usage(response.get("usage"), pointer_join(path, "usage"), ctx)


# --- tokens -------------------------------------------------------------------------------------


def _optional_usage(value: Any, path: str, ctx: _Parse) -> TokenUsage | None:
    """A usage object (or a list of them, summed); optional data, so an unreadable one is an
    ``unreadable_usage`` warning and no tokens (``common.read_usages``)."""
    usages = read_usages(value, path, ctx.warnings, lambda usage, at: _usage(usage, at, ctx))
    if not usages:
        return None
    return usages[0] if len(usages) == 1 else sum_token_usages(usages, path)


def _usage(usage: dict[str, Any], path: str, ctx: _Parse | None) -> TokenUsage:
    inputs = _details(
        usage.get("input_tokens_details"), pointer_join(path, "input_tokens_details"), ctx
    )
    outputs = _details(
        usage.get("output_tokens_details"), pointer_join(path, "output_tokens_details"), ctx
    )
    warnings = ctx.warnings if ctx is not None else []
    return TokenUsage(
        input=usage_count(usage.get("input_tokens"), pointer_join(path, "input_tokens"), warnings),
        output=usage_count(
            usage.get("output_tokens"), pointer_join(path, "output_tokens"), warnings
        ),
        total=usage_count(usage.get("total_tokens"), pointer_join(path, "total_tokens"), warnings),
        cached=inputs.get("cached_tokens"),
        cache_write=inputs.get("cache_write_tokens"),
        reasoning=outputs.get("reasoning_tokens"),
        source=TokenSource.REPORTED,
    )


def _details(value: Any, path: str, ctx: _Parse | None) -> dict[str, int]:
    """Token details: an object, a list of objects (RunState 0.24.0, summed), or a JSON string
    (``turn_usage`` columns). Only integer counts are read."""
    if value is None:
        return {}
    expect(value, (dict, list, str), path)
    if isinstance(value, str):
        parsed, error = parse_embedded_json(value, path)
        if error is not None or not isinstance(parsed, dict | list):
            if ctx is not None:
                ctx.warn("unparseable_token_details", "token details are not a JSON object", path)
            return {}
        value = parsed
    entries = (
        [(value, path)]
        if isinstance(value, dict)
        else [
            (expect(entry, dict, pointer_join(path, i)), pointer_join(path, i))
            for i, entry in enumerate(value)
        ]
    )
    totals: dict[str, int] = {}
    for entry, entry_path in entries:
        for key in ("cached_tokens", "cache_write_tokens", "reasoning_tokens"):
            count = usage_count(
                entry.get(key), pointer_join(entry_path, key), ctx.warnings if ctx else []
            )
            if count is not None:
                totals[key] = totals.get(key, 0) + count
    return totals


def _turn_usage(doc: dict[str, Any], ctx: _Parse) -> list[tuple[dict[str, Any], str, TokenUsage]]:
    # A row is one turn's usage: an unreadable one is a warning and an empty usage.
    return [
        (row, path, _optional_usage(row, path, ctx) or TokenUsage())
        for _, row, path in object_items(doc, "turn_usage")
    ]


# --- items --------------------------------------------------------------------------------------


def _finish(
    ctx: _Parse,
    items: list[_Item],
    *,
    session: Session,
    turn_usage: list[tuple[dict[str, Any], str, TokenUsage]] | None = None,
    responses: tuple[list[tuple[str | None, TokenUsage | None]], list[Any], tuple[int, int]]
    | None = None,
) -> ParsedSession:
    for item in items:
        ctx.messages.append(_message(item, len(ctx.messages), ctx))
    messages, pairing_warnings = pair_tool_calls(
        ctx.messages, heuristic=tool_output_looks_like_error
    )
    messages = [
        dataclasses.replace(m, tool_calls=(ctx.self_contained[m.seq],))
        if m.seq in ctx.self_contained
        else m
        for m in messages
    ]
    messages = _attribute_handoffs(messages)
    if responses is not None:
        messages = _attach_response_usage(messages, *responses)
    if not items:
        ctx.warn("no_messages", "the session has no items")

    steps: tuple[StepState, ...] = ()
    if turn_usage:
        steps = tuple(
            _turn_step(row, usage, order) for order, (row, _, usage) in enumerate(turn_usage)
        )
        session = dataclasses.replace(
            session, tokens=sum_token_usages((usage for _, _, usage in turn_usage), "/turn_usage")
        )
    session = dataclasses.replace(session, messages=tuple(messages), steps=steps)
    return ParsedSession(session=session, warnings=(*ctx.warnings, *pairing_warnings))


def _turn_step(row: dict[str, Any], usage: TokenUsage, order: int) -> StepState:
    turn = row.get("user_turn_number")
    state = {
        "user_turn_number": turn,
        "branch_id": row.get("branch_id"),
        "requests": row.get("requests"),
        "usage": {
            "input": usage.input,
            "output": usage.output,
            "total": usage.total,
            "cached": usage.cached,
            "cache_write": usage.cache_write,
            "reasoning": usage.reasoning,
        },
    }
    return StepState(
        name=f"turn {turn}" if turn is not None else f"turn #{order + 1}",
        order=order,
        state={k: v for k, v in state.items() if v is not None},
    )


def tool_output_looks_like_error(content: Any) -> bool:
    """The SDK's default tool error text (or the shared "Error: …" heuristic)."""
    if isinstance(content, list | dict):
        content = content_to_text(content)[0]
    if not isinstance(content, str):
        return False
    return content.strip().startswith(DEFAULT_TOOL_ERROR_TEXT[:40]) or looks_like_error(content)


def _message(item: _Item, seq: int, ctx: _Parse) -> Message:
    if item.unparseable is not None:
        return _other(
            seq,
            item,
            text=item.unparseable,
            raw_role="unparseable",
            extra={"message_data": item.unparseable},
        )
    raw = expect(item.value, dict, item.path)
    if is_encrypted_item(raw):
        ctx.warn(
            "encrypted_item",
            "encrypted session item (EncryptedSession); it cannot be read without the key",
            item.path,
        )
        envelope = {k: v for k, v in raw.items() if k != "payload"}
        payload = raw.get("payload")
        envelope["payload_length"] = len(payload) if isinstance(payload, str) else None
        return _other(
            seq, item, text="[encrypted]", raw_role="encrypted", extra={"encrypted": envelope}
        )
    item_type = optional(raw, "type", str, item.path)
    if item_type is None or item_type == "message":
        return _role_message(raw, seq, item, ctx)
    if item_type == "reasoning":
        return _with_turn(_reasoning(raw, seq, item), ctx)
    if item_type in _CALLS_WITH_OUTPUT:
        return _call(raw, item_type, seq, item, ctx)
    if item_type in _OUTPUT_TYPES:
        return _output(raw, item_type, seq, item, ctx)
    if item_type in _SELF_CONTAINED_CALLS:
        return _hosted_call(raw, item_type, seq, item, ctx)
    if item_type in _OTHER_ITEMS:
        role, text = _OTHER_ITEMS[item_type]
        return _with_turn(
            _item_message(
                item,
                seq=seq,
                role=role,
                content_text=text,
                external_id=_item_id(raw, item.path),
                raw_role=item_type if role is Role.OTHER else None,
                extra={**item.extra, "item_type": item_type, "item": raw},
            ),
            ctx,
        )
    ctx.warn(
        "unknown_item_type", f"unknown item type {item_type[:80]!r}; shown as other", item.path
    )
    return _other(
        seq, item, text="", raw_role=item_type[:80], extra={"item_type": item_type, "item": raw}
    )


def _item_message(item: _Item, *, seq: int, role: Role, **fields: Any) -> Message:
    """A message from one item, with the author and time the item's container gave it."""
    return Message(
        seq=seq,
        role=role,
        author=item.author,
        timestamp=item.timestamp,
        timestamp_source=TimestampSource.EXPLICIT if item.timestamp else TimestampSource.NONE,
        **fields,
    )


def _other(seq: int, item: _Item, *, text: str, raw_role: str, extra: dict[str, Any]) -> Message:
    return _item_message(
        item,
        seq=seq,
        role=Role.OTHER,
        content_text=text,
        raw_role=raw_role,
        extra={**item.extra, **extra},
    )


def _with_turn(message: Message, ctx: _Parse) -> Message:
    if message.role is Role.USER and message.extra.get("item_type") in (None, "message"):
        ctx.turn += 1
    if ctx.turn == 0:
        return message
    return dataclasses.replace(message, step=f"turn {ctx.turn}")


def _item_id(raw: dict[str, Any], path: str) -> str | None:
    return optional(raw, "id", str, path)


def _leftovers(raw: dict[str, Any], consumed: Iterable[str]) -> dict[str, Any]:
    skip = set(consumed)
    return {k: v for k, v in raw.items() if k not in skip and v is not None}


def _content(value: Any, path: str) -> tuple[str, Any]:
    """Text (text parts and refusals) and the parts list, for a message's ``content``."""
    expect(value, (str, list), path, nullable=True)
    if not isinstance(value, list):
        return value or "", None
    texts = []
    for index, part in enumerate(value):
        part_path = pointer_join(path, index)
        expect(part, dict, part_path)
        part_type = part.get("type")
        if part_type in _TEXT_PART_TYPES:
            texts.append(expect(part.get("text"), str, pointer_join(part_path, "text")))
        elif part_type == "refusal":
            texts.append(expect(part.get("refusal"), str, pointer_join(part_path, "refusal")))
    return "\n".join(texts), value


def _role_message(raw: dict[str, Any], seq: int, item: _Item, ctx: _Parse) -> Message:
    raw_role = required(raw, "role", str, item.path)
    role = _ROLES.get(raw_role)
    if role is None:
        ctx.warn("unknown_role", f"unknown role {raw_role[:80]!r}; shown as other", item.path)
        role = Role.OTHER
    text, parts = _content(raw.get("content"), pointer_join(item.path, "content"))
    extra = {**item.extra, **_leftovers(raw, ("role", "content", "id", "type"))}
    return _with_turn(
        _item_message(
            item,
            seq=seq,
            role=role,
            content_text=text,
            content_parts=parts,
            external_id=_item_id(raw, item.path),
            raw_role=raw_role if role.value != raw_role else None,
            extra=extra,
        ),
        ctx,
    )


def _reasoning(raw: dict[str, Any], seq: int, item: _Item) -> Message:
    summary_path = pointer_join(item.path, "summary")
    expect(raw.get("summary"), list, summary_path, nullable=True)
    summary_text, summary = _content(raw.get("summary"), summary_path)
    content_text, content = _content(raw.get("content"), pointer_join(item.path, "content"))
    extra = {
        **item.extra,
        "item_type": "reasoning",
        **_leftovers(raw, ("id", "type", "summary", "content")),
    }
    if content:
        extra["reasoning_content"] = content
    return _item_message(
        item,
        seq=seq,
        role=Role.ASSISTANT,
        content_text=summary_text or content_text,
        content_parts=summary,
        external_id=_item_id(raw, item.path),
        extra=extra,
    )


def _call_id(raw: dict[str, Any], path: str, seq: int, ctx: _Parse, *, keys=("call_id",)) -> str:
    for key in keys:
        value = optional(raw, key, str, path)
        if value:
            return value
    call_id = f"missing-call-id:{seq}"
    ctx.warn("tool_call_without_id", f"tool call without call_id; using {call_id!r}", path)
    return call_id


def _arguments(raw: dict[str, Any], path: str, ctx: _Parse) -> tuple[Any, str | None]:
    key = next((k for k in _ARGUMENT_KEYS if raw.get(k) is not None), None)
    if key is None:
        return None, None
    if key != "arguments":  # the other keys hold their value as it is
        return raw[key], None
    return parse_tool_arguments(
        raw[key], pointer_join(path, key), ctx.warnings, as_embedded_json=True
    )


def _call(raw: dict[str, Any], item_type: str, seq: int, item: _Item, ctx: _Parse) -> Message:
    call_id = _call_id(raw, item.path, seq, ctx)
    name = optional(raw, "name", str, item.path) or item_type
    arguments, error = _arguments(raw, item.path, ctx)
    if item.extra.get("run_item_type") == APPROVAL_ITEM and call_id in ctx.call_names:
        # A run paused for approval repeats the call it waits on: a marker, not a second call.
        return _with_turn(
            _item_message(
                item,
                seq=seq,
                role=Role.OTHER,
                content_text=f"awaiting approval: {name}",
                external_id=_item_id(raw, item.path),
                raw_role=APPROVAL_ITEM,
                extra={**item.extra, "awaiting_approval": call_id, "item": raw},
            ),
            ctx,
        )
    ctx.call_names[call_id] = name
    extra: dict[str, Any] = {
        **item.extra,
        "item_type": item_type,
        **_leftovers(raw, ("id", "type", "call_id", "name", *_ARGUMENT_KEYS)),
    }
    if item_type == "function_call" and name.startswith(HANDOFF_PREFIX):
        extra["handoff"] = True
    return _with_turn(
        _item_message(
            item,
            seq=seq,
            role=Role.ASSISTANT,
            external_id=_item_id(raw, item.path),
            tool_calls=(
                ToolCall(call_id=call_id, name=name, arguments=arguments, arguments_error=error),
            ),
            extra=extra,
        ),
        ctx,
    )


def _output(raw: dict[str, Any], item_type: str, seq: int, item: _Item, ctx: _Parse) -> Message:
    # local_shell_call_output names its call in `id` (the call's id), the others in `call_id`.
    keys = ("call_id", "id") if item_type == "local_shell_call_output" else ("call_id",)
    call_id = _call_id(raw, item.path, seq, ctx, keys=keys)
    output = raw.get("output")
    output_path = pointer_join(item.path, "output")
    expect(output, (str, list, dict), output_path, nullable=True)
    if isinstance(output, str) or output is None:
        text, parts = output or "", None
    else:
        text, parts = content_to_text(output)
    extra: dict[str, Any] = {
        **item.extra,
        "item_type": item_type,
        **_leftovers(raw, ("type", "call_id", "output", "status")),
    }
    handoff_to = _handoff_target(ctx.call_names.get(call_id), output)
    if handoff_to and "handoff_to" not in extra:
        extra["handoff_to"] = handoff_to
    status, source = None, StatusSource.NONE
    raw_status = optional(raw, "status", str, item.path)
    if raw_status is not None:
        extra["status"] = raw_status
        mapped = _ITEM_STATUSES.get(raw_status)
        if mapped in (ToolStatus.SUCCESS, ToolStatus.ERROR):
            status, source = mapped, StatusSource.EXPLICIT
    return _with_turn(
        _item_message(
            item,
            seq=seq,
            role=Role.TOOL,
            content_text=text,
            content_parts=parts,
            external_id=optional(raw, "id", str, item.path)
            if item_type != "local_shell_call_output"
            else None,
            tool_call_id=call_id,
            tool_status=status,
            tool_status_source=source,
            extra=extra,
        ),
        ctx,
    )


def _handoff_target(call_name: str | None, output: Any) -> str | None:
    if not call_name or not call_name.startswith(HANDOFF_PREFIX):
        return None
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except (ValueError, RecursionError):
            return None
    if isinstance(output, dict) and isinstance(output.get("assistant"), str):
        return output["assistant"]
    return None


def _hosted_call(
    raw: dict[str, Any], item_type: str, seq: int, item: _Item, ctx: _Parse
) -> Message:
    call_id = _call_id(raw, item.path, seq, ctx, keys=("call_id", "id"))
    name = optional(raw, "name", str, item.path) or item_type
    arguments, error = _arguments(raw, item.path, ctx)
    result_key = next((k for k in _RESULT_KEYS if raw.get(k) is not None), None)
    result = raw.get(result_key) if result_key else None
    raw_status = optional(raw, "status", str, item.path)
    status = _ITEM_STATUSES.get(raw_status or "", ToolStatus.UNKNOWN)
    source = StatusSource.EXPLICIT if raw_status in _ITEM_STATUSES else StatusSource.NONE
    if raw_status is not None and raw_status not in _ITEM_STATUSES:
        ctx.warn(
            "unknown_tool_status", f"unknown {item_type} status {raw_status[:80]!r}", item.path
        )
    if raw.get("error") is not None:
        status, source = ToolStatus.ERROR, StatusSource.EXPLICIT
        result = {"error": raw["error"], "output": result} if result is not None else raw["error"]
    ctx.self_contained[seq] = ToolCall(
        call_id=call_id,
        name=name,
        arguments=arguments,
        arguments_error=error,
        result_content=result,
        result_seq=None if status is ToolStatus.PENDING else seq,
        status=status,
        status_source=source,
    )
    return _with_turn(
        _item_message(
            item,
            seq=seq,
            role=Role.ASSISTANT,
            external_id=_item_id(raw, item.path),
            extra={
                **item.extra,
                "item_type": item_type,
                "hosted_tool": True,
                **_leftovers(
                    raw,
                    ("id", "type", "call_id", "name", "error", result_key or "", *_ARGUMENT_KEYS),
                ),
            },
        ),
        ctx,
    )


def _attribute_handoffs(messages: list[Message]) -> list[Message]:
    """Assistant items after a handoff, within the same turn, belong to the target agent."""
    current: str | None = None
    result = []
    for message in messages:
        if message.role is Role.USER:
            current = None
        elif message.role is Role.TOOL and message.extra.get("handoff_to"):
            current = message.extra["handoff_to"]
        elif message.role is Role.ASSISTANT and message.author is None and current:
            message = dataclasses.replace(
                message, author=current, extra={**message.extra, "author_source": "handoff"}
            )
        result.append(message)
    return result


def _attach_response_usage(
    messages: list[Message],
    usages: list[tuple[str | None, TokenUsage | None]],
    responses: list[Any],
    generated: tuple[int, int],
) -> list[Message]:
    """Each model response's usage on the first generated message it produced (by item id)."""
    first, end = generated
    by_id = {m.external_id: m.seq for m in messages[first:end] if m.external_id}
    result = list(messages)
    for (_, usage), response in zip(usages, responses, strict=True):
        output = response.get("output") if isinstance(response, dict) else None
        if usage is None or not isinstance(output, list):
            continue
        seqs = [by_id[o["id"]] for o in output if isinstance(o, dict) and o.get("id") in by_id]
        if seqs:
            seq = min(seqs)
            result[seq] = dataclasses.replace(result[seq], tokens=usage)
    return result


# ------------------------------------------------------------------------------- splitting


def split_sessions(doc: Any) -> list[tuple[str, Any]] | None:
    """A rule-5 dump holding several sessions as one single-session dump per session, in the
    same shape (all its rows, every other table kept), as ``(session id, document)``.

    None when ``doc`` is not such a dump (or names one session): parse it as it is."""
    if not looks_like_dump(doc):
        return None
    tables = ("agent_sessions", "agent_messages", "message_structure", "turn_usage")
    if any(doc.get(t) is not None and not isinstance(doc[t], list) for t in tables):
        return None
    ids = dump_session_ids(doc)
    if len(ids) < 2:
        return None
    parts = []
    for session_id in ids:
        part = dict(doc)
        for table in tables:
            if isinstance(doc.get(table), list):
                part[table] = [
                    row
                    for row in doc[table]
                    if isinstance(row, dict) and row.get("session_id") == session_id
                ]
        parts.append((session_id, part))
    return parts


# ----------------------------------------------------------------------------------- adapter


ADAPTER = ModuleAdapter(FORMAT_ID, RULES, parse)
