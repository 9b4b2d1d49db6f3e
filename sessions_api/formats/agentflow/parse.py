"""AgentFlow (``gittielabs-agentflow``) sessions onto the canonical session.

AgentFlow keeps a session as a *directory* on its storage backend (``FileSystemStorage``,
``S3Storage``, ``InMemoryStorage``): ``sessions/<id>/session.json``, per-node notes
``<workflow>/<node>_scratch.md`` / ``_summary.md``, and ``artifacts/<name>``. The conversation
history is not written by the framework (the app keeps it); token usage exists only in EventBus
events. Shapes recognised (detection rule 9), reported as ``format_variant``:

- ``export-bundle``: ``{"_kind": "agentflow-export-bundle", "_version": 1, "session":
  <session.json>, "history": [...], "events": [{"type", "data"}], "notes": {"<workflow>/<node>_
  scratch.md": text, ...}, "artifacts": [...]}``. AgentFlow 0.12.0 has no exporter: this is the
  bundle the fixture generator builds (tests/fixtures/generate/README.md) and the one
  ``manage.py import_sessions`` builds from a ``FileSystemStorage`` folder
  (``formats/agentflow/stores.py``). Artifacts are ``{name, bytes|size, content_type|media_type,
  sha256?}`` plus one of ``json`` (parsed), ``text``, ``base64`` or ``omitted: true``; a folder
  bundle may also list ``other_files`` (files that are neither notes nor artifacts, by size and
  hash) and carry an app-written ``history``;
- ``session-json``: ``session.json`` alone, exactly ``{id, created_at, agent, workflow, status,
  metadata}``: a session with no messages;
- ``history``: a history list, ``dataclasses.asdict(Message)`` per entry: ``{role
  system|user|assistant|tool_result, content, tool_calls[{id, name, input}], tool_results
  [{tool_call_id, content, is_error}], metadata}``. It has no session id: the ingest service
  derives one from the content.

Mapping and quirks:

- ``session.json``: ``id`` → external id; ``agent`` → agent name; ``status`` active → running,
  completed, error (anything else: unknown, kept raw, with a warning); ``created_at``; there is
  no updated time. ``workflow`` and the app's ``metadata`` object go to ``Session.metadata``
  (``workflow``, ``app_metadata``); a string ``metadata.user_id``/``metadata.title`` becomes the
  user/title.
- History: one message per entry, except ``role: "tool_result"`` → one tool message per
  ``tool_results[]`` entry, paired to the assistant's ``tool_calls[].id`` by ``tool_call_id``.
  No per-message timestamps. Assistant ``metadata._raw_response`` (a provider object, null once
  serialised) is kept in ``extra["metadata"]`` only when not null. An entry's ``metadata.usage``
  (``{input_tokens, output_tokens}``: apps that append the runtime's ``NodeOutput.metadata`` to
  the final answer keep the usage there) is that message's tokens; a history's session tokens
  are their sum (source ``summed``). In a bundle the events' usage wins (it counts every model
  call, ``metadata.usage`` only the last of a run); the history's is the fallback.
- Tool status is explicit (``is_error``) with one caveat: ``LocalToolDispatcher`` catches a
  tool's exception itself and returns ``"Tool error: ..."`` with ``is_error: false``. Such a
  result is an ``error`` with source ``heuristic`` (``extra["is_error_recorded"] = false``); a
  result without ``is_error`` falls back to the shared text heuristic.
- Events (bundle): every event is a log entry (``error`` events at level ``error``, the rest at
  ``event`` with their data); ``llm_call_completed`` ``input_tokens``/``output_tokens`` are
  summed into the session tokens (source ``summed``; total = input + output; optional data: an
  unreadable count is a warning, a negative one 0 with a warning); their ``model`` is
  put on the node's step, and on the assistant messages when the session used one model only.
- Steps = workflow nodes, in order of first appearance in ``node_started``/``node_completed``/
  ``llm_call_*`` events, then in the notes: ``state`` says which notes exist and whether the
  node started/completed; a node started but not completed is the active one.
- Notes and artifacts go to ``Session.metadata`` for the session page: ``notes`` =
  ``[{path, workflow, node, kind: scratch|summary|note, text}]``, ``artifacts`` =
  ``[{name, size, media_type, sha256?, kind: json|text|binary, json?|text?, omitted?}]``. A
  binary artifact's bytes (``base64``) are not copied into the metadata: the page lists it with
  its size, and the raw document keeps the bytes.
- Unknown bundle keys land in ``metadata["bundle_extra"]``, unknown history keys in
  ``Message.extra``: nothing is silently dropped.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from dataclasses import dataclass, field
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
    content_to_text,
    enumerate_array,
    expect,
    optional,
    parse_timestamp,
    pointer_join,
    required,
)
from sessions_api.formats.common import (
    map_role,
    read_usages,
    sum_token_usages,
    timestamp_field,
    tool_call_objects,
    usage_count,
)
from sessions_api.formats.pairing import looks_like_error, pair_tool_calls

FORMAT_ID = "agentflow"
BUNDLE_KIND = "agentflow-export-bundle"
VARIANT_BUNDLE = "export-bundle"
VARIANT_SESSION = "session-json"
VARIANT_HISTORY = "history"

SESSION_JSON_KEYS = frozenset({"id", "created_at", "agent", "workflow", "status", "metadata"})
_HISTORY_ROLES = frozenset({"system", "user", "assistant", "tool_result"})
_ROLES = {"system": Role.SYSTEM, "user": Role.USER, "assistant": Role.ASSISTANT}
_STATUSES = {
    "active": SessionStatus.RUNNING,
    "completed": SessionStatus.COMPLETED,
    "error": SessionStatus.ERROR,
}
_HISTORY_KEYS = frozenset({"role", "content", "tool_calls", "tool_results", "metadata"})
_BUNDLE_KEYS = frozenset(
    {"_kind", "_version", "_note", "session", "history", "events", "notes", "artifacts"}
)
# LocalToolDispatcher's own text for a tool that raised (it then records is_error: false).
LOCAL_DISPATCHER_ERROR_PREFIX = "Tool error:"
_NOTE_PATH = re.compile(r"^(?:(?P<workflow>.+)/)?(?P<node>[^/]+)_(?P<kind>scratch|summary)\.md$")


# --------------------------------------------------------------------------------- detection


def is_bundle(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("_kind") == BUNDLE_KIND


def is_session_json(doc: Any) -> bool:
    return isinstance(doc, dict) and set(doc) == SESSION_JSON_KEYS


def is_history(doc: Any) -> bool:
    """A non-empty list of asdict(Message) entries: every role an AgentFlow role, and either a
    ``tool_result`` entry or the ``tool_results`` key on every entry (OpenAI-style transcripts
    have neither)."""
    if not isinstance(doc, list) or not doc:
        return False
    if not all(isinstance(item, dict) and item.get("role") in _HISTORY_ROLES for item in doc):
        return False
    return any(item["role"] == "tool_result" for item in doc) or all(
        "tool_results" in item for item in doc
    )


RULES: tuple[DetectionRule, ...] = (
    DetectionRule(
        number=9,
        format_id=FORMAT_ID,
        description='AgentFlow export bundle (_kind: "agentflow-export-bundle")',
        matches=is_bundle,
        variant=VARIANT_BUNDLE,
    ),
    DetectionRule(
        number=9,
        format_id=FORMAT_ID,
        description="AgentFlow session.json (exactly id, created_at, agent, workflow, status, "
        "metadata)",
        matches=is_session_json,
        variant=VARIANT_SESSION,
    ),
    DetectionRule(
        number=9,
        format_id=FORMAT_ID,
        description="AgentFlow history list (roles system/user/assistant/tool_result with "
        "tool_results)",
        matches=is_history,
        variant=VARIANT_HISTORY,
    ),
)


def variant_of(doc: Any) -> str:
    """The shape; for a forced parse that rule 9 would not match, the closest container."""
    if isinstance(doc, list):
        return VARIANT_HISTORY
    if is_bundle(doc) or (isinstance(doc, dict) and ("session" in doc or "history" in doc)):
        return VARIANT_BUNDLE
    return VARIANT_SESSION


# ----------------------------------------------------------------------------------- parsing


@dataclass
class _Node:
    workflow: str | None = None
    notes: list[str] = field(default_factory=list)
    started: int = 0
    completed: int = 0
    agent: str | None = None
    models: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class _Parse(ParseContext):
    nodes: dict[str, _Node] = field(default_factory=dict)

    def node(self, name: str) -> _Node:
        return self.nodes.setdefault(name, _Node())

    def metadata_usage(self, usage: dict[str, Any], path: str) -> TokenUsage:
        """``{input_tokens, output_tokens}`` (event data or ``metadata.usage``); total = sum."""
        input_tokens = usage_count(usage.get("input_tokens"), f"{path}/input_tokens", self.warnings)
        output_tokens = usage_count(
            usage.get("output_tokens"), f"{path}/output_tokens", self.warnings
        )
        total = None
        if input_tokens is not None and output_tokens is not None:
            total = input_tokens + output_tokens
        return TokenUsage(
            input=input_tokens, output=output_tokens, total=total, source=TokenSource.REPORTED
        )


def parse(doc: Any) -> ParsedSession:
    expect(doc, (dict, list), "")
    variant = variant_of(doc)
    ctx = _Parse()
    if variant == VARIANT_HISTORY:
        messages = _history(doc, "", ctx)
        paired, pairing_warnings = pair_tool_calls(messages, heuristic=looks_like_error)
        session = Session(
            source_format=FORMAT_ID,
            format_variant=variant,
            tokens=_history_tokens(messages),
            messages=tuple(paired),
        )
        return ParsedSession(session=session, warnings=(*ctx.warnings, *pairing_warnings))
    if variant == VARIANT_SESSION:
        fields = _session_fields(doc, "", ctx)
        session = Session(**fields, format_variant=VARIANT_SESSION)
        return ParsedSession(session=session, warnings=tuple(ctx.warnings))
    return _parse_bundle(doc, ctx)


def _parse_bundle(doc: dict[str, Any], ctx: _Parse) -> ParsedSession:
    kind = doc.get("_kind")
    if kind is not None and kind != BUNDLE_KIND:
        raise InvalidDocument(
            f"/_kind: expected {BUNDLE_KIND!r}, got {str(kind)[:80]!r}",
            path="/_kind",
            code="wrong_kind",
        )
    session_doc = optional(doc, "session", dict, "")
    if session_doc is not None:
        fields = _session_fields(session_doc, "/session", ctx)
    else:
        fields = {"source_format": FORMAT_ID, "metadata": {}}
        ctx.warn("bundle_without_session", "the bundle has no session object", "/session")
    metadata: dict[str, Any] = fields["metadata"]
    default_workflow = metadata.get("workflow")

    messages: list[Message] = []
    if doc.get("history") is not None:
        messages = _history(doc["history"], "/history", ctx)
    logs, usages, models = _events(doc.get("events"), ctx)
    if fields.get("external_id") is None:
        fields["external_id"] = _session_id_from_events(doc.get("events"), ctx)
    notes = _notes(doc.get("notes"), ctx)
    if notes:
        metadata["notes"] = notes
    artifacts = _artifacts(doc.get("artifacts"), ctx)
    if artifacts:
        metadata["artifacts"] = artifacts
    other_files = optional(doc, "other_files", list, "")
    if other_files:
        metadata["other_files"] = other_files
        ctx.warn(
            "unrecognised_files",
            f"{len(other_files)} file(s) in the session folder are neither notes nor "
            "artifacts; listed by size and hash in metadata.other_files",
            "/other_files",
        )
    bundle_info = {key: doc[key] for key in ("_version", "_note") if doc.get(key) is not None}
    if bundle_info:
        metadata["bundle"] = bundle_info
    extra = {
        k: v
        for k, v in doc.items()
        if k not in _BUNDLE_KEYS and k != "other_files" and v is not None
    }
    if extra:
        metadata["bundle_extra"] = extra
    if len(models) > 1:
        metadata["models"] = models

    single_model = models[0] if len(models) == 1 else None
    if single_model:
        messages = [
            _with_model(m, single_model) if m.role is Role.ASSISTANT else m for m in messages
        ]
    paired, pairing_warnings = pair_tool_calls(messages, heuristic=looks_like_error)
    # The events count every model call; the history's metadata.usage only the final one of
    # each run, so it is the fallback.
    event_tokens = sum_token_usages(usages, "/events", skip_empty=True)
    session = Session(
        **fields,
        format_variant=VARIANT_BUNDLE,
        tokens=event_tokens if not event_tokens.is_empty else _history_tokens(messages),
        messages=tuple(paired),
        steps=_steps(ctx, default_workflow),
        logs=tuple(logs),
    )
    return ParsedSession(session=session, warnings=(*ctx.warnings, *pairing_warnings))


def _with_model(message: Message, model: str) -> Message:
    return dataclasses.replace(message, model=model)


# ------------------------------------------------------------------------------ session.json


def _session_fields(raw: dict[str, Any], path: str, ctx: _Parse) -> dict[str, Any]:
    """Session keyword arguments from a session.json object (its id is required)."""
    expect(raw, dict, path)
    session_id = raw.get("id")
    if session_id is None:
        raise InvalidDocument(
            f"missing session id: {path or 'the document'} needs `id`",
            path=pointer_join(path, "id"),
            code="missing_session_id",
        )
    expect(session_id, str, pointer_join(path, "id"), nullable=True)
    if session_id is not None and not session_id.strip():
        raise InvalidDocument(
            f"{pointer_join(path, 'id')}: must not be blank",
            path=pointer_join(path, "id"),
            code="missing_session_id",
        )
    status, raw_status = _status(raw, path, ctx)
    workflow = optional(raw, "workflow", str, path)
    app_metadata = optional(raw, "metadata", dict, path) or {}
    metadata: dict[str, Any] = {"workflow": workflow, "app_metadata": app_metadata}
    extra = {k: v for k, v in raw.items() if k not in SESSION_JSON_KEYS and v is not None}
    if extra:
        metadata["session_extra"] = extra
    created_at = timestamp_field(raw, "created_at", path, ctx.warnings)
    user_id = app_metadata.get("user_id")
    title = app_metadata.get("title")
    return {
        "source_format": FORMAT_ID,
        "external_id": session_id,
        "agent_name": optional(raw, "agent", str, path),
        "user_id": user_id if isinstance(user_id, str) else None,
        "title": title if isinstance(title, str) else None,
        "status": status,
        "raw_status": raw_status,
        "created_at": created_at,
        "metadata": metadata,
    }


def _status(raw: dict[str, Any], path: str, ctx: _Parse) -> tuple[SessionStatus, str | None]:
    value = optional(raw, "status", str, path)
    if value is None:
        ctx.warn("missing_status", "session has no status", pointer_join(path, "status"))
        return SessionStatus.UNKNOWN, None
    status = _STATUSES.get(value)
    if status is None:
        ctx.warn(
            "unknown_status",
            f"unknown status {value[:80]!r}; kept as raw",
            pointer_join(path, "status"),
        )
        return SessionStatus.UNKNOWN, value
    return status, value


def _session_id_from_events(events: Any, ctx: _Parse) -> str | None:
    """Without a session object, the one session id every event names (if any)."""
    if not isinstance(events, list):
        return None
    ids = {
        event["data"]["session_id"]
        for event in events
        if isinstance(event, dict)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("session_id"), str)
    }
    if len(ids) == 1:
        return ids.pop()
    if len(ids) > 1:
        ctx.warn("several_session_ids", "events name several session ids; none used", "/events")
    return None


# ----------------------------------------------------------------------------------- history


def _history(value: Any, path: str, ctx: _Parse) -> list[Message]:
    messages: list[Message] = []
    for index, item, item_path in enumerate_array(value, path):
        raw = expect(item, dict, item_path)
        raw_role = required(raw, "role", str, item_path)
        extra = _history_extra(raw, item_path)
        if raw_role == "tool_result":
            messages.extend(_tool_results(raw, index, item_path, len(messages), extra, ctx))
            continue
        role = map_role(raw_role, _ROLES, item_path, ctx.warnings)
        text, parts = checked_content(raw.get("content"), f"{item_path}/content")
        seq = len(messages)
        messages.append(
            Message(
                seq=seq,
                role=role,
                content_text=text,
                content_parts=parts,
                tokens=_metadata_usage(raw, item_path, ctx),
                tool_calls=_tool_calls(raw.get("tool_calls"), seq, f"{item_path}/tool_calls", ctx),
                raw_role=raw_role if role is Role.OTHER else None,
                extra=extra,
            )
        )
        results = optional(raw, "tool_results", list, item_path)
        if results:
            # Only tool_result entries should carry results: keep them, as tool messages.
            ctx.warn(
                "tool_results_on_other_role",
                f"a {raw_role!r} entry carries tool_results; shown as tool messages",
                f"{item_path}/tool_results",
            )
            messages.extend(
                _tool_results(raw, index, item_path, len(messages), {"history_index": index}, ctx)
            )
    return messages


def _metadata_usage(raw: dict[str, Any], path: str, ctx: _Parse) -> TokenUsage | None:
    """``metadata.usage`` of a history entry: where an app that appends the runtime's
    ``NodeOutput.metadata`` to its answer keeps the usage (``{input_tokens, output_tokens}``,
    the final model call's). Optional data: an unreadable one is a warning."""
    metadata = raw.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("usage") is None:
        return None
    usages = read_usages(
        metadata.get("usage"), f"{path}/metadata/usage", ctx.warnings, ctx.metadata_usage
    )
    if not usages:
        return None
    return sum_token_usages(usages, f"{path}/metadata/usage") if len(usages) > 1 else usages[0]


def _history_tokens(messages: list[Message]) -> TokenUsage:
    """The history's own usage (``metadata.usage`` of its entries), summed."""
    return sum_token_usages(
        (m.tokens for m in messages if m.tokens is not None), "/history", skip_empty=True
    )


def _history_extra(raw: dict[str, Any], path: str) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    metadata = optional(raw, "metadata", dict, path) or {}
    metadata = {k: v for k, v in metadata.items() if v is not None}
    if metadata:
        extra["metadata"] = metadata
    extra.update((k, v) for k, v in raw.items() if k not in _HISTORY_KEYS and v is not None)
    return extra


def _tool_calls(value: Any, seq: int, path: str, ctx: _Parse) -> tuple[ToolCall, ...]:
    calls = []
    for raw, item_path, call_id in tool_call_objects(value, seq, path, ctx.warnings):
        calls.append(
            ToolCall(
                call_id=call_id,
                name=optional(raw, "name", str, item_path) or "",
                arguments=raw.get("input"),
            )
        )
    return tuple(calls)


def _tool_results(
    raw: dict[str, Any],
    index: int,
    path: str,
    first_seq: int,
    extra: dict[str, Any],
    ctx: _Parse,
) -> list[Message]:
    results_path = f"{path}/tool_results"
    results = raw.get("tool_results")
    entry_content = raw.get("content")
    expect(entry_content, (str, list, dict), f"{path}/content", nullable=True)
    base_extra = {"history_index": index, **extra}
    if entry_content not in (None, "", [], {}):
        base_extra["entry_content"] = entry_content
    if raw.get("tool_calls"):
        ctx.warn(
            "tool_calls_on_tool_result",
            "a tool_result entry carries tool_calls; kept in extra",
            f"{path}/tool_calls",
        )
        base_extra["tool_calls"] = raw["tool_calls"]
    if results is None or results == []:
        ctx.warn("empty_tool_result", "tool_result entry without tool_results", results_path)
        text, parts = content_to_text(entry_content)
        return [
            Message(
                seq=first_seq,
                role=Role.TOOL,
                content_text=text,
                content_parts=parts,
                extra={"history_index": index, **extra},
            )
        ]
    messages = []
    for _, item, item_path in enumerate_array(results, results_path):
        result = expect(item, dict, item_path)
        call_id = optional(result, "tool_call_id", str, item_path)
        if call_id is None:
            ctx.warn("tool_result_without_call_id", "tool result has no tool_call_id", item_path)
        text, parts = checked_content(result.get("content"), f"{item_path}/content")
        is_error = optional(result, "is_error", bool, item_path)
        message_extra = dict(base_extra)
        status, source = _result_status(is_error, text, message_extra)
        message_extra.update(
            (k, v)
            for k, v in result.items()
            if k not in ("tool_call_id", "content", "is_error") and v is not None
        )
        messages.append(
            Message(
                seq=first_seq + len(messages),
                role=Role.TOOL,
                content_text=text,
                content_parts=parts,
                tool_call_id=call_id,
                tool_status=status,
                tool_status_source=source,
                is_error=False,
                extra=message_extra,
            )
        )
    return messages


def _result_status(
    is_error: bool | None, text: str, extra: dict[str, Any]
) -> tuple[ToolStatus | None, StatusSource]:
    if is_error is None:
        return None, StatusSource.NONE  # pairing applies the shared text heuristic
    if is_error:
        return ToolStatus.ERROR, StatusSource.EXPLICIT
    if text.lstrip().startswith(LOCAL_DISPATCHER_ERROR_PREFIX):
        extra["is_error_recorded"] = False
        return ToolStatus.ERROR, StatusSource.HEURISTIC
    return ToolStatus.SUCCESS, StatusSource.EXPLICIT


# ------------------------------------------------------------------------------------ events


def _events(value: Any, ctx: _Parse) -> tuple[list[LogEntry], list[TokenUsage], list[str]]:
    logs: list[LogEntry] = []
    usages: list[TokenUsage] = []
    models: dict[str, None] = {}
    if value is None:
        return logs, usages, []
    for _, item, path in enumerate_array(value, "/events"):
        if not isinstance(item, dict):
            ctx.warn("odd_event", f"event is a {type(item).__name__}, not an object", path)
            logs.append(LogEntry(level=LogLevel.EVENT, message=str(item)[:500], seq=len(logs)))
            continue
        event_type = optional(item, "type", str, path) or "event"
        data = item.get("data")
        data_path = f"{path}/data"
        if data is not None:
            expect(data, dict, data_path)
        data = data or {}
        timestamp_value = item.get("timestamp", data.get("timestamp"))
        timestamp = parse_timestamp(timestamp_value, f"{path}/timestamp", ctx.warnings)
        node_name = data.get("node") if isinstance(data.get("node"), str) else None
        level, message = LogLevel.EVENT, event_type
        if event_type == "llm_call_completed":
            usages.extend(read_usages(data, data_path, ctx.warnings, ctx.metadata_usage) or ())
            model = optional(data, "model", str, data_path)
            if model:
                models.setdefault(model, None)
                if node_name and model not in ctx.node(node_name).models:
                    ctx.node(node_name).models.append(model)
        elif event_type == "error":
            level = LogLevel.ERROR
            error = data.get("error")
            where = node_name or (data.get("tool") if isinstance(data.get("tool"), str) else None)
            error_text = error if isinstance(error, str) else "error"
            message = f"{where}: {error_text}" if where else error_text
            if node_name:
                ctx.node(node_name).errors.append(error_text)
        if node_name:
            node = ctx.node(node_name)
            if event_type == "node_started":
                node.started += 1
            elif event_type == "node_completed":
                node.completed += 1
                if isinstance(data.get("agent"), str):
                    node.agent = data["agent"]
        extra = {"type": event_type, **({"data": data} if data else {})}
        extra.update((k, v) for k, v in item.items() if k not in ("type", "data", "timestamp"))
        logs.append(
            LogEntry(level=level, message=message, timestamp=timestamp, extra=extra, seq=len(logs))
        )
    return logs, usages, list(models)


# ------------------------------------------------------------------------- notes and artifacts


def _notes(value: Any, ctx: _Parse) -> list[dict[str, Any]]:
    if value is None:
        return []
    notes = []
    for note_path, text in expect(value, dict, "/notes").items():
        expect(text, str, pointer_join("/notes", note_path))
        match = _NOTE_PATH.match(note_path)
        if match:
            workflow, node, kind = match["workflow"], match["node"], match["kind"]
            entry = ctx.node(node)
            entry.workflow = entry.workflow or workflow
            entry.notes.append(kind)
        else:
            workflow, node, kind = None, None, "note"
        notes.append(
            {"path": note_path, "workflow": workflow, "node": node, "kind": kind, "text": text}
        )
    return notes


def _artifacts(value: Any, ctx: _Parse) -> list[dict[str, Any]]:
    if value is None:
        return []
    artifacts = []
    for _, item, path in enumerate_array(value, "/artifacts"):
        raw = expect(item, dict, path)
        name = expect(raw.get("name"), str, f"{path}/name")
        size_key = "size" if raw.get("size") is not None else "bytes"
        size = optional(raw, size_key, int, path)
        media_key = "media_type" if raw.get("media_type") is not None else "content_type"
        media_type = optional(raw, media_key, str, path)
        entry: dict[str, Any] = {"name": name, "size": size, "media_type": media_type}
        sha256 = optional(raw, "sha256", str, path)
        if sha256:
            entry["sha256"] = sha256
        if "json" in raw:
            entry["kind"] = "json"
            entry["json"] = raw["json"]
        elif raw.get("text") is not None:
            entry["kind"] = "text"
            entry["text"] = expect(raw["text"], str, f"{path}/text")
        elif raw.get("base64") is not None:
            entry["kind"] = "binary"
            decoded_size = _base64_size(expect(raw["base64"], str, f"{path}/base64"))
            if decoded_size is None:
                ctx.warn("bad_base64", f"artifact {name!r}: base64 does not decode", path)
            elif size is None:
                entry["size"] = decoded_size
            elif decoded_size != size:
                ctx.warn(
                    "artifact_size_mismatch",
                    f"artifact {name!r}: {size} bytes declared, {decoded_size} embedded",
                    path,
                )
        elif raw.get("omitted") is True:
            entry["kind"] = _kind_of_media_type(media_type)
            entry["omitted"] = True
        else:
            entry["kind"] = _kind_of_media_type(media_type)
            ctx.warn("artifact_without_content", f"artifact {name!r} carries no content", path)
        for key in ("json_error",):
            if raw.get(key) is not None:
                entry[key] = raw[key]
                ctx.warn("artifact_not_json", f"artifact {name!r}: {raw[key]}"[:300], path)
        artifacts.append(entry)
    return artifacts


def _base64_size(text: str) -> int | None:
    try:
        return len(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return None


def _kind_of_media_type(media_type: str | None) -> str:
    if media_type == "application/json":
        return "json"
    if media_type and media_type.startswith("text/"):
        return "text"
    return "binary"


# ------------------------------------------------------------------------------------- steps


def _steps(ctx: _Parse, default_workflow: Any) -> tuple[StepState, ...]:
    steps = []
    for order, (name, node) in enumerate(ctx.nodes.items()):
        state: dict[str, Any] = {"notes": sorted(set(node.notes))}
        if node.started or node.completed:
            state["started"] = node.started
            state["completed"] = node.completed
        if node.agent:
            state["agent"] = node.agent
        if node.errors:
            state["errors"] = node.errors
        is_active: bool | None = None
        if node.started or node.completed:
            is_active = node.started > node.completed and not node.errors
        workflow = node.workflow or (
            default_workflow if isinstance(default_workflow, str) else None
        )
        steps.append(
            StepState(
                name=name,
                order=order,
                state=state,
                is_active=is_active,
                model=node.models[0] if node.models else None,
                model_params={"models": node.models} if len(node.models) > 1 else None,
                flow=workflow,
            )
        )
    return tuple(steps)


# ----------------------------------------------------------------------------------- adapter


ADAPTER = ModuleAdapter(FORMAT_ID, RULES, parse)
