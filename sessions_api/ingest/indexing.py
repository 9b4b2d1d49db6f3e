"""From a parsed canonical session to the index columns and derived rows (pure, no Django).

Kept apart from services so the numbers every list, filter and chart depends on can be tested
without a database, and so ingest, edits and re-indexing derive them one way.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sessions_api.domain import (
    LogLevel,
    Message,
    ParseWarning,
    Role,
    Session,
    StatusSource,
    ToolStatus,
)
from sessions_api.formats.pairing import count_recorded_tool_errors
from sessions_api.search.entries import SearchEntryRow, build_entries

PREVIEW_CHARS = 500
# How far ahead of its receipt a document's own times may run (an agent's clock a little fast).
# Beyond that they are clamped to the receipt time for ordering and for the lifecycle policies
# (idle expiry, stuck, retention), with a warning: a session dated in 2199 would otherwise sort
# first in every list forever and never expire or be purged.
FUTURE_TOLERANCE = timedelta(hours=1)
# The furthest a document's own expiry may lie ahead of its receipt; beyond it, this far.
MAX_OWN_EXPIRY = timedelta(days=366)


@dataclass(frozen=True)
class ToolCallRow:
    message_seq: int
    call_id: str
    name: str
    status: str
    status_source: str
    step: str
    occurred_at: datetime
    error_preview: str


@dataclass(frozen=True)
class ErrorRow:
    kind: str
    message: str
    occurred_at: datetime
    message_seq: int | None = None
    tool_name: str = ""
    heuristic: bool = False


@dataclass(frozen=True)
class ModelUsageRow:
    model: str
    message_count: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_input_tokens: int | None = None


@dataclass(frozen=True)
class SessionIndex:
    columns: dict[str, Any]
    tool_calls: list[ToolCallRow] = field(default_factory=list)
    errors: list[ErrorRow] = field(default_factory=list)
    model_usage: list[ModelUsageRow] = field(default_factory=list)
    search_entries: list[SearchEntryRow] = field(default_factory=list)
    #: True when the document has no time of its own (no creation time, no message times), so
    #: ``started_at`` fell back to ``first_received_at``: an index built before the session's
    #: first receipt was known must then be built again (services.py builds it before taking
    #: the row lock, assuming a new session).
    uses_first_received_at: bool = False


def build_index(
    session: Session,
    warnings: list[ParseWarning],
    *,
    first_received_at: datetime,
    received_at: datetime,
) -> SessionIndex:
    """Index columns (as Session model field values) and derived rows for one version."""
    message_times = [m.timestamp for m in session.messages if m.timestamp is not None]
    started_at = session.created_at or (min(message_times) if message_times else None)
    updated_at = session.updated_at or (max(message_times) if message_times else None)
    uses_first_received_at = started_at is None
    started_at = started_at or first_received_at
    updated_at = updated_at or received_at
    updated_at = max(updated_at, started_at)
    ceiling = received_at + FUTURE_TOLERANCE
    future = updated_at > ceiling
    if future:
        _warn_once(
            warnings,
            ParseWarning(
                code="time_in_future",
                message=f"the document's times run to {updated_at.isoformat()}, ahead of its "
                f"receipt at {received_at.isoformat()}; it is ordered and expired by its receipt",
            ),
        )
        started_at, updated_at = min(started_at, received_at), received_at
    expires_at = session.expires_at
    if expires_at is not None and expires_at > received_at + MAX_OWN_EXPIRY:
        _warn_once(
            warnings,
            ParseWarning(
                code="expiry_too_far",
                message=f"the document expires at {expires_at.isoformat()}; it expires "
                f"{MAX_OWN_EXPIRY.days} days after its receipt instead",
            ),
        )
        expires_at = received_at + MAX_OWN_EXPIRY

    tool_calls = _tool_call_rows(session.messages, fallback_time=updated_at)
    errors = _error_rows(session, fallback_time=updated_at)
    if future:
        tool_calls = [_no_later(row, ceiling, received_at) for row in tool_calls]
        errors = [_no_later(row, ceiling, received_at) for row in errors]
    recorded_errors = [e for e in errors if e.kind != "log_warning" and not e.heuristic]
    tokens = session.tokens
    columns: dict[str, Any] = {
        "format_variant": session.format_variant,
        "status": session.status.value,
        "raw_status": (session.raw_status or "")[:64],
        "agent": (session.agent_name or "")[:255],
        "user": (session.user_id or "")[:255],
        "title": (session.title or "")[:500],
        "model_names": session.models,
        "parent_external_id": (session.parent_external_id or "")[:512],
        "message_count": len(session.messages),
        "tool_call_count": len(tool_calls),
        "tool_error_count": count_recorded_tool_errors(session.messages),
        "error_count": len(recorded_errors),
        "warning_count": sum(1 for e in errors if e.kind == "log_warning") + len(warnings),
        "has_errors": bool(recorded_errors),
        "input_tokens": tokens.input,
        "output_tokens": tokens.output,
        "total_tokens": tokens.total,
        "tokens_source": "" if tokens.is_empty else tokens.source.value,
        "started_at": started_at,
        "updated_at": updated_at,
        "expires_at": expires_at,
        "expire_after_s": session.expire_after_s,
        "revision": session.revision,
        "warnings": [
            {"code": w.code, "message": w.message, "path": w.path} for w in warnings[:100]
        ],
    }
    return SessionIndex(
        columns=columns,
        tool_calls=tool_calls,
        errors=errors,
        model_usage=_model_usage_rows(session),
        search_entries=build_entries(session),
        uses_first_received_at=uses_first_received_at,
    )


def _warn_once(warnings: list[ParseWarning], warning: ParseWarning) -> None:
    """Add ``warning`` unless one of its code is there (the index may be built twice)."""
    if all(existing.code != warning.code for existing in warnings):
        warnings.append(warning)


_Row = TypeVar("_Row", ToolCallRow, ErrorRow)


def _no_later(row: _Row, ceiling: datetime, clamped: datetime) -> _Row:
    """``row`` with an occurrence past ``ceiling`` moved to ``clamped`` (the receipt)."""
    if row.occurred_at > ceiling:
        return dataclasses.replace(row, occurred_at=clamped)
    return row


def _tool_call_rows(messages: tuple[Message, ...], *, fallback_time: datetime) -> list[ToolCallRow]:
    rows = []
    for message in messages:
        for call in message.tool_calls:
            preview = ""
            if call.status is ToolStatus.ERROR:
                preview = _preview(call.result_content)
            rows.append(
                ToolCallRow(
                    message_seq=message.seq,
                    call_id=call.call_id[:255],
                    name=(call.name or "(unnamed)")[:255],
                    status=call.status.value,
                    status_source=call.status_source.value,
                    step=(message.step or "")[:255],
                    occurred_at=message.timestamp or fallback_time,
                    error_preview=preview,
                )
            )
    return rows


def _error_rows(session: Session, *, fallback_time: datetime) -> list[ErrorRow]:
    rows: list[ErrorRow] = []
    for message in session.messages:
        for call in message.tool_calls:
            if call.status is ToolStatus.ERROR:
                rows.append(
                    ErrorRow(
                        kind="tool_error",
                        message=_preview(call.result_content) or _preview(f"{call.name} failed"),
                        occurred_at=message.timestamp or fallback_time,
                        message_seq=message.seq,
                        tool_name=(call.name or "")[:255],
                        heuristic=call.status_source is StatusSource.HEURISTIC,
                    )
                )
        if message.is_error:
            rows.append(
                ErrorRow(
                    kind="message_error",
                    message=_preview(message.error_code or message.content_text or "error"),
                    occurred_at=message.timestamp or fallback_time,
                    message_seq=message.seq,
                )
            )
    for entry in session.logs:
        if entry.level is LogLevel.ERROR:
            kind = "log_error"
        elif entry.level is LogLevel.WARN:
            kind = "log_warning"
        else:
            continue
        rows.append(
            ErrorRow(
                kind=kind,
                message=_preview(entry.message) or kind,
                occurred_at=entry.timestamp or fallback_time,
            )
        )
    return rows


MODEL_NAME_CHARS = 255


def _model_usage_rows(session: Session) -> list[ModelUsageRow]:
    per_model: dict[str, dict[str, Any]] = {}

    def entry_for(model: str) -> dict[str, Any]:
        # Keyed by the name as stored, so two names that differ only past the column width
        # share one row instead of clashing on the (session, model) constraint.
        empty = {"message_count": 0, "input": None, "output": None, "total": None, "cached": None}
        return per_model.setdefault(model[:MODEL_NAME_CHARS], empty)

    any_message_tokens = False
    for message in session.messages:
        if message.role is not Role.ASSISTANT or not message.model:
            continue
        entry = entry_for(message.model)
        entry["message_count"] += 1
        if message.tokens is not None and not message.tokens.is_empty:
            any_message_tokens = True
            for key, value in (
                ("input", message.tokens.input),
                ("output", message.tokens.output),
                ("total", message.tokens.total),
                ("cached", message.tokens.cached),
            ):
                if value is not None:
                    entry[key] = (entry[key] or 0) + value
    for model in session.models:
        entry_for(model)

    tokens = session.tokens
    if not any_message_tokens and not tokens.is_empty:
        # Session-level totals only: attribute them to the one model if there is exactly one;
        # otherwise keep them unattributed rather than invent a split.
        target = next(iter(per_model)) if len(per_model) == 1 else ""
        entry_for(target).update(
            input=tokens.input, output=tokens.output, total=tokens.total, cached=tokens.cached
        )
    return [
        ModelUsageRow(
            model=model,
            message_count=entry["message_count"],
            input_tokens=entry["input"],
            output_tokens=entry["output"],
            total_tokens=entry["total"],
            cached_input_tokens=entry["cached"],
        )
        for model, entry in per_model.items()
    ]


def _preview(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content[:PREVIEW_CHARS]
    return json.dumps(content, ensure_ascii=False, default=str)[:PREVIEW_CHARS]
