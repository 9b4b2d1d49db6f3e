"""Google ADK (``google-adk``) sessions onto the canonical session.

An ADK session is ``{id, app_name, user_id, state, events[], last_update_time}`` with an
append-only event list. Shapes read (detection rules 2-4), as ``format_variant``:

- ``session-snake`` / ``session-camel`` (rule 2): ``Session.model_dump()`` (snake_case, every
  optional key written as null) or the API server's answer (``by_alias``, camelCase, nulls
  omitted). Every key is looked up in both spellings; data inside ``state``, ``state_delta``,
  function ``args`` and ``response`` is never renamed;
- ``db-dump`` (rule 3): the ``SqliteSessionService``/``DatabaseSessionService`` (schema v1)
  tables as JSON: ``sessions[]`` (``state`` a JSON string), ``events[]`` (``event_data`` a JSON
  string; ordered by ``timestamp``), ``app_states[]``, ``user_states[]``;
- ``list-sessions`` (rule 4): ``{sessions: [Session without events]}``. It carries no events, so
  the session has no messages (a ``no_events`` warning says so; ingesting it after the full
  session makes an event-less newer version).

One document, one session: a dump or list holding several sessions is a 422
``multiple_sessions`` (``manage.py import_sessions`` splits such a file with
:func:`split_sessions`, one single-session document of the same shape per session).

Mapping and quirks:

- Session ids are unique only per app and user, so ``external_id`` is
  ``"<app_name>/<user_id>/<id>"``; ``agent_name`` is the app, ``user_id`` the user. State: the
  session's merged ``state`` (in a dump, ``app_states``/``user_states`` are merged in with their
  ``app:``/``user:`` prefixes restored, as the session service does). Created: ``create_time``
  (DB rows, and what ``import_sessions`` writes from a database) else the first event; updated:
  ``last_update_time`` (``update_time`` in the DB).
- One Message per event with ``content`` (and per content-less event carrying ``error_code``);
  role: ``function_response`` parts ⇒ tool, ``author == "user"`` or ``content.role == "user"`` ⇒
  user, else assistant. ``author`` is the agent name. Text = the non-thought text parts; the
  parts themselves (thoughts, calls, responses, ``inline_data``, ``executable_code``,
  ``code_execution_result``…, nulls dropped, structure keys in snake_case whichever spelling the
  document used) are ``content_parts`` whenever there is more than plain text. A content-less
  event without an error is a log entry (level ``event``) holding the event, so nothing is lost.
- Tool calls: ``function_call`` parts, paired with ``function_response`` parts by ``id`` (ADK
  gives ``adk-<uuid>`` ids when the model does not); one event may answer several calls. Tool
  status has **no field**: by convention ``response.status == "error"`` or an ``error``/
  ``error_message`` key ⇒ error, else success (source ``convention``).
- ``error_code``/``error_message`` on an event ⇒ ``Message.is_error``/``error_code`` (text = the
  error message when there is no content) plus an error log entry. Session status: none in ADK;
  ``error`` when the last event is an error, else ``unknown``.
- ``model_version`` is the message model (the agent's configured model is not stored);
  ``usage_metadata`` per model event (prompt → input, candidates → output, total, thoughts →
  reasoning, cached_content → cached); session tokens = the sum (source ``summed``).
- ``actions.state_delta`` (+ ``agent_state``, ``end_of_agent``, ``transfer_to_agent``,
  ``escalate``) make a step per event, named after the author, in event order, and sit in the
  message's ``extra["actions"]``; a ``transfer_to_agent`` is also an ``event`` log entry.
- Timestamps are epoch seconds (explicit); the system instruction is not stored; no expiry.
"""

from __future__ import annotations

import re
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
    expect,
    object_items,
    parse_timestamp,
    pointer_join,
)
from sessions_api.formats.common import (
    parse_embedded_json,
    read_usages,
    sum_token_usages,
    usage_count,
)
from sessions_api.formats.pairing import pair_tool_calls

FORMAT_ID = "google_adk"

VARIANT_SNAKE = "session-snake"
VARIANT_CAMEL = "session-camel"
VARIANT_DB_DUMP = "db-dump"
VARIANT_LIST = "list-sessions"

# Part kinds ADK/genai write; a part with none of these (non-null) is reported.
_KNOWN_PART_KEYS = frozenset(
    {
        "text",
        "thought",
        "thought_signature",
        "function_call",
        "function_response",
        "inline_data",
        "file_data",
        "executable_code",
        "code_execution_result",
        "video_metadata",
        "part_metadata",
        "media_resolution",
        "tool_call",
        "tool_response",
        "audio_transcription",
        "media_processing",
        "speech_metadata",
    }
)
_ACTION_STEP_KEYS = ("state_delta", "agent_state", "end_of_agent", "transfer_to_agent", "escalate")
# Event keys read into Message fields (the rest, non-null, go to Message.extra).
_EVENT_KEYS = frozenset(
    {
        "id",
        "author",
        "timestamp",
        "content",
        "usage_metadata",
        "model_version",
        "finish_reason",
        "error_code",
        "error_message",
    }
)
_CAMEL = re.compile(r"_([a-z])")
_CONSUMED = _EVENT_KEYS | {_CAMEL.sub(lambda m: m.group(1).upper(), k) for k in _EVENT_KEYS}


def camel(key: str) -> str:
    """``usage_metadata`` -> ``usageMetadata`` (the API server's alias)."""
    return _CAMEL.sub(lambda m: m.group(1).upper(), key)


def _key(obj: dict[str, Any], key: str) -> str:
    """The spelling of ``key`` that ``obj`` uses (snake when both or neither are present)."""
    if key in obj:
        return key
    alias = camel(key)
    return alias if alias in obj else key


def _get(obj: dict[str, Any], key: str) -> Any:
    value = obj.get(key)
    return obj.get(camel(key)) if value is None else value


def _typed(
    obj: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str, *, required=False
) -> Any:
    """``obj[key]`` (either spelling) type-checked at its JSON pointer; None when absent."""
    spelled = _key(obj, key)
    value = obj.get(spelled)
    at = pointer_join(path, spelled)
    if value is None:
        if required:
            raise InvalidDocument(f"{at}: required", path=at, code="missing_field")
        return None
    return expect(value, kind, at)


def _clean(value: Any) -> Any:
    """A model_dump value without its null keys (snake dumps write every optional key)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


# --------------------------------------------------------------------------------- detection


def looks_like_session(doc: Any) -> bool:
    return isinstance(doc, dict) and (
        all(k in doc for k in ("app_name", "user_id", "events"))
        or all(k in doc for k in ("appName", "userId", "events"))
    )


def looks_like_db_dump(doc: Any) -> bool:
    if not isinstance(doc, dict) or "sessions" not in doc:
        return False
    events = doc.get("events")
    return isinstance(events, list) and any(
        isinstance(row, dict) and "event_data" in row for row in events
    )


def looks_like_session_list(doc: Any) -> bool:
    if not isinstance(doc, dict) or not isinstance(doc.get("sessions"), list):
        return False
    rows = doc["sessions"]
    return bool(rows) and all(
        isinstance(row, dict) and ("app_name" in row or "appName" in row) for row in rows
    )


def _session_variant(doc: Any) -> str:
    return VARIANT_SNAKE if "app_name" in doc else VARIANT_CAMEL


RULES: tuple[DetectionRule, ...] = (
    DetectionRule(
        number=2,
        format_id=FORMAT_ID,
        description="Google ADK Session (app_name + user_id + events, snake_case)",
        matches=lambda doc: looks_like_session(doc) and _session_variant(doc) == VARIANT_SNAKE,
        variant=VARIANT_SNAKE,
    ),
    DetectionRule(
        number=2,
        format_id=FORMAT_ID,
        description="Google ADK Session (appName + userId + events, camelCase)",
        matches=lambda doc: looks_like_session(doc) and _session_variant(doc) == VARIANT_CAMEL,
        variant=VARIANT_CAMEL,
    ),
    DetectionRule(
        number=3,
        format_id=FORMAT_ID,
        description="Google ADK session database dump (sessions + events[].event_data)",
        matches=looks_like_db_dump,
        variant=VARIANT_DB_DUMP,
    ),
    DetectionRule(
        number=4,
        format_id=FORMAT_ID,
        description="Google ADK list_sessions answer (sessions[] with app names)",
        matches=looks_like_session_list,
        variant=VARIANT_LIST,
    ),
)


# ------------------------------------------------------------------------------ parse state


@dataclass
class _Parse(ParseContext):
    messages: list[Message] = field(default_factory=list)
    logs: list[LogEntry] = field(default_factory=list)
    steps: list[StepState] = field(default_factory=list)
    # Tool results to pair, one per function_response part: (result message, parent seq).
    results: list[Message] = field(default_factory=list)

    def log(self, level: LogLevel, message: str, timestamp: datetime | None, extra: Any) -> None:
        self.logs.append(
            LogEntry(
                level=level, message=message, timestamp=timestamp, extra=extra, seq=len(self.logs)
            )
        )


@dataclass(frozen=True)
class _SessionRow:
    """A session from any shape, with its events (value, path) in order."""

    raw: dict[str, Any]
    path: str
    app_name: str
    user_id: str
    session_id: str
    state: Any
    events: list[tuple[Any, str]]
    created: Any = None
    updated: Any = None
    created_path: str = ""
    updated_path: str = ""


# ----------------------------------------------------------------------------------- parsing


def parse(doc: Any) -> ParsedSession:
    expect(doc, dict, "")
    ctx = _Parse()
    if "sessions" in doc and not looks_like_session(doc):
        variant = VARIANT_DB_DUMP if "events" in doc else VARIANT_LIST
        row = _session_from_tables(doc, ctx)
    else:
        variant = _session_variant(doc)
        row = _session_from_object(doc, "", ctx)
    if variant == VARIANT_LIST:
        ctx.warn(
            "no_events",
            "a list_sessions answer carries no events: this session has no messages here; "
            "ingest the session itself (GET .../sessions/{id}) to see its conversation",
            row.path,
        )
    return _build(row, variant, ctx)


def _session_from_object(doc: dict[str, Any], path: str, ctx: _Parse) -> _SessionRow:
    """A Session object (snake or camel); events are its own ``events`` array."""
    session_id = _typed(doc, "id", str, path, required=True)
    app_name = _typed(doc, "app_name", str, path, required=True)
    user_id = _typed(doc, "user_id", str, path, required=True)
    if not session_id.strip():
        at = pointer_join(path, "id")
        raise InvalidDocument(f"{at}: session id is blank", path=at, code="missing_session_id")
    state = _typed(doc, "state", dict, path)
    events_key = _key(doc, "events")
    events_path = pointer_join(path, events_key)
    events = expect(doc.get(events_key), list, events_path, nullable=True) or []
    created_key, updated_key = _key(doc, "create_time"), _key(doc, "last_update_time")
    return _SessionRow(
        raw=doc,
        path=path,
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        state=state,
        events=[(event, pointer_join(events_path, i)) for i, event in enumerate(events)],
        created=doc.get(created_key),
        updated=doc.get(updated_key),
        created_path=pointer_join(path, created_key),
        updated_path=pointer_join(path, updated_key),
    )


def session_keys(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every (app, user, session id) a dump or list names, sessions first, in order."""
    keys: dict[tuple[str, str, str], None] = {}
    for table, id_key in (("sessions", "id"), ("events", "session_id")):
        rows = doc.get(table)
        if not isinstance(rows, list):
            continue
        for row in rows:
            if not isinstance(row, dict):
                continue
            parts = (_get(row, "app_name"), _get(row, "user_id"), _get(row, id_key))
            if all(isinstance(p, str) for p in parts):
                keys.setdefault(parts, None)  # type: ignore[arg-type]
    return list(keys)


def _session_from_tables(doc: dict[str, Any], ctx: _Parse) -> _SessionRow:
    """The one session of a DB dump or list_sessions answer, state merged as ADK merges it."""
    sessions = [(row, path) for _, row, path in object_items(doc, "sessions")]
    events = [(row, path) for _, row, path in object_items(doc, "events")]
    for row, path in sessions:
        for key in ("id", "app_name", "user_id"):
            _typed(row, key, str, path, required=True)
    for row, path in events:
        for key in ("session_id", "app_name", "user_id"):
            _typed(row, key, str, path, required=True)
    keys = session_keys(doc)
    if len(keys) > 1:
        names = ", ".join("/".join(k) for k in keys[:5])
        raise InvalidDocument(
            f"this document holds {len(keys)} sessions ({names}{', …' if len(keys) > 5 else ''}); "
            "one document is one session: import the file with `manage.py import_sessions PATH` "
            "(it splits it into sessions) or post each session on its own",
            path="/sessions",
            code="multiple_sessions",
        )
    if not keys:
        raise InvalidDocument(
            "missing session id: no sessions or events rows",
            path="/sessions",
            code="missing_session_id",
        )
    app_name, user_id, session_id = keys[0]
    row, path = sessions[0] if sessions else ({}, "/sessions")
    if not sessions:
        ctx.warn("missing_session_row", "events without a sessions row", "/sessions")

    state = _row_state(row, path, ctx)
    merged = dict(state or {})
    for prefix, table, match in (
        ("app:", "app_states", lambda r: _get(r, "app_name") == app_name),
        (
            "user:",
            "user_states",
            lambda r: _get(r, "app_name") == app_name and _get(r, "user_id") == user_id,
        ),
    ):
        for _, scoped, scoped_path in object_items(doc, table):
            if match(scoped):
                for key, value in (_row_state(scoped, scoped_path, ctx) or {}).items():
                    merged[f"{prefix}{key}"] = value

    ordered = sorted(enumerate(events), key=lambda entry: (_sort_time(entry[1][0]), entry[0]))
    event_values = [
        _event_from_row(event_row, event_path, ctx) for _, (event_row, event_path) in ordered
    ]
    event_values.extend(
        (event, pointer_join(path, _key(row, "events"), i))
        for i, event in enumerate(
            expect(
                _get(row, "events"), list, pointer_join(path, _key(row, "events")), nullable=True
            )
            or []
        )
    )
    created_key = _key(row, "create_time")
    updated_key = "update_time" if "update_time" in row else _key(row, "last_update_time")
    return _SessionRow(
        raw=row,
        path=path,
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        state=merged if (state is not None or merged) else None,
        events=event_values,
        created=row.get(created_key),
        updated=row.get(updated_key),
        created_path=pointer_join(path, created_key),
        updated_path=pointer_join(path, updated_key),
    )


def _row_state(row: dict[str, Any], path: str, ctx: _Parse) -> dict[str, Any] | None:
    """A state column: a JSON string in the database, an object in API answers."""
    value = row.get("state")
    at = pointer_join(path, "state")
    if value is None:
        return None
    expect(value, (dict, str), at)
    if isinstance(value, dict):
        return value
    parsed, error = parse_embedded_json(value, at)
    if error is not None or not isinstance(parsed, dict):
        ctx.warn("unparseable_state", f"state is not a JSON object ({error or 'wrong type'})", at)
        return {"__unparseable_state__": value}
    return parsed


def _sort_time(row: dict[str, Any]) -> float:
    parsed = parse_timestamp(row.get("timestamp"), "")
    return parsed.timestamp() if parsed is not None else float("inf")


def _event_from_row(row: dict[str, Any], path: str, ctx: _Parse) -> tuple[Any, str]:
    data_path = pointer_join(path, "event_data")
    data = row.get("event_data")
    if data is None:
        ctx.warn("missing_event_data", "event row without event_data", path)
        return {"id": row.get("id"), "timestamp": row.get("timestamp"), "event_row": row}, path
    expect(data, (str, dict), data_path)
    if isinstance(data, dict):
        return data, data_path
    value, error = parse_embedded_json(data, data_path)
    if error is not None:
        ctx.warn("unparseable_event_data", f"event_data is not JSON ({error}); kept raw", data_path)
        return {"id": row.get("id"), "timestamp": row.get("timestamp"), "event_row": row}, path
    return value, data_path


# --- events ---------------------------------------------------------------------------------


def _build(row: _SessionRow, variant: str, ctx: _Parse) -> ParsedSession:
    for event, path in row.events:
        _event(event, path, ctx)
    messages = _pair(ctx)
    tokens = sum_token_usages(
        (m.tokens for m in messages if m.tokens is not None), "/events", skip_empty=True
    )
    created_at = parse_timestamp(row.created, row.created_path, ctx.warnings)
    if created_at is None:
        created_at = next((m.timestamp for m in messages if m.timestamp), None)
    updated_at = parse_timestamp(row.updated, row.updated_path, ctx.warnings)
    status = SessionStatus.UNKNOWN
    if messages and messages[-1].is_error:
        status = SessionStatus.ERROR
    if not row.events and variant != VARIANT_LIST:
        ctx.warn("no_messages", "the session has no events")

    session = Session(
        source_format=FORMAT_ID,
        format_variant=variant,
        external_id=f"{row.app_name}/{row.user_id}/{row.session_id}",
        user_id=row.user_id,
        agent_name=row.app_name,
        status=status,
        created_at=created_at,
        updated_at=updated_at,
        state=row.state,
        tokens=tokens,
        messages=tuple(messages),
        steps=tuple(ctx.steps),
        logs=tuple(ctx.logs),
        metadata={"app_name": row.app_name, "session_id": row.session_id},
    )
    return ParsedSession(session=session, warnings=tuple(ctx.warnings))


def _event(event: Any, path: str, ctx: _Parse) -> None:
    expect(event, dict, path)
    author = _typed(event, "author", str, path)
    event_id = _typed(event, "id", str, path)
    timestamp_key = _key(event, "timestamp")
    timestamp_value = event.get(timestamp_key)
    expect(timestamp_value, (int, float, str), pointer_join(path, timestamp_key), nullable=True)
    timestamp = parse_timestamp(timestamp_value, pointer_join(path, timestamp_key), ctx.warnings)
    content = _typed(event, "content", dict, path)
    error_code = _typed(event, "error_code", (str, int), path)
    error_message = _typed(event, "error_message", str, path)
    actions = _actions(event, path, author, event_id, timestamp, ctx)
    extra = {k: _clean(v) for k, v in event.items() if v is not None and k not in _CONSUMED}
    if "unparseable_event_data" in event:  # what import_sessions writes for a broken row
        ctx.warn("unparseable_event_data", "the event_data column is not JSON; kept raw", path)

    if content is None and error_code is None and error_message is None:
        summary = f"event {event_id or '?'} by {author or '?'}"
        if actions:
            summary += ": " + ", ".join(sorted(actions))
        ctx.log(LogLevel.EVENT, summary, timestamp, {"event": _clean(event)})
        return

    seq = len(ctx.messages)
    content_path = pointer_join(path, _key(event, "content"))
    text, parts, calls, responses = _content(content, content_path, seq, ctx)
    role = _role(author, content, responses)
    is_error = error_code is not None or error_message is not None
    if is_error:
        ctx.log(
            LogLevel.ERROR,
            f"{error_code or 'error'}: {error_message or ''}".strip(),
            timestamp,
            {"event_id": event_id, "author": author, "invocation_id": _get(event, "invocation_id")},
        )
        if not text and error_message:
            text = error_message
    usage = _event_usage(event, path, ctx)
    message = Message(
        seq=seq,
        role=role,
        content_text=text,
        content_parts=parts,
        external_id=event_id,
        author=author,
        timestamp=timestamp,
        timestamp_source=TimestampSource.EXPLICIT if timestamp else TimestampSource.NONE,
        model=_typed(event, "model_version", str, path),
        tokens=usage,
        finish_reason=_typed(event, "finish_reason", str, path),
        is_error=is_error,
        error_code=str(error_code) if error_code is not None else None,
        tool_calls=tuple(calls),
        raw_role=_get(content, "role") if content and role is Role.OTHER else None,
        extra={**extra, **({"error_message": error_message} if error_message else {})},
    )
    ctx.messages.append(message)
    for call_id, response, response_path in responses:
        status = _convention_status(response)
        ctx.results.append(
            Message(
                seq=seq,
                role=Role.TOOL,
                content_parts=response,
                tool_call_id=call_id,
                tool_status=status,
                tool_status_source=StatusSource.CONVENTION,
                extra={"path": response_path},
            )
        )


def _role(author: str | None, content: dict[str, Any] | None, responses: list[Any]) -> Role:
    if responses:
        return Role.TOOL
    if author == "user" or (content is not None and _get(content, "role") == "user"):
        return Role.USER
    return Role.ASSISTANT


def _content(
    content: dict[str, Any] | None, path: str, seq: int, ctx: _Parse
) -> tuple[str, Any, list[ToolCall], list[tuple[str | None, Any, str]]]:
    """(text, parts, calls, responses) of an event's content."""
    if content is None:
        return "", None, [], []
    _typed(content, "role", str, path)
    parts_key = _key(content, "parts")
    parts_path = pointer_join(path, parts_key)
    raw_parts = expect(content.get(parts_key), list, parts_path, nullable=True) or []
    texts: list[str] = []
    cleaned: list[Any] = []
    calls: list[ToolCall] = []
    responses: list[tuple[str | None, Any, str]] = []
    plain_text_only = True
    for index, part in enumerate(raw_parts):
        part_path = pointer_join(parts_path, index)
        expect(part, dict, part_path)
        clean = _snake_part(_clean(part))
        cleaned.append(clean)
        text = _typed(part, "text", str, part_path)
        thought = _typed(part, "thought", bool, part_path)
        call = _typed(part, "function_call", dict, part_path)
        response = _typed(part, "function_response", dict, part_path)
        if text is not None and not thought:
            texts.append(text)
        if set(clean) != {"text"}:
            plain_text_only = False
        if call is not None:
            calls.append(
                _call(call, pointer_join(part_path, _key(part, "function_call")), seq, index, ctx)
            )
        if response is not None:
            responses.append(
                _response(response, pointer_join(part_path, _key(part, "function_response")))
            )
        unknown = set(clean) - _KNOWN_PART_KEYS
        if unknown:
            ctx.warn(
                "unknown_part", f"content part with unknown keys {sorted(unknown)[:5]}", part_path
            )
    return "\n".join(texts), None if plain_text_only else cleaned, calls, responses


def camel_to_snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _snake_part(part: dict[str, Any]) -> dict[str, Any]:
    """A part with snake_case structure keys (``functionCall`` -> ``function_call``, its
    ``willContinue`` -> ``will_continue``...) so both spellings display alike. Tool ``args``,
    ``response`` and every other payload keep their keys as written."""
    snake: dict[str, Any] = {}
    for key, value in part.items():
        name = camel_to_snake(key)
        if name in _KNOWN_PART_KEYS and isinstance(value, dict):
            value = {camel_to_snake(k): v for k, v in value.items()}
        snake[name] = value
    return snake


def _call(call: dict[str, Any], path: str, seq: int, index: int, ctx: _Parse) -> ToolCall:
    call_id = _typed(call, "id", str, path)
    if not call_id:
        call_id = f"missing-id:{seq}:{index}"
        ctx.warn("tool_call_without_id", f"function_call without id; using {call_id!r}", path)
    name = _typed(call, "name", str, path) or ""
    arguments = _typed(call, "args", dict, path)
    return ToolCall(call_id=call_id, name=name, arguments=arguments)


def _response(response: dict[str, Any], path: str) -> tuple[str | None, Any, str]:
    call_id = _typed(response, "id", str, path)
    _typed(response, "name", str, path)
    body = _typed(response, "response", dict, path)
    return call_id, _clean(response) if body is None else body, path


def _convention_status(response: Any) -> ToolStatus:
    """ADK's convention for a failed tool: ``status == "error"`` or an ``error``/``error_message``
    key in the function response."""
    if not isinstance(response, dict):
        return ToolStatus.SUCCESS
    if response.get("status") == "error":
        return ToolStatus.ERROR
    if response.get("error") is not None or response.get("error_message") is not None:
        return ToolStatus.ERROR
    return ToolStatus.SUCCESS


def _actions(
    event: dict[str, Any],
    path: str,
    author: str | None,
    event_id: str | None,
    timestamp: datetime | None,
    ctx: _Parse,
) -> dict[str, Any]:
    """The step-worthy actions of an event (also recorded as a step and, for transfers, a log)."""
    actions = _typed(event, "actions", dict, path)
    if actions is None:
        return {}
    actions_path = pointer_join(path, _key(event, "actions"))
    found: dict[str, Any] = {}
    for key in _ACTION_STEP_KEYS:
        spelled = _key(actions, key)
        value = actions.get(spelled)
        if key == "state_delta" and value is not None:
            expect(value, dict, pointer_join(actions_path, spelled))
        if value not in (None, {}, False):
            found[key] = value
    if not found:
        return {}
    transfer = found.get("transfer_to_agent")
    if transfer is not None:
        ctx.log(
            LogLevel.EVENT,
            f"{author or '?'} transfers to {transfer}",
            timestamp,
            {"event_id": event_id, "transfer_to_agent": transfer},
        )
    ctx.steps.append(
        StepState(
            name=author or "?",
            order=len(ctx.steps),
            state={"event_id": event_id, **found},
            saved_at=timestamp,
        )
    )
    return found


def _event_usage(event: dict[str, Any], path: str, ctx: _Parse) -> TokenUsage | None:
    """``usage_metadata``: optional data, so an unreadable one is an ``unreadable_usage``
    warning and no tokens for that event (``common.read_usages``); a list of them is summed."""
    key = _key(event, "usage_metadata")
    if event.get(key) is None:
        return None
    at = pointer_join(path, key)
    usages = read_usages(
        event[key],
        at,
        ctx.warnings,
        lambda usage, usage_path: _usage(usage, usage_path, ctx.warnings),
    )
    if not usages:
        return None
    return usages[0] if len(usages) == 1 else sum_token_usages(usages, at)


def _usage(usage: dict[str, Any], path: str, warnings: list[ParseWarning]) -> TokenUsage:
    def count(key: str) -> int | None:
        spelled = _key(usage, key)
        return usage_count(usage.get(spelled), pointer_join(path, spelled), warnings)

    return TokenUsage(
        input=count("prompt_token_count"),
        output=count("candidates_token_count"),
        total=count("total_token_count"),
        reasoning=count("thoughts_token_count"),
        cached=count("cached_content_token_count"),
        source=TokenSource.REPORTED,
    )


def _pair(ctx: _Parse) -> list[Message]:
    """Pair calls with responses by id. An event may answer several calls, so every
    ``function_response`` part is paired as a result message of its own (carrying the event's
    seq, so each call's ``result_seq`` names the event); those stand-ins are then dropped."""
    by_seq: dict[int, list[Message]] = {}
    for result in ctx.results:
        by_seq.setdefault(result.seq, []).append(result)
    expanded: list[Message] = []
    events: list[int] = []
    for message in ctx.messages:
        events.append(len(expanded))
        expanded.append(message)
        expanded.extend(by_seq.get(message.seq, ()))
    paired, warnings = pair_tool_calls(expanded, heuristic=None)
    ctx.warnings.extend(warnings)
    return [paired[index] for index in events]


# ------------------------------------------------------------------------------- splitting


def split_sessions(doc: Any) -> list[tuple[str, Any]] | None:
    """A rule-3 dump or rule-4 list holding several sessions as one document of the same shape
    per session (its sessions row, its events, its app's and user's state rows, every other
    table kept), as ``("app/user/id", document)``. None when there is nothing to split."""
    if not (looks_like_db_dump(doc) or looks_like_session_list(doc)):
        return None
    tables = ("sessions", "events", "app_states", "user_states")
    if any(doc.get(t) is not None and not isinstance(doc[t], list) for t in tables):
        return None
    keys = session_keys(doc)
    if len(keys) < 2:
        return None
    parts = []
    for app_name, user_id, session_id in keys:
        part = dict(doc)

        def rows(table: str, test) -> list[Any]:
            return [r for r in doc.get(table) or [] if isinstance(r, dict) and test(r)]

        part["sessions"] = rows(
            "sessions",
            lambda r, a=app_name, u=user_id, s=session_id: (
                (
                    _get(r, "app_name"),
                    _get(r, "user_id"),
                    _get(r, "id"),
                )
                == (a, u, s)
            ),
        )
        if "events" in doc:
            part["events"] = rows(
                "events",
                lambda r, a=app_name, u=user_id, s=session_id: (
                    (
                        r.get("app_name"),
                        r.get("user_id"),
                        r.get("session_id"),
                    )
                    == (a, u, s)
                ),
            )
        if "app_states" in doc:
            part["app_states"] = rows("app_states", lambda r, a=app_name: r.get("app_name") == a)
        if "user_states" in doc:
            part["user_states"] = rows(
                "user_states",
                lambda r, a=app_name, u=user_id: (r.get("app_name"), r.get("user_id")) == (a, u),
            )
        parts.append((f"{app_name}/{user_id}/{session_id}", part))
    return parts


# ----------------------------------------------------------------------------------- adapter


ADAPTER = ModuleAdapter(FORMAT_ID, RULES, parse)
