"""OpenAI Chat Completions transcripts, and the minimal generic transcript.

Shapes recognised (detection rule 16), each reported as ``format_variant``:

- ``chat-completions``: ``{"messages": [...], "id"?, "model"?, "usage"?, ...}`` where every
  role is one of system/developer/user/assistant/tool/function;
- ``generic``: the same object shape written by hand-rolled agents (``{"id", "messages",
  "variables"}``): an ``agent`` role (the assistant) or a ``variables`` key (session state);
- ``bare-list``: a top-level array of such message objects (no envelope, so no id).

Detection needs at least one message with a known role, and more than twice as many messages
with a known role as with an unknown one: an empty ``messages`` list is not evidence of anything, a
list of mostly unknown roles is some other format, but a stray unknown role (a ``wizard``)
does not make a chat transcript unknown. Unknown roles parse as ``other`` with a
warning.
Rule 16 yields to rule 15 (Anthropic): a document with ``tool_use``/``tool_result``/
``thinking`` content blocks (or any ``*_tool_use``/``*_tool_result`` block, such as
``mcp_tool_use``), or a top-level ``system`` and no system-role message, never
matches here, even while no Anthropic adapter is installed. Overlaps with rules 7 and 12-14
are left to the precedence: those rules come first.

Quirks of the format, and what this adapter does about them:

- No session status field: the status is always ``unknown``.
- No tool-result status: OpenAI tool messages carry only text, so a result is ``error`` when its
  text reads like one ("Error: ...") and ``success`` otherwise, both with source ``heuristic``.
  A ``status`` some apps add to a tool message is read: ``success``/``error`` are explicit, any
  other value is ``unknown`` with an ``unknown_tool_status`` warning (not guessed from text).
- No per-message timestamps in the plain shape: messages keep document order (``seq``); a
  ``timestamp``/``created_at``/``created`` key that some apps add is used as an explicit time.
- Usage is per model *response*, not per message: an envelope ``usage`` is reported as is (a
  list of per-completion usages, as apps that log each completion keep it, is summed); else
  ``responses[].usage`` is summed; else per-message ``usage`` (added by some apps) is summed;
  else the tokens are unknown (all null). ``input_tokens``/``output_tokens`` (Responses-style
  names) are read when the chat names are absent. Usage is optional data: one the adapter
  cannot read is an ``unreadable_usage`` warning, a negative count is 0 with a warning
  (``common.usage_count``).
- The session ``model`` is put on every assistant message that names none, so that
  ``Session.models`` reports it.
- Envelope ids: ``session_id`` wins over ``id`` (in a saved completion, ``id`` is the completion
  id ``chatcmpl-...``); with neither, ``external_id`` stays None and the ingest service derives
  one from the content hash.
- Legacy ``function_call`` (one per assistant turn, no id): the call gets the synthetic id
  ``function_call:<seq>`` and is answered by the next ``role:"function"`` message, preferring a
  pending call whose name matches the message's ``name``.
- Tool-call ``arguments`` are a JSON *string*: parsed when it is JSON (NaN/Infinity refused);
  otherwise the raw string is kept verbatim with ``arguments_error`` and a warning. A blank
  string means "no arguments". An object (some apps store it parsed) is kept as is. A
  ``custom`` tool call's free-form ``input`` is kept as given. A call without an id gets
  ``tool_call:<seq>:<index>`` and a warning (it can then have no result).
- ``model_dump()`` writes every optional key as ``null``: null means absent everywhere.
- ``refusal`` is the message text when the content is empty, and is always kept in ``extra``.
- Every other non-null key of a message lands in ``Message.extra`` and every other envelope key
  in ``Session.metadata["envelope_extra"]`` (the document's own ``metadata`` object is the rest
  of ``Session.metadata``), so nothing is silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sessions_api.domain import (
    Message,
    ParsedSession,
    ParseWarning,
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
    content_to_text,
    enumerate_array,
    expect,
    optional,
    parse_timestamp,
    pointer_join,
    required,
)
from sessions_api.formats.common import (
    has_anthropic_blocks,
    map_role,
    parse_tool_arguments,
    read_usages,
    result_looks_like_error,
    sum_token_usages,
    tool_call_objects,
    usage_count,
)
from sessions_api.formats.pairing import pair_tool_calls

FORMAT_ID = "openai_chat"

VARIANT_CHAT = "chat-completions"
VARIANT_GENERIC = "generic"
VARIANT_BARE_LIST = "bare-list"

_ROLES: dict[str, Role] = {
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "user": Role.USER,
    "assistant": Role.ASSISTANT,
    # The generic hand-rolled transcript calls the assistant "agent".
    "agent": Role.ASSISTANT,
    "tool": Role.TOOL,
    "function": Role.TOOL,
}
_GENERIC_ROLES = frozenset({"agent"})

# Envelope keys this adapter maps; any other envelope key is kept in metadata["envelope_extra"].
_ENVELOPE_EXTRA_KEY = "envelope_extra"
# Message keys read into Message fields; the timestamp key actually used is added per message.
_MESSAGE_KEYS = frozenset(
    {
        "role",
        "content",
        "name",
        "id",
        "model",
        "usage",
        "finish_reason",
        "tool_calls",
        "tool_call_id",
        "function_call",
    }
)
# Read from tool messages only; on any other message it stays in extra.
_TOOL_MESSAGE_KEYS = frozenset({"status"})
_MESSAGE_TIMESTAMP_KEYS = ("timestamp", "created_at", "created")
_LEGACY_CALL_PREFIX = "function_call:"


# --------------------------------------------------------------------------------- detection


def _message_list(doc: Any) -> tuple[list[Any], str] | None:
    """The candidate message array and the variant its container implies, or None."""
    if isinstance(doc, list):
        return doc, VARIANT_BARE_LIST
    if isinstance(doc, dict) and isinstance(doc.get("messages"), list):
        variant = VARIANT_GENERIC if "variables" in doc else VARIANT_CHAT
        return doc["messages"], variant
    return None


def sniff_variant(doc: Any) -> str | None:
    """The rule-16 variant ``doc`` has, or None when rule 16 does not match. Never raises."""
    found = _message_list(doc)
    if found is None:
        return None
    messages, variant = found
    evidence = role_evidence(messages)
    return None if evidence is None else variant_of_evidence(doc, variant, evidence)


@dataclass(frozen=True)
class RoleEvidence:
    """What detection reads from a list of messages: the known roles seen, and how many messages
    have a known and an unknown role."""

    roles: frozenset[str]
    known: int
    unknown: int

    def __add__(self, other: RoleEvidence) -> RoleEvidence:
        return RoleEvidence(
            self.roles | other.roles, self.known + other.known, self.unknown + other.unknown
        )


def role_evidence(messages: list[Any]) -> RoleEvidence | None:
    """The roles of ``messages``; None when one has Anthropic-only content blocks (rule 15
    owns those)."""
    roles: set[str] = set()
    known = unknown = 0
    for message in messages:
        if not isinstance(message, dict):
            continue  # parse() reports it with its path; it is no evidence either way
        role = message.get("role")
        if isinstance(role, str):
            if role in _ROLES:
                known += 1
                roles.add(role)
            else:
                unknown += 1
        if has_anthropic_blocks(message):
            return None
    return RoleEvidence(frozenset(roles), known, unknown)


def variant_of_evidence(doc: Any, variant: str, evidence: RoleEvidence) -> str | None:
    """sniff_variant's answer for ``doc``, whose messages gave ``evidence`` and whose container
    implies ``variant`` (_message_list)."""
    roles = evidence.roles
    # A stray unknown role (shown as "other") does not make a chat transcript something else;
    # a list whose roles are mostly unknown is some other format's.
    if not roles or evidence.unknown * 2 >= evidence.known:
        return None
    if isinstance(doc, dict) and doc.get("system") is not None and "system" not in roles:
        return None  # Anthropic keeps its system prompt at the top level (rule 15)
    if variant == VARIANT_CHAT and roles & _GENERIC_ROLES:
        return VARIANT_GENERIC
    return variant


def _rule(variant: str, description: str) -> DetectionRule:
    return DetectionRule(
        number=16,
        format_id=FORMAT_ID,
        description=description,
        matches=lambda doc: sniff_variant(doc) == variant,
        variant=variant,
    )


RULES: tuple[DetectionRule, ...] = (
    _rule(VARIANT_CHAT, "OpenAI Chat Completions transcript (messages[] with OpenAI roles)"),
    _rule(VARIANT_GENERIC, "generic transcript (messages[] with user/agent roles, variables)"),
    _rule(VARIANT_BARE_LIST, "OpenAI Chat Completions transcript (bare list of messages)"),
)


# ----------------------------------------------------------------------------------- parsing


@dataclass
class _ParseState(ParseContext):
    """What parsing one document accumulates while walking its messages."""

    session_model: str | None = None
    # Legacy function calls still waiting for their `role: "function"` result: (id, name).
    pending_legacy_calls: list[tuple[str, str]] = field(default_factory=list)

    def usage(self, usage: dict[str, Any], path: str) -> TokenUsage:
        return _parse_usage(usage, path, self.warnings)


def parse(doc: Any) -> ParsedSession:
    """Map an OpenAI chat / generic transcript onto the canonical session (module docstring)."""
    envelope, raw_messages, messages_path = _split_document(doc)
    state = _ParseState()
    variant = _parse_variant(doc)
    state.session_model = optional(envelope, "model", str, "")

    messages = [
        _parse_message(item, index, item_path, state)
        for index, item, item_path in enumerate_array(raw_messages, messages_path)
    ]
    if not messages:
        state.warn("no_messages", "the transcript has no messages", messages_path)
    paired, pairing_warnings = pair_tool_calls(messages, heuristic=result_looks_like_error)

    session = _build_session(envelope, variant, tuple(paired), state)
    return ParsedSession(session=session, warnings=(*state.warnings, *pairing_warnings))


def _parse_variant(doc: Any) -> str:
    """The detected variant; for a forced parse that rule 16 would not match, the container's."""
    variant = sniff_variant(doc)
    if variant is not None:
        return variant
    found = _message_list(doc)
    return found[1] if found else VARIANT_CHAT


def _split_document(doc: Any) -> tuple[dict[str, Any], Any, str]:
    """(envelope, messages value, JSON pointer of the messages) for either container shape."""
    if isinstance(doc, list):
        return {}, doc, ""
    expect(doc, (dict, list), "")
    if doc.get("messages") is None:
        raise InvalidDocument(
            "messages: required (an array of chat messages)", path="/messages", code="missing_field"
        )
    return doc, doc["messages"], "/messages"


def _build_session(
    envelope: dict[str, Any], variant: str, messages: tuple[Message, ...], state: _ParseState
) -> Session:
    # `session_id` names the session; in a saved completion `id` is only the completion id.
    id_key = _first_present(envelope, ("session_id", "id"))
    created_key = _first_present(envelope, ("created_at", "created"))
    title_key = _first_present(envelope, ("title", "name"))
    consumed = {"messages", "model", "usage", "responses", "metadata", "variables", "user"}
    consumed.update(key for key in (id_key, created_key, title_key, "updated_at") if key)

    metadata = dict(optional(envelope, "metadata", dict, "") or {})
    extra = {k: v for k, v in envelope.items() if k not in consumed and v is not None}
    if extra:
        if _ENVELOPE_EXTRA_KEY in metadata:
            state.warn(
                "metadata_key_collision",
                f"metadata already has {_ENVELOPE_EXTRA_KEY!r}; other envelope keys are only "
                "in the raw document",
                "/metadata",
            )
        else:
            metadata[_ENVELOPE_EXTRA_KEY] = extra

    return Session(
        source_format=FORMAT_ID,
        format_variant=variant,
        external_id=_envelope_id(envelope, id_key, state),
        user_id=optional(envelope, "user", str, ""),
        status=SessionStatus.UNKNOWN,
        created_at=_envelope_time(envelope, created_key, state),
        updated_at=_envelope_time(envelope, "updated_at", state),
        title=optional(envelope, title_key, str, "") if title_key else None,
        state=optional(envelope, "variables", dict, ""),
        tokens=_session_tokens(envelope, messages, state),
        messages=messages,
        metadata=metadata,
    )


def _first_present(doc: dict[str, Any], keys: Iterable[str]) -> str | None:
    """The first of ``keys`` whose value is not null (model_dump writes absent keys as null)."""
    return next((key for key in keys if doc.get(key) is not None), None)


def _envelope_id(envelope: dict[str, Any], key: str | None, state: _ParseState) -> str | None:
    if key is None:
        return None
    value = expect(envelope[key], str, pointer_join("", key))
    if not value.strip():
        state.warn("empty_session_id", f"{key} is blank; treated as absent", f"/{key}")
        return None
    return value


def _envelope_time(
    envelope: dict[str, Any], key: str | None, state: _ParseState
) -> datetime | None:
    if key is None:
        return None
    return parse_timestamp(envelope.get(key), pointer_join("", key), state.warnings)


# ---------------------------------------------------------------------------------- messages


def _parse_message(item: Any, seq: int, path: str, state: _ParseState) -> Message:
    # This runs once per message: JSON pointers below (path/role, path/content...) are built
    # only where a warning or an error needs one, not for every message (bench B5, B3).
    raw = expect(item, dict, path)
    raw_role = required(raw, "role", str, path)
    role = _ROLES.get(raw_role)
    if role is None:
        role = map_role(raw_role, _ROLES, pointer_join(path, "role"), state.warnings)
    content = raw.get("content")
    if type(content) is str:
        text, parts = content, None  # what _parse_content gives a string
    else:
        text, parts = _parse_content(content, pointer_join(path, "content"))
    timestamp_key = _first_present(raw, _MESSAGE_TIMESTAMP_KEYS)
    timestamp = (
        parse_timestamp(raw[timestamp_key], pointer_join(path, timestamp_key), state.warnings)
        if timestamp_key
        else None
    )

    refusal = optional(raw, "refusal", str, path)
    if refusal and not text:
        text = refusal  # a refusal is what the user saw instead of an answer
    model = optional(raw, "model", str, path)
    if model is None and role is Role.ASSISTANT:
        model = state.session_model

    raw_calls = raw.get("tool_calls")
    tool_calls = (
        _parse_tool_calls(raw_calls, seq, pointer_join(path, "tool_calls"), state)
        if raw_calls is not None
        else ()
    )
    legacy_call = _parse_legacy_function_call(raw.get("function_call"), seq, path, state)
    if legacy_call is not None:
        tool_calls = (*tool_calls, legacy_call)

    tool_status, tool_status_source = _result_status(raw, role, path, state)
    raw_usage = raw.get("usage")
    usages = (
        read_usages(raw_usage, pointer_join(path, "usage"), state.warnings, state.usage)
        if raw_usage is not None
        else None
    )
    return Message(
        seq=seq,
        role=role,
        content_text=text,
        content_parts=parts,
        external_id=_message_id(raw.get("id"), path),
        author=optional(raw, "name", str, path),
        timestamp=timestamp,
        timestamp_source=TimestampSource.EXPLICIT if timestamp else TimestampSource.NONE,
        model=model,
        tokens=_one_usage(usages, path, "usage"),
        finish_reason=optional(raw, "finish_reason", str, path),
        tool_calls=tool_calls,
        tool_call_id=_result_call_id(raw, raw_role, path, state),
        tool_status=tool_status,
        tool_status_source=tool_status_source,
        raw_role=raw_role if raw_role != role.value else None,
        extra={
            k: v
            for k, v in raw.items()
            if v is not None
            and k not in _MESSAGE_KEYS
            and k != timestamp_key
            and not (role is Role.TOOL and k in _TOOL_MESSAGE_KEYS)
        },
    )


def _parse_content(content: Any, path: str) -> tuple[str, Any]:
    """Text and parts: a string, a list of content parts, or an object (structured output)."""
    expect(content, (str, list, dict), path, nullable=True)
    if isinstance(content, list):
        for _, part, part_path in enumerate_array(content, path):
            expect(part, (dict, str), part_path)
            if isinstance(part, dict) and part.get("type") == "text":
                expect(part.get("text"), str, pointer_join(part_path, "text"))
    text, parts = content_to_text(content)
    if isinstance(content, list):
        # content_to_text reads `text` only; an assistant's refusal part is text the user saw.
        refusals = [
            part["refusal"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") == "refusal"
            and isinstance(part.get("refusal"), str)
        ]
        text = "\n".join(t for t in (text, *refusals) if t)
    return text, parts


def _message_id(value: Any, message_path: str) -> str | None:
    # Apps that add message ids often use database row numbers: an integer id is still an id.
    if value is None or type(value) is str:
        return value
    expect(value, (str, int), pointer_join(message_path, "id"))
    return str(value)


_TOOL_STATUSES = {"success": ToolStatus.SUCCESS, "error": ToolStatus.ERROR}


def _result_status(
    raw: dict[str, Any], role: Role, path: str, state: _ParseState
) -> tuple[ToolStatus | None, StatusSource]:
    """A ``status`` some apps add to tool messages (OpenAI defines none): success/error are
    explicit; any other value is ``unknown`` with a warning (never guessed from the text)."""
    if role is not Role.TOOL or raw.get("status") is None:
        return None, StatusSource.NONE
    raw_status = raw["status"]
    status = _TOOL_STATUSES.get(raw_status) if isinstance(raw_status, str) else None
    if status is None:
        state.warn(
            "unknown_tool_status",
            f"unknown tool status {str(raw_status)[:40]!r}; status unknown",
            pointer_join(path, "status"),
        )
        return ToolStatus.UNKNOWN, StatusSource.NONE
    return status, StatusSource.EXPLICIT


def _result_call_id(
    raw: dict[str, Any], raw_role: str, path: str, state: _ParseState
) -> str | None:
    """The call id a tool/function message answers (synthetic for legacy function calls)."""
    call_id = optional(raw, "tool_call_id", str, path)
    if call_id is not None:
        return call_id
    if raw_role == "function":
        return _claim_legacy_call(optional(raw, "name", str, path), path, state)
    if raw_role == "tool":
        state.warn("tool_result_without_call_id", "tool message has no tool_call_id", path)
    return None


# -------------------------------------------------------------------------------- tool calls


def _parse_tool_calls(value: Any, seq: int, path: str, state: _ParseState) -> tuple[ToolCall, ...]:
    return tuple(
        _parse_tool_call(raw, call_id, item_path, state)
        for raw, item_path, call_id in tool_call_objects(value, seq, path, state.warnings)
    )


def _parse_tool_call(raw: dict[str, Any], call_id: str, path: str, state: _ParseState) -> ToolCall:
    call_type = optional(raw, "type", str, path) or "function"
    # "custom" tools (free-form input) carry `custom{name, input}` instead of `function{...}`.
    body_key, arguments_key = (
        ("custom", "input") if call_type == "custom" else ("function", "arguments")
    )
    body = optional(raw, body_key, dict, path)
    if body is None:
        state.warn("malformed_tool_call", f"tool call has no {body_key!r} object", path)
        return ToolCall(call_id=call_id, name="")
    body_path = pointer_join(path, body_key)
    name = optional(body, "name", str, body_path) or ""
    if not name:
        state.warn("missing_tool_name", "tool call has no function name", body_path)
    if call_type == "custom":
        return ToolCall(call_id=call_id, name=name, arguments=body.get("input"))
    arguments, error = parse_tool_arguments(
        body.get(arguments_key), pointer_join(body_path, arguments_key), state.warnings
    )
    return ToolCall(call_id=call_id, name=name, arguments=arguments, arguments_error=error)


def _parse_legacy_function_call(
    value: Any, seq: int, message_path: str, state: _ParseState
) -> ToolCall | None:
    """A legacy ``function_call`` as a ToolCall with a synthetic id (module docstring)."""
    if value is None:
        return None
    path = pointer_join(message_path, "function_call")
    raw = expect(value, dict, path)
    name = optional(raw, "name", str, path) or ""
    arguments, error = parse_tool_arguments(
        raw.get("arguments"), pointer_join(path, "arguments"), state.warnings
    )
    call_id = f"{_LEGACY_CALL_PREFIX}{seq}"
    state.pending_legacy_calls.append((call_id, name))
    return ToolCall(call_id=call_id, name=name, arguments=arguments, arguments_error=error)


def _claim_legacy_call(name: str | None, path: str, state: _ParseState) -> str | None:
    """Give a ``role: "function"`` result the id of the pending legacy call it answers."""
    pending = state.pending_legacy_calls
    if not pending:
        state.warn(
            "unmatched_tool_result",
            "function result with no preceding function_call",
            path,
        )
        return None
    index = next((i for i, (_, call_name) in enumerate(pending) if call_name == name), 0)
    return pending.pop(index)[0]


# ------------------------------------------------------------------------------------ tokens


def _session_tokens(
    envelope: dict[str, Any], messages: tuple[Message, ...], state: _ParseState
) -> TokenUsage:
    """Envelope usage (reported; a list of them summed), else responses[].usage, else
    per-message usage (summed)."""
    usages = read_usages(envelope.get("usage"), "/usage", state.warnings, state.usage)
    responses = optional(envelope, "responses", list, "")
    response_usage = sum_token_usages(_response_usages(responses or [], state), "/responses")
    if usages:
        return _one_usage(usages, "", "usage")  # type: ignore[return-value]
    if not response_usage.is_empty:
        return response_usage
    return sum_token_usages((m.tokens for m in messages if m.tokens is not None), "/messages")


def _one_usage(usages: list[TokenUsage] | None, path: str, key: str) -> TokenUsage | None:
    """One usage (at ``path/key``) as reported; several (a list of per-response usages)
    summed."""
    if not usages:
        return None
    if len(usages) == 1:
        return usages[0]
    return sum_token_usages(usages, pointer_join(path, key))


def _response_usages(responses: list[Any], state: _ParseState) -> list[TokenUsage]:
    usages = []
    for _, item, item_path in enumerate_array(responses, "/responses"):
        response = expect(item, dict, item_path)
        usages.extend(
            read_usages(
                response.get("usage"), pointer_join(item_path, "usage"), state.warnings, state.usage
            )
            or ()
        )
    return usages


def _parse_usage(usage: dict[str, Any], path: str, warnings: list[ParseWarning]) -> TokenUsage:
    """Chat Completions usage (``prompt_tokens``...), or Responses-style (``input_tokens``...)."""
    input_key = _first_present(usage, ("prompt_tokens", "input_tokens")) or "prompt_tokens"
    output_key = (
        _first_present(usage, ("completion_tokens", "output_tokens")) or "completion_tokens"
    )
    input_details = _usage_details(usage, ("prompt_tokens_details", "input_tokens_details"), path)
    output_details = _usage_details(
        usage, ("completion_tokens_details", "output_tokens_details"), path
    )
    return TokenUsage(
        input=usage_count(usage.get(input_key), pointer_join(path, input_key), warnings),
        output=usage_count(usage.get(output_key), pointer_join(path, output_key), warnings),
        total=usage_count(usage.get("total_tokens"), pointer_join(path, "total_tokens"), warnings),
        cached=_detail_count(input_details, "cached_tokens", warnings),
        reasoning=_detail_count(output_details, "reasoning_tokens", warnings),
        source=TokenSource.REPORTED,
    )


def _usage_details(
    usage: dict[str, Any], keys: tuple[str, ...], path: str
) -> tuple[dict[str, Any], str] | None:
    key = _first_present(usage, keys)
    if key is None:
        return None
    return expect(usage[key], dict, pointer_join(path, key)), pointer_join(path, key)


def _detail_count(
    details: tuple[dict[str, Any], str] | None, key: str, warnings: list[ParseWarning]
) -> int | None:
    if details is None:
        return None
    values, path = details
    return usage_count(values.get(key), pointer_join(path, key), warnings)


# ----------------------------------------------------------------------------------- adapter


ADAPTER = ModuleAdapter(FORMAT_ID, RULES, parse)
