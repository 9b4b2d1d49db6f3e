"""The canonical session: plain typed values every format adapter maps onto.

Standard library only (no Django): adapters, storage and the REST layer all speak these types.
sessions_api/formats/README.md describes how each framework maps onto these values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class SessionStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    ABORTED = "aborted"
    ABANDONED = "abandoned"
    EXPIRED = "expired"
    ERROR = "error"
    UNKNOWN = "unknown"


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    OTHER = "other"


class ToolStatus(StrEnum):
    SUCCESS = "success"
    ERROR = "error"
    UNKNOWN = "unknown"
    # The call has no result in the document (aborted turn, still running, lost).
    PENDING = "pending"


class StatusSource(StrEnum):
    """How a tool status was learned: the UI marks anything but `explicit` as inferred."""

    EXPLICIT = "explicit"
    CONVENTION = "convention"
    HEURISTIC = "heuristic"
    NONE = "none"


class TimestampSource(StrEnum):
    EXPLICIT = "explicit"
    DERIVED_FROM_ID = "derived-from-id"
    NONE = "none"


class LogLevel(StrEnum):
    LOG = "log"
    ERROR = "error"
    WARN = "warn"
    DEBUG = "debug"
    VERBOSE = "verbose"
    EVENT = "event"


class TokenSource(StrEnum):
    REPORTED = "reported"
    SUMMED = "summed"


@dataclass(frozen=True, slots=True)
class ParseWarning:
    """Something in a document that was odd but not fatal: it is shown, never silently dropped."""

    code: str
    message: str
    path: str = ""


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input: int | None = None
    output: int | None = None
    total: int | None = None
    reasoning: int | None = None
    cached: int | None = None
    cache_write: int | None = None
    source: TokenSource = TokenSource.REPORTED

    @property
    def is_empty(self) -> bool:
        return self.input is None and self.output is None and self.total is None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call an assistant turn made, paired with its result by call id (never by position)."""

    call_id: str
    name: str
    # Parsed arguments, or the raw string when it was not JSON (then `arguments_error` says why).
    arguments: Any = None
    arguments_error: str | None = None
    result_content: Any = None
    # seq of the message that carried the result; None when no result was found.
    result_seq: int | None = None
    status: ToolStatus = ToolStatus.PENDING
    status_source: StatusSource = StatusSource.NONE


@dataclass(frozen=True, slots=True)
class Message:
    seq: int
    role: Role
    content_text: str = ""
    # Structured content (content blocks, an object from structured output) when not plain text.
    content_parts: Any = None
    external_id: str | None = None
    author: str | None = None
    timestamp: datetime | None = None
    timestamp_source: TimestampSource = TimestampSource.NONE
    step: str | None = None
    namespace: str | None = None
    flow: str | None = None
    model: str | None = None
    tokens: TokenUsage | None = None
    finish_reason: str | None = None
    is_error: bool = False
    error_code: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    # For a tool-result message: the call id it answers.
    tool_call_id: str | None = None
    tool_status: ToolStatus | None = None
    tool_status_source: StatusSource = StatusSource.NONE
    # The role exactly as the document wrote it (for roles mapped to `other`).
    raw_role: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepState:
    name: str
    order: int
    state: Any = None
    is_active: bool | None = None
    model: str | None = None
    model_params: Any = None
    saved_at: datetime | None = None
    level: int = 1
    flow: str | None = None


@dataclass(frozen=True, slots=True)
class LogEntry:
    level: LogLevel
    message: str
    timestamp: datetime | None = None
    extra: Any = None
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Session:
    source_format: str
    format_variant: str = ""
    external_id: str | None = None
    user_id: str | None = None
    agent_name: str | None = None
    status: SessionStatus = SessionStatus.UNKNOWN
    raw_status: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    expire_after_s: int | None = None
    title: str | None = None
    # Optimistic-concurrency token some formats carry (Picoflow v1.5 `revision`).
    revision: int | None = None
    parent_external_id: str | None = None
    state: Any = None
    context: Any = None
    tokens: TokenUsage = field(default_factory=TokenUsage)
    messages: tuple[Message, ...] = ()
    steps: tuple[StepState, ...] = ()
    logs: tuple[LogEntry, ...] = ()
    # Flow / namespace layout: [{"name": flow, "namespaces": [...], "current_step": ...}, ...]
    flows: tuple[dict[str, Any], ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [call for message in self.messages for call in message.tool_calls]

    @property
    def models(self) -> list[str]:
        """Every model named by a step or a message, in first-seen order."""
        seen: dict[str, None] = {}
        for step in self.steps:
            if step.model:
                seen.setdefault(step.model, None)
        for message in self.messages:
            if message.model:
                seen.setdefault(message.model, None)
        return list(seen)


@dataclass(frozen=True, slots=True)
class ParsedSession:
    """What an adapter returns: the session plus everything it noticed on the way."""

    session: Session
    warnings: tuple[ParseWarning, ...] = ()
