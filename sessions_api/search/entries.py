"""What a session is searched by: one entry per timeline event, plus one for the session's own
fields (pure, no Django).

An entry's text is everything its event says (message text and structured parts, tool name,
call id, arguments and result, log message and extra, step and flow, ids, model), flattened
to words with runs of whitespace folded to one space, so a phrase matches across a line
break. Entries are keyed by the timeline event they come from, so a match can name its event
and a version that only appends events only adds entries. Every event has its entry, also one
that says nothing (empty text, which no term matches): the stored entries then number a
session's events, which is what lets an appended save index only its new events
(ingest/incremental.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sessions_api.domain import LogEntry, Message, Session
from sessions_api.sessions.timeline import timeline_items

#: The event index of the entry that holds the session's own fields (ids, title, agent, user).
SESSION_FIELDS = -1


# Per event kind, the fields whose values are searched, in the order a snippet shows them.
_EVENT_FIELDS = {
    "message": ("text", "parts", "author", "model", "error_code", "external_id", "extra"),
    "tool_call": ("name", "call_id", "arguments", "arguments_error", "result"),
    "tool_result": ("call_id", "result"),
    "log": ("level", "message", "extra"),
    "step": ("step", "flow"),
}


@dataclass(frozen=True)
class SearchEntryRow:
    event_index: int
    seq: int | None
    kind: str
    text: str


def build_entries(
    session: Session, events: list[dict[str, Any]] | None = None
) -> list[SearchEntryRow]:
    """The entries of one version: the session's fields (when it has any), then one per
    timeline event. ``events`` is the session's timeline when the caller has it already;
    without it the texts are read from the session's objects in timeline order, without laying
    out the timeline (about half the cost of building the entries)."""
    own = session_entry(session)
    rows = [own] if own is not None else []
    if events is not None:
        for event in events:
            rows.append(
                SearchEntryRow(
                    event_index=event["index"],
                    seq=event.get("seq"),
                    kind=event["kind"],
                    text=event_text(event),
                )
            )
        return rows
    for index, (kind, source, call, _) in enumerate(timeline_items(session)):
        if kind == "log":
            entry: LogEntry = source  # type: ignore[assignment]
            seq, values = None, (entry.level.value, entry.message, entry.extra)
        else:
            message: Message = source  # type: ignore[assignment]
            seq = message.seq
            if kind == "message":
                values = (
                    message.content_text,
                    message.content_parts,
                    message.author,
                    message.model,
                    message.error_code,
                    message.external_id,
                    message.extra,
                )
            elif kind == "tool_call":
                assert call is not None
                values = (
                    call.name,
                    call.call_id,
                    call.arguments,
                    call.arguments_error,
                    call.result_content,
                )
            elif kind == "tool_result":
                result = message.content_parts
                values = (message.tool_call_id, message.content_text if result is None else result)
            else:  # step
                values = (message.step, message.flow)
        rows.append(
            SearchEntryRow(
                event_index=index, seq=seq, kind=kind, text=_text(values, kind == "message")
            )
        )
    return rows


def session_entry(session: Session, models: list[str] | None = None) -> SearchEntryRow | None:
    """The entry of the session's own fields, or None when it has none; ``models``: the
    session's models when the caller knows them better (a merge sees only some messages)."""
    own = normalise(
        " ".join(
            value
            for value in (
                session.external_id,
                session.title,
                session.agent_name,
                session.user_id,
                session.parent_external_id,
                " ".join(session.models if models is None else models),
            )
            if value
        )
    )
    if not own:
        return None
    return SearchEntryRow(event_index=SESSION_FIELDS, seq=None, kind="session", text=own)


def event_text(event: dict[str, Any]) -> str:
    """Everything one timeline event says, as one line of words."""
    kind = event.get("kind", "")
    fields = _EVENT_FIELDS.get(kind, ())
    return _text([event.get(name) for name in fields], kind == "message")


def _text(values: Sequence[Any], has_parts: bool) -> str:
    """The values of an event's searched fields (``_EVENT_FIELDS``, in that order) as one line
    of words. A message's plain-text parts (its second field, a string) repeat its text."""
    parts: list[str] = []
    for position, value in enumerate(values):
        if not value:
            continue
        if type(value) is str:  # the common case, without the generic walk
            if not (has_parts and position == 1):
                parts.append(value)
        else:
            _add_strings(value, parts)
    return normalise(" ".join(parts))


def normalise(text: str) -> str:
    """Runs of whitespace (and NUL, which PostgreSQL refuses in text) as one space."""
    if "\x00" in text:
        text = text.replace("\x00", " ")
    return " ".join(text.split())


def _add_strings(value: Any, out: list[str]) -> None:
    """Append the words of a JSON value to ``out``: its strings, numbers and object keys,
    depth first (a loop over lists and objects: generators nested per level cost a third of
    building the entries)."""
    kind = type(value)
    if kind is str:
        out.append(value)
    elif kind is dict:
        for key, item in value.items():
            out.append(key if type(key) is str else str(key))
            if item is not None and type(item) is not bool:
                _add_strings(item, out)
    elif kind is list or kind is tuple:
        for item in value:
            if item is not None and type(item) is not bool:
                _add_strings(item, out)
    elif value is None or isinstance(value, bool):
        return
    elif isinstance(value, str):
        out.append(value)
    elif isinstance(value, int | float):
        out.append(str(value))
    elif isinstance(value, dict):
        _add_strings(dict(value), out)
    elif isinstance(value, list | tuple):
        _add_strings(list(value), out)
    else:
        out.append(str(value))
