"""@falai/agent (TypeScript) sessions onto the canonical session.

``@falai/agent`` is not on the public npm registry; this adapter follows its source (GitHub
falai-dev/agent, 0.7 to 2.6) and the hand-made fixtures in ``tests/fixtures/falai/``. Shapes
recognised (detection rule 10), reported as ``format_variant``:

- ``session-state-2.x``: a ``SessionState`` (``JSON.stringify``, dates as ISO strings):
  ``{id, currentFlow?{id, title, enteredAt}, currentStep?{id, description?, enteredAt}, data{...},
  flowHistory[{flowId, enteredAt, exitedAt?, completed}], pendingDirective?, signals?,
  history?[HistoryItem], metadata{createdAt, lastUpdatedAt, ...}, version?}``;
- ``session-state-1.x``: the same with ``currentRoute``, ``routeHistory[{routeId, ...}]`` and
  ``pendingTransition``;
- ``session-state-0.9``: 0.7-0.9, ``data`` (the current route's) plus ``dataByRoute{route: {...}}``
  and no ``history``;
- ``agent-session-row``: a persisted ``AgentSession`` row (Prisma, or the SQLite adapter's
  snake_case columns with ``collected_data`` as JSON text): ``{id, userId?, agentName?, status,
  currentFlow?|currentRoute?, currentStep?, collectedData{data, flowHistory|routeHistory,
  history?, currentFlowTitle?, currentStepDescription?, metadata, ...}, version?, messageCount,
  lastMessageAt?, completedAt?, createdAt, updatedAt}``;
- ``export``: ``{session: <AgentSession row>, messages: [<AgentMessage row>...]}``;
- ``message-rows``: the ``AgentMessage`` rows alone: ``{id, sessionId, userId?, role
  user|assistant|agent|system, content, flow?|route?, step?, toolCalls?[{toolName, arguments}],
  event?{kind message|tool|status, source, data, timestamp?, id?}, createdAt}``.

Quirks of the format, and what this adapter does about them:

- Messages come from the rows when the document has rows (an export's ``collectedData.history``
  then stays in the raw document; ``metadata["collected_history_messages"]`` says how long it
  is); otherwise from ``history`` (SessionState or ``collectedData``). 0.9 states have none.
- ``history`` items have no ids of their own, no timestamps, no usage and no tool status. Tool
  calls (``arguments`` an object) pair with ``role: "tool"`` items by ``tool_call_id``.
- Rows are ordered by ``createdAt`` (a database export has no other order): when every row has
  a readable ``createdAt`` and the document is not in that order, the rows are sorted stably and
  a warning says so. Each row's ``createdAt`` is its explicit timestamp; ``flow`` (1.x ``route``)
  and ``step`` attribute it.
- Tool calls in rows have **no ids**: an assistant row's ``toolCalls[i]`` gets the synthetic id
  ``<row id>/<i>``. A tool execution is a ``role: "agent"`` row whose ``event.data.tool_calls[]``
  = ``{tool_id, arguments, result{data, meta?}}``; each entry becomes one tool message, paired
  with the earliest unanswered preceding call whose ``toolName == tool_id``. That pairing is a
  heuristic: such messages carry ``extra["tool_pairing"] = "heuristic"``. A tool execution no
  unanswered call of its name announced is a call of its own (id ``<row id>/call``, name
  ``tool_id``, the execution's arguments) answered by that message (``extra["tool_pairing"] =
  "own_call"``, a ``tool_execution_without_call`` warning): tool work is never dropped, and it
  is counted (its ``result``, ``meta.error`` included, is the call's result). Other ``agent`` rows
  (``event.kind`` status/message) are ``other`` messages with the event in ``extra["event"]``.
- Tool status is never recorded: a result is ``error`` when ``result.meta.error`` is set or its
  text reads like one ("Error: ..."), else ``success``, both with source ``heuristic``.
- Status (rows only): active → running, completed, abandoned; a SessionState has none
  (``unknown``). ``completedAt``, ``lastMessageAt``, ``messageCount`` go to ``Session.metadata``.
- ``version`` is a compare-and-swap counter shared by the state, the row and the export of one
  session, so it is kept in ``metadata["version"]`` and *not* used as the ingest revision (the
  three shapes of one version would conflict).
- Step state: ``Session.state`` = the collected ``data``; ``steps`` = one level-1 entry per
  ``flowHistory``/``routeHistory`` entry (``enteredAt``/``exitedAt``/``completed``, plus the
  route's ``dataByRoute`` data in 0.9), then the current step at level 2 (``is_active``).
  ``pendingDirective``/``pendingTransition``, ``signals`` and the app's ``metadata`` go to
  ``Session.metadata``.
- No tokens, no model, no logs, no expiry (a Redis ``sessionTTL`` is not in the document).
- Unknown keys are kept: row keys in ``Message.extra``, session keys in
  ``metadata["row_extra"]``/``metadata["state_extra"]``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
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
    CHAT_ROLES,
    map_role,
    parse_tool_arguments,
    refuse_json_constant,
    result_looks_like_error,
    tool_call_objects,
)
from sessions_api.formats.pairing import looks_like_error, pair_tool_calls

FORMAT_ID = "falai"
VARIANT_STATE_2 = "session-state-2.x"
VARIANT_STATE_1 = "session-state-1.x"
VARIANT_STATE_09 = "session-state-0.9"
VARIANT_ROW = "agent-session-row"
VARIANT_EXPORT = "export"
VARIANT_ROWS = "message-rows"

_ROW_ROLES = {"system": Role.SYSTEM, "user": Role.USER, "assistant": Role.ASSISTANT}
_STATUSES = {
    "active": SessionStatus.RUNNING,
    "completed": SessionStatus.COMPLETED,
    "abandoned": SessionStatus.ABANDONED,
}
# Row/column values the SQLite adapter stores as JSON text.
_JSON_TEXT_KEYS = frozenset(
    {"collectedData", "toolCalls", "event", "pendingDirective", "signals", "metadata"}
)
_HISTORY_ITEM_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})
_ROW_KEYS = frozenset(
    {
        "id",
        "sessionId",
        "userId",
        "role",
        "content",
        "flow",
        "route",
        "step",
        "toolCalls",
        "event",
        "createdAt",
    }
)
_SESSION_ROW_KEYS = frozenset(
    {
        "id",
        "userId",
        "agentName",
        "status",
        "currentFlow",
        "currentRoute",
        "currentStep",
        "collectedData",
        "pendingDirective",
        "signals",
        "version",
        "messageCount",
        "lastMessageAt",
        "completedAt",
        "createdAt",
        "updatedAt",
    }
)
_STATE_KEYS = frozenset(
    {
        "id",
        "currentFlow",
        "currentRoute",
        "currentStep",
        "data",
        "dataByRoute",
        "flowHistory",
        "routeHistory",
        "pendingDirective",
        "pendingTransition",
        "signals",
        "history",
        "metadata",
        "version",
        "currentFlowTitle",
        "currentStepDescription",
        "schemaVersion",
    }
)
_SNAKE = re.compile(r"_([a-z])")
PAIRING_HEURISTIC = "heuristic (toolName == tool_id)"


# --------------------------------------------------------------------------------- detection


def _is_session_row(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and ("collectedData" in doc or "collected_data" in doc)
        and "status" in doc
    )


def _is_export(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("session"), dict)
        and ("collectedData" in doc["session"] or "collected_data" in doc["session"])
        and "messages" in doc
    )


def _state_variant(doc: Any) -> str | None:
    if not isinstance(doc, dict) or "data" not in doc:
        return None
    if "dataByRoute" in doc:
        return VARIANT_STATE_09
    if "flowHistory" in doc:
        return VARIANT_STATE_2
    if "routeHistory" in doc:
        return VARIANT_STATE_1
    return None


def _is_message_rows(doc: Any) -> bool:
    return (
        isinstance(doc, list)
        and bool(doc)
        and all(
            isinstance(row, dict) and all(k in row for k in ("sessionId", "role", "createdAt"))
            for row in doc
        )
    )


RULES: tuple[DetectionRule, ...] = (
    DetectionRule(
        number=10,
        format_id=FORMAT_ID,
        description="@falai/agent AgentSession row (collectedData + status)",
        matches=_is_session_row,
        variant=VARIANT_ROW,
    ),
    DetectionRule(
        number=10,
        format_id=FORMAT_ID,
        description="@falai/agent export ({session: {collectedData...}, messages})",
        matches=_is_export,
        variant=VARIANT_EXPORT,
    ),
    *(
        DetectionRule(
            number=10,
            format_id=FORMAT_ID,
            description=f"@falai/agent SessionState {label} (data + {key})",
            matches=lambda doc, variant=variant: _state_variant(doc) == variant,
            variant=variant,
        )
        for variant, label, key in (
            (VARIANT_STATE_2, "2.x", "flowHistory"),
            (VARIANT_STATE_1, "1.x", "routeHistory"),
            (VARIANT_STATE_09, "0.7-0.9", "dataByRoute"),
        )
    ),
    DetectionRule(
        number=10,
        format_id=FORMAT_ID,
        description="@falai/agent AgentMessage rows (list of {sessionId, role, createdAt})",
        matches=_is_message_rows,
        variant=VARIANT_ROWS,
    ),
)


def variant_of(doc: Any) -> str:
    """The shape; for a forced parse that rule 10 would not match, the closest container."""
    if isinstance(doc, list):
        return VARIANT_ROWS
    if _is_export(doc) or (isinstance(doc, dict) and "session" in doc and "messages" in doc):
        return VARIANT_EXPORT
    if _is_session_row(doc):
        return VARIANT_ROW
    return _state_variant(doc) or VARIANT_STATE_2


# ----------------------------------------------------------------------------------- parsing


@dataclass
class _Row:
    """A row with camelCase keys, and the document's own key for each (for error paths)."""

    values: dict[str, Any]
    keys: dict[str, str]
    path: str

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def at(self, key: str) -> str:
        return pointer_join(self.path, self.keys.get(key, key))

    def optional(self, key: str, kind: type | tuple[type, ...]) -> Any:
        value = self.values.get(key)
        if value is None:
            return None
        return expect(value, kind, self.at(key))


def _camel_row(raw: Any, path: str, ctx: ParseContext) -> _Row:
    """A row as camelCase keys (the SQLite adapter writes snake_case columns, JSON as text)."""
    expect(raw, dict, path)
    values: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for key, value in raw.items():
        camel = _SNAKE.sub(lambda m: m.group(1).upper(), key)
        if camel in values:
            ctx.warn("duplicate_column", f"{key!r} repeats {keys[camel]!r}; ignored", path)
            continue
        if camel in _JSON_TEXT_KEYS and isinstance(value, str):
            value = _json_text(value, pointer_join(path, key), ctx)
        values[camel] = value
        keys[camel] = key
    return _Row(values=values, keys=keys, path=path)


def _json_text(value: str, path: str, ctx: ParseContext) -> Any:
    try:
        return json.loads(value, parse_constant=refuse_json_constant)
    except (ValueError, RecursionError) as exc:
        ctx.warn("unparseable_json_column", f"not JSON ({str(exc)[:120]}); ignored", path)
        return None


def parse(doc: Any) -> ParsedSession:
    expect(doc, (dict, list), "")
    variant = variant_of(doc)
    ctx = ParseContext()
    session_row: _Row | None = None
    rows: Any = None
    rows_path = ""
    state: dict[str, Any]
    state_path: str
    if variant == VARIANT_ROWS:
        rows, rows_path = doc, ""
        state, state_path = {}, ""
    elif variant == VARIANT_EXPORT:
        session_row = _camel_row(doc.get("session"), "/session", ctx)
        if doc.get("messages") is None:
            raise InvalidDocument(
                "/messages: required (the session's AgentMessage rows)",
                path="/messages",
                code="missing_field",
            )
        rows, rows_path = doc["messages"], "/messages"
        state, state_path = _collected(session_row, ctx)
    elif variant == VARIANT_ROW:
        session_row = _camel_row(doc, "", ctx)
        state, state_path = _collected(session_row, ctx)
    else:
        state, state_path = doc, ""

    fields = _session_fields(session_row, state, state_path, ctx)
    metadata: dict[str, Any] = fields.pop("metadata")
    if variant == VARIANT_EXPORT:
        extra = {k: v for k, v in doc.items() if k not in ("session", "messages")}
        if extra:
            metadata["export_extra"] = extra

    if rows is not None:
        messages, row_ids = _row_messages(rows, rows_path, ctx)
        history = state.get("history")
        if isinstance(history, list):
            metadata["collected_history_messages"] = len(history)
        metadata["tool_pairing"] = PAIRING_HEURISTIC
        fields["external_id"] = fields.get("external_id") or _rows_session_id(row_ids, ctx)
        if fields.get("user_id") is None:
            fields["user_id"] = row_ids.get("user")
        row_session_ids = row_ids["ids"]
        if row_session_ids and fields["external_id"] not in row_session_ids:
            ctx.warn(
                "rows_of_another_session",
                "the message rows name another session id than the session row",
                rows_path,
            )
    else:
        messages = _history_messages(state, state_path, ctx)

    if fields.get("external_id") is None:
        raise InvalidDocument(
            "missing session id: a falai document needs `id` (or rows with `sessionId`)",
            path="/id",
            code="missing_session_id",
        )
    paired, pairing_warnings = pair_tool_calls(messages, heuristic=_result_looks_like_error)
    session = Session(
        source_format=FORMAT_ID,
        format_variant=variant,
        messages=tuple(paired),
        steps=_steps(session_row, state, state_path, ctx),
        metadata=metadata,
        **fields,
    )
    return ParsedSession(session=session, warnings=(*ctx.warnings, *pairing_warnings))


def _collected(row: _Row, ctx: ParseContext) -> tuple[dict[str, Any], str]:
    value = row.get("collectedData")
    if value is None:
        ctx.warn(
            "no_collected_data", "the session row has no collectedData", row.at("collectedData")
        )
        return {}, row.at("collectedData")
    return expect(value, dict, row.at("collectedData")), row.at("collectedData")


# ----------------------------------------------------------------------------------- session


def _session_fields(
    row: _Row | None, state: dict[str, Any], state_path: str, ctx: ParseContext
) -> dict[str, Any]:
    state_meta = optional(state, "metadata", dict, state_path) or {}
    meta_path = pointer_join(state_path, "metadata")
    metadata: dict[str, Any] = {}
    app_metadata = {k: v for k, v in state_meta.items() if k not in ("createdAt", "lastUpdatedAt")}
    if app_metadata:
        metadata["app_metadata"] = app_metadata
    for key in (
        "pendingDirective",
        "pendingTransition",
        "signals",
        "version",
        "schemaVersion",
        "currentFlowTitle",
        "currentStepDescription",
        "dataByRoute",
    ):
        if state.get(key) is not None:
            metadata[_snake(key)] = state[key]
    state_extra = {
        k: v
        for k, v in state.items()
        if k not in _STATE_KEYS and v is not None and not (row is None and k == "status")
    }
    if state_extra:
        metadata["state_extra"] = state_extra

    created_at = _time(state_meta.get("createdAt"), pointer_join(meta_path, "createdAt"), ctx)
    updated_at = _time(
        state_meta.get("lastUpdatedAt"), pointer_join(meta_path, "lastUpdatedAt"), ctx
    )
    fields: dict[str, Any] = {
        "external_id": _id(state.get("id"), pointer_join(state_path, "id")),
        "status": SessionStatus.UNKNOWN,
        "raw_status": None,
        "state": optional(state, "data", dict, state_path),
    }
    if row is not None:
        for key in ("version", "messageCount", "lastMessageAt", "completedAt", "signals"):
            if row.get(key) is not None:
                metadata[_snake(key)] = row.get(key)
        if row.get("pendingDirective") is not None:
            metadata["pending_directive"] = row.get("pendingDirective")
        extra = {k: v for k, v in row.values.items() if k not in _SESSION_ROW_KEYS}
        if extra:
            metadata["row_extra"] = extra
        row_id = _id(row.get("id"), row.at("id"))
        if row_id is not None and fields["external_id"] not in (None, row_id):
            ctx.warn(
                "id_mismatch", "collectedData names another id; using the row id", row.at("id")
            )
        fields["external_id"] = row_id or fields["external_id"]
        fields["user_id"] = row.optional("userId", str)
        fields["agent_name"] = row.optional("agentName", str)
        fields["status"], fields["raw_status"] = _status(row, ctx)
        created_at = _time(row.get("createdAt"), row.at("createdAt"), ctx) or created_at
        updated_at = _time(row.get("updatedAt"), row.at("updatedAt"), ctx) or updated_at
        for key in ("lastMessageAt", "completedAt"):
            _time(row.get(key), row.at(key), ctx)  # type-checked, kept verbatim in metadata
    fields["created_at"] = created_at
    fields["updated_at"] = updated_at
    fields["metadata"] = metadata
    return fields


def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)


def _id(value: Any, path: str) -> str | None:
    expect(value, (str, int), path, nullable=True)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value)


def _time(value: Any, path: str, ctx: ParseContext) -> datetime | None:
    if value is None:
        return None
    expect(value, (str, int, float, dict), path)
    return parse_timestamp(value, path, ctx.warnings)


def _status(row: _Row, ctx: ParseContext) -> tuple[SessionStatus, str | None]:
    raw = row.optional("status", str)
    if raw is None:
        ctx.warn("missing_status", "the session row has no status", row.at("status"))
        return SessionStatus.UNKNOWN, None
    status = _STATUSES.get(raw)
    if status is None:
        ctx.warn("unknown_status", f"unknown status {raw[:80]!r}; kept as raw", row.at("status"))
        return SessionStatus.UNKNOWN, raw
    return status, raw


# ----------------------------------------------------------------------------------- history


def _history_messages(state: dict[str, Any], path: str, ctx: ParseContext) -> list[Message]:
    history = state.get("history")
    if history is None:
        return []
    messages = []
    for index, item, item_path in enumerate_array(history, pointer_join(path, "history")):
        raw = expect(item, dict, item_path)
        raw_role = required(raw, "role", str, item_path)
        role = map_role(raw_role, CHAT_ROLES, item_path, ctx.warnings)
        text, parts = content_to_text(raw.get("content"))
        extra = {k: v for k, v in raw.items() if k not in _HISTORY_ITEM_KEYS and v is not None}
        timestamp = None
        if "timestamp" in extra:  # HistoryMessage (an input type) may carry one
            timestamp = _time(extra.pop("timestamp"), f"{item_path}/timestamp", ctx)
        tool_call_id = optional(raw, "tool_call_id", str, item_path)
        if role is Role.TOOL and tool_call_id is None:
            ctx.warn("tool_result_without_call_id", "tool item has no tool_call_id", item_path)
        messages.append(
            Message(
                seq=index,
                role=role,
                content_text=text,
                content_parts=parts,
                author=optional(raw, "name", str, item_path),
                timestamp=timestamp,
                timestamp_source=TimestampSource.EXPLICIT if timestamp else TimestampSource.NONE,
                tool_calls=_history_tool_calls(raw, index, item_path, ctx),
                tool_call_id=tool_call_id,
                raw_role=raw_role if role is Role.OTHER else None,
                extra=extra,
            )
        )
    return messages


def _history_tool_calls(
    raw: dict[str, Any], seq: int, path: str, ctx: ParseContext
) -> tuple[ToolCall, ...]:
    calls = []
    for call, item_path, call_id in tool_call_objects(
        raw.get("tool_calls"), seq, f"{path}/tool_calls", ctx.warnings
    ):
        arguments, error = _arguments(call.get("arguments"), f"{item_path}/arguments", ctx)
        calls.append(
            ToolCall(
                call_id=call_id,
                name=optional(call, "name", str, item_path) or "",
                arguments=arguments,
                arguments_error=error,
            )
        )
    return tuple(calls)


def _arguments(value: Any, path: str, ctx: ParseContext) -> tuple[Any, str | None]:
    """falai writes arguments as an object; a JSON string is parsed, anything else kept (and,
    unlike the chat formats, a blank string is unparseable text)."""
    return parse_tool_arguments(value, path, ctx.warnings, check_type=False, blank_is_none=False)


def _result_looks_like_error(content: Any) -> bool:
    """The shared text heuristic, plus falai's ``{data, meta{error}}`` results and ``error``
    keys in object results."""
    if isinstance(content, dict):
        meta = content.get("meta")
        if isinstance(meta, dict) and meta.get("error"):
            return True
        if content.get("error"):
            return True
        data = content.get("data")
        return isinstance(data, str) and looks_like_error(data)
    return result_looks_like_error(content)


# -------------------------------------------------------------------------------------- rows


def _row_messages(value: Any, path: str, ctx: ParseContext) -> tuple[list[Message], dict[str, Any]]:
    rows = [_camel_row(item, item_path, ctx) for _, item, item_path in enumerate_array(value, path)]
    times = [_time(row.get("createdAt"), row.at("createdAt"), ctx) for row in rows]
    order = list(range(len(rows)))
    if rows and all(t is not None for t in times):
        by_time = sorted(order, key=lambda i: times[i])  # type: ignore[arg-type, return-value]
        if by_time != order:
            ctx.warn(
                "rows_reordered",
                "message rows were not in createdAt order; sorted by createdAt",
                path,
            )
            order = by_time
    session_ids: dict[str, None] = {}
    users: dict[str, None] = {}
    messages: list[Message] = []
    pending: list[tuple[str, str]] = []  # (call id, tool name) still waiting for a result
    for index in order:
        row, timestamp = rows[index], times[index]
        session_id = _id(row.get("sessionId"), row.at("sessionId"))
        if session_id is not None:
            session_ids.setdefault(session_id, None)
        user = row.optional("userId", str)
        if user:
            users.setdefault(user, None)
        messages.extend(_row_to_messages(row, timestamp, len(messages), pending, ctx))
    return messages, {
        "ids": list(session_ids),
        "user": next(iter(users)) if len(users) == 1 else None,
    }


def _rows_session_id(row_ids: dict[str, Any], ctx: ParseContext) -> str | None:
    ids = row_ids["ids"]
    if len(ids) > 1:
        ctx.warn(
            "several_session_ids",
            f"the rows name {len(ids)} session ids; using the first, {ids[0]!r}",
            "",
        )
    return ids[0] if ids else None


def _row_to_messages(
    row: _Row,
    timestamp: datetime | None,
    first_seq: int,
    pending: list[tuple[str, str]],
    ctx: ParseContext,
) -> list[Message]:
    raw_role = row.get("role")
    if raw_role is None:
        raise InvalidDocument(
            f"{row.at('role')}: required", path=row.at("role"), code="missing_field"
        )
    expect(raw_role, str, row.at("role"))
    content = row.optional("content", (str, list, dict))
    text, parts = content_to_text(content)
    row_id = _id(row.get("id"), row.at("id"))
    common: dict[str, Any] = {
        "timestamp": timestamp,
        "timestamp_source": TimestampSource.EXPLICIT if timestamp else TimestampSource.NONE,
        "flow": row.optional("flow", str) or row.optional("route", str),
        "step": row.optional("step", str),
    }
    extra = {k: v for k, v in row.values.items() if k not in _ROW_KEYS and v is not None}
    event = row.optional("event", dict)

    if raw_role == "agent" and event is not None:
        executions = _tool_executions(event, row)
        if executions is not None:
            return _tool_messages(
                row, row_id, executions, event, text, extra, common, first_seq, pending, ctx
            )
    role = _ROW_ROLES.get(raw_role, Role.OTHER)
    if role is Role.OTHER and raw_role != "agent":
        ctx.warn("unknown_role", f"unknown role {raw_role[:80]!r}; shown as 'other'", row.path)
    if event is not None:
        extra["event"] = event
    calls = _row_tool_calls(row, row_id or str(first_seq), ctx)
    pending.extend((call.call_id, call.name) for call in calls)
    return [
        Message(
            seq=first_seq,
            role=role,
            content_text=text,
            content_parts=parts,
            external_id=row_id,
            tool_calls=calls,
            raw_role=raw_role if role is Role.OTHER else None,
            extra=extra,
            **common,
        )
    ]


def _tool_executions(event: dict[str, Any], row: _Row) -> list[Any] | None:
    if event.get("kind") != "tool":
        return None
    data = event.get("data")
    if data is None:
        return None
    expect(data, dict, pointer_join(row.at("event"), "data"))
    executions = data.get("tool_calls")
    if executions is None:
        return None
    return expect(executions, list, pointer_join(row.at("event"), "data", "tool_calls"))


def _tool_messages(
    row: _Row,
    row_id: str | None,
    executions: list[Any],
    event: dict[str, Any],
    text: str,
    extra: dict[str, Any],
    common: dict[str, Any],
    first_seq: int,
    pending: list[tuple[str, str]],
    ctx: ParseContext,
) -> list[Message]:
    """One tool message per ``event.data.tool_calls[]`` entry, paired by tool name."""
    base = pointer_join(row.at("event"), "data", "tool_calls")
    event_rest = {k: v for k, v in event.items() if k != "data"}
    data_rest = {k: v for k, v in event["data"].items() if k != "tool_calls"}
    messages = []
    for index, item in enumerate(executions):
        item_path = pointer_join(base, index)
        execution = expect(item, dict, item_path)
        tool_id = optional(execution, "tool_id", str, item_path)
        result = execution.get("result")
        external_id = _execution_id(row_id, index, len(executions))
        call_id = _claim(pending, tool_id)
        own_calls: tuple[ToolCall, ...] = ()
        pairing = "heuristic"
        if call_id is None:
            # Tool work no assistant toolCalls entry announced (or one of another name) is a
            # call of its own, answered by this execution: never dropped, always counted.
            call_id = f"{external_id or first_seq + index}/call"
            arguments, error = _arguments(execution.get("arguments"), f"{item_path}/arguments", ctx)
            own_calls = (
                ToolCall(
                    call_id=call_id, name=tool_id or "", arguments=arguments, arguments_error=error
                ),
            )
            pairing = "own_call"
            ctx.warn(
                "tool_execution_without_call",
                f"tool execution {tool_id!r} follows no assistant toolCalls entry of that name; "
                "shown as a call of its own",
                item_path,
            )
        status = ToolStatus.ERROR if _result_looks_like_error(result) else ToolStatus.SUCCESS
        message_extra = {
            **extra,
            "tool_pairing": pairing,
            "tool_execution": {k: v for k, v in execution.items() if k != "result"},
            "event": {**event_rest, **({"data": data_rest} if data_rest else {})},
        }
        result_text = "" if index else text
        if isinstance(result, str):
            result_text, result = result, None
        messages.append(
            Message(
                seq=first_seq + index,
                role=Role.TOOL,
                content_text=result_text,
                content_parts=result,
                external_id=external_id,
                author=tool_id,
                tool_calls=own_calls,
                tool_call_id=call_id,
                tool_status=status,
                tool_status_source=StatusSource.HEURISTIC,
                raw_role="agent",
                extra=message_extra,
                **common,
            )
        )
    return messages


def _execution_id(row_id: str | None, index: int, count: int) -> str | None:
    if row_id is None or count == 1:
        return row_id
    return f"{row_id}#{index}"


def _claim(pending: list[tuple[str, str]], tool_id: str | None) -> str | None:
    for index, (call_id, name) in enumerate(pending):
        if name == tool_id:
            del pending[index]
            return call_id
    return None


def _row_tool_calls(row: _Row, row_key: str, ctx: ParseContext) -> tuple[ToolCall, ...]:
    value = row.get("toolCalls")
    if value is None:
        return ()
    calls = []
    for index, item, item_path in enumerate_array(value, row.at("toolCalls")):
        call = expect(item, dict, item_path)
        name = optional(call, "toolName", str, item_path) or ""
        if not name:
            ctx.warn(
                "missing_tool_name", "tool call has no toolName; it cannot be paired", item_path
            )
        arguments, error = _arguments(call.get("arguments"), f"{item_path}/arguments", ctx)
        calls.append(
            ToolCall(
                call_id=f"{row_key}/{index}",
                name=name,
                arguments=arguments,
                arguments_error=error,
            )
        )
    return tuple(calls)


# ------------------------------------------------------------------------------------- steps


def _ref(value: Any, path: str) -> tuple[str | None, dict[str, Any]]:
    """A current flow/step: an object ``{id, ...}`` (SessionState) or a bare id (rows)."""
    if value is None:
        return None, {}
    expect(value, (str, dict), path)
    if isinstance(value, str):
        return value, {}
    ref_id = optional(value, "id", str, path)
    return ref_id, {k: v for k, v in value.items() if k != "id"}


def _steps(
    row: _Row | None, state: dict[str, Any], state_path: str, ctx: ParseContext
) -> tuple[StepState, ...]:
    flow_key = "currentFlow" if state.get("currentFlow") is not None else "currentRoute"
    flow_id, flow_info = _ref(state.get(flow_key), pointer_join(state_path, flow_key))
    step_id, step_info = _ref(state.get("currentStep"), pointer_join(state_path, "currentStep"))
    if row is not None:
        row_flow_key = "currentFlow" if row.get("currentFlow") is not None else "currentRoute"
        row_flow = row.optional(row_flow_key, str)
        flow_id = row_flow or flow_id
        step_id = row.optional("currentStep", str) or step_id
    if isinstance(state.get("currentFlowTitle"), str):
        flow_info.setdefault("title", state["currentFlowTitle"])
    if isinstance(state.get("currentStepDescription"), str):
        step_info.setdefault("description", state["currentStepDescription"])
    by_route = optional(state, "dataByRoute", dict, state_path) or {}

    history_key = "flowHistory" if state.get("flowHistory") is not None else "routeHistory"
    id_key = "flowId" if history_key == "flowHistory" else "routeId"
    steps: list[StepState] = []
    seen_current = False
    for _, item, item_path in enumerate_array(
        state.get(history_key) or [], pointer_join(state_path, history_key)
    ):
        entry = expect(item, dict, item_path)
        name = expect(entry.get(id_key), str, f"{item_path}/{id_key}")
        entered = _time(entry.get("enteredAt"), f"{item_path}/enteredAt", ctx)
        exited = _time(entry.get("exitedAt"), f"{item_path}/exitedAt", ctx)
        is_current = name == flow_id and entry.get("exitedAt") is None
        seen_current = seen_current or is_current
        step_state = {k: v for k, v in entry.items() if k != id_key}
        if name in by_route:
            step_state["data"] = by_route[name]
        if is_current and flow_info:
            step_state["current"] = flow_info
        steps.append(
            StepState(
                name=name,
                order=len(steps),
                state=step_state,
                is_active=is_current,
                saved_at=exited or entered,
                level=1,
                flow=name,
            )
        )
    if flow_id is not None and not seen_current:
        flow_state: dict[str, Any] = {"current": flow_info}
        if flow_id in by_route:
            flow_state["data"] = by_route[flow_id]
        entered_path = pointer_join(state_path, flow_key, "enteredAt")
        steps.append(
            StepState(
                name=flow_id,
                order=len(steps),
                state=flow_state,
                is_active=True,
                saved_at=_time(flow_info.get("enteredAt"), entered_path, ctx),
                level=1,
                flow=flow_id,
            )
        )
    if step_id is not None:
        steps.append(
            StepState(
                name=step_id,
                order=len(steps),
                state=step_info or None,
                is_active=True,
                saved_at=_time(
                    step_info.get("enteredAt"),
                    pointer_join(state_path, "currentStep", "enteredAt"),
                    ctx,
                ),
                level=2,
                flow=flow_id,
            )
        )
    return tuple(steps)


# ----------------------------------------------------------------------------------- adapter


ADAPTER = ModuleAdapter(FORMAT_ID, RULES, parse)
