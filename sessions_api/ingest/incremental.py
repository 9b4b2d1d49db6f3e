"""Incremental derivation: a new version that only appends messages to the latest one
re-derives only what it appends, and merges that with what is stored for the latest.

Pure: the caller (services.py) reads the stored derivation and writes the result. The merge
gives exactly what ``build_index`` gives for the whole document, or None when it could not be
sure of that; the caller then parses the document whole. It is sure only when:

- the format's hook (formats/growing.py) says no earlier message carries a time or token usage
  (so every derived row takes the session's end as its time, and tokens per model come from the
  session's totals), and no appended message does either;
- the latest version's only parse warning, if any, is about tool calls without a result: the
  messages from the first of those on are re-derived with the appended ones (``start``), so a
  result appended later pairs as a whole parse would pair it;
- the re-derived messages raise no parse warning but that same one, answer no call before
  ``start``, and reuse no call id from before ``start``;
- the session has no logs and no steps (their rows and model names are not per message);
- the stored search entries number the timeline events of the messages before ``start`` (one
  entry per event): the re-derived messages' entries follow them. Those earlier events are
  the same in the new version (no re-derived message answers a call before ``start``), so only
  the entries from ``start`` on and the session's own entry are written anew.

tests/ingest/test_incremental_properties.py checks the merge against whole parses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sessions_api.domain import ParseWarning, Role, StatusSource, ToolStatus
from sessions_api.domain import Session as CanonicalSession
from sessions_api.ingest.indexing import (
    MODEL_NAME_CHARS,
    ErrorRow,
    ModelUsageRow,
    ToolCallRow,
    build_index,
)
from sessions_api.search.entries import SESSION_FIELDS, SearchEntryRow, session_entry

#: The only parse warning a latest version may have for a merge: its calls still waiting for a
#: result are re-derived with the appended messages.
PENDING_CALLS_WARNING = "tool_call_without_result"


@dataclass(frozen=True)
class StoredDerivation:
    """What is stored of the latest version's derivation that a merge needs."""

    message_count: int
    tool_call_count: int
    tool_error_count: int
    error_count: int
    warning_count: int
    warnings: list[dict[str, Any]]
    model_names: list[str]
    model_usage: list[ModelUsageRow]
    #: (status, status_source) of the stored tool-call rows of messages from ``start`` on.
    replaced_tool_calls: list[tuple[str, str]]
    #: (kind, heuristic) of the stored error rows of messages from ``start`` on.
    replaced_errors: list[tuple[str, bool]]
    #: Timeline events of the messages before ``start``, from the stored search entries; None
    #: when they do not tell (a session not indexed for search yet).
    events_before_start: int | None = None


@dataclass(frozen=True)
class MergedIndex:
    columns: dict[str, Any]
    #: Rows of the messages from ``start`` on; the stored ones from there are replaced.
    tool_calls: list[ToolCallRow]
    errors: list[ErrorRow]
    #: Every row: counts and tokens per model change with each version.
    model_usage: list[ModelUsageRow]
    #: The session's own entry and those of the events of messages from ``start`` on; the
    #: stored ones of those are replaced.
    search_entries: list[SearchEntryRow]
    start: int
    #: The first event of the message ``start``: the stored entries from it on are replaced.
    first_event: int
    warnings: list[ParseWarning]


def may_merge(previous: StoredDerivation) -> bool:
    """Whether the stored derivation allows a merge at all (before parsing anything)."""
    return previous.warning_count == len(previous.warnings) and all(
        warning.get("code") == PENDING_CALLS_WARNING for warning in previous.warnings
    )


def merge(
    previous: StoredDerivation,
    rederived: CanonicalSession,
    warnings: list[ParseWarning],
    *,
    start: int,
    earlier_call_ids_reused: bool,
    first_received_at: datetime,
    received_at: datetime,
) -> MergedIndex | None:
    """The index of the whole new version, from the stored derivation of the latest version and
    ``rederived``: the new document's session with only its messages from ``start`` on.
    ``earlier_call_ids_reused``: whether a re-derived call has the id of a call before
    ``start``. None when the merge could differ from a whole parse (module docstring)."""
    if not may_merge(previous):
        return None
    if any(w.code != PENDING_CALLS_WARNING for w in warnings):
        return None
    if earlier_call_ids_reused or rederived.logs or rederived.steps:
        return None
    messages = rederived.messages
    for offset, message in enumerate(messages):
        if message.seq != start + offset or message.timestamp is not None:
            return None
        if message.tokens is not None and not message.tokens.is_empty:
            return None
    if start > previous.message_count or previous.events_before_start is None:
        return None

    index = build_index(
        rederived, warnings, first_received_at=first_received_at, received_at=received_at
    )
    columns = dict(index.columns)
    kept_calls = previous.tool_call_count - len(previous.replaced_tool_calls)
    kept_tool_errors = previous.tool_error_count - sum(
        1
        for status, source in previous.replaced_tool_calls
        if status == ToolStatus.ERROR.value
        and source in (StatusSource.EXPLICIT.value, StatusSource.CONVENTION.value)
    )
    kept_errors = previous.error_count - sum(
        1 for kind, heuristic in previous.replaced_errors if kind != "log_warning" and not heuristic
    )
    columns["message_count"] = start + len(messages)
    columns["tool_call_count"] = kept_calls + columns["tool_call_count"]
    columns["tool_error_count"] = kept_tool_errors + columns["tool_error_count"]
    columns["error_count"] = kept_errors + columns["error_count"]
    columns["has_errors"] = columns["error_count"] > 0
    names = dict.fromkeys(previous.model_names)
    names.update(dict.fromkeys(columns["model_names"]))
    columns["model_names"] = list(names)
    own = session_entry(rederived, models=columns["model_names"])
    offset = previous.events_before_start
    entries = [
        dataclasses.replace(entry, event_index=entry.event_index + offset)
        for entry in index.search_entries
        if entry.event_index != SESSION_FIELDS
    ]
    return MergedIndex(
        columns=columns,
        tool_calls=index.tool_calls,
        errors=index.errors,
        model_usage=_merged_model_usage(previous, rederived, start=start),
        search_entries=([own] if own is not None else []) + entries,
        start=start,
        first_event=offset,
        warnings=warnings,
    )


def _merged_model_usage(
    previous: StoredDerivation, rederived: CanonicalSession, *, start: int
) -> list[ModelUsageRow]:
    """indexing._model_usage_rows over the whole document, when no message carries tokens (a
    condition of the merge): assistant messages per model, then the session's totals."""
    counts: dict[str, int] = {}
    for row in previous.model_usage:
        # "" only ever holds unattributed session totals, which are worked out afresh below.
        if row.model or row.message_count:
            counts[row.model] = row.message_count
    for message in rederived.messages:
        if message.seq < previous.message_count:
            continue  # counted in the stored rows (re-derived for its calls' results)
        if message.role is Role.ASSISTANT and message.model:
            key = message.model[:MODEL_NAME_CHARS]
            counts[key] = counts.get(key, 0) + 1
    for model in rederived.models:
        counts.setdefault(model[:MODEL_NAME_CHARS], 0)
    tokens: dict[str, dict[str, int | None]] = {}
    if not rederived.tokens.is_empty:
        target = next(iter(counts)) if len(counts) == 1 else ""
        counts.setdefault(target, 0)
        tokens[target] = {
            "input_tokens": rederived.tokens.input,
            "output_tokens": rederived.tokens.output,
            "total_tokens": rederived.tokens.total,
            "cached_input_tokens": rederived.tokens.cached,
        }
    return [
        ModelUsageRow(model=model, message_count=count, **tokens.get(model, {}))
        for model, count in counts.items()
    ]
