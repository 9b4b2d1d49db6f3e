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

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sessions_api.domain import Session
from sessions_api.sessions.timeline import build_timeline

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
    timeline event. ``events`` is the session's timeline when the caller has it already."""
    own = session_entry(session)
    rows = [own] if own is not None else []
    for event in events if events is not None else build_timeline(session):
        rows.append(
            SearchEntryRow(
                event_index=event["index"],
                seq=event.get("seq"),
                kind=event["kind"],
                text=event_text(event),
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
    fields = _EVENT_FIELDS.get(event.get("kind", ""), ())
    parts: list[str] = []
    for name in fields:
        value = event.get(name)
        if not value:
            continue
        if type(value) is str:  # the common case, without the generic walk
            if name != "parts":  # plain text parts repeat "text"
                parts.append(value)
        else:
            parts.extend(_strings(value))
    return normalise(" ".join(parts))


def normalise(text: str) -> str:
    """Runs of whitespace (and NUL, which PostgreSQL refuses in text) as one space."""
    if "\x00" in text:
        text = text.replace("\x00", " ")
    return " ".join(text.split())


def _strings(value: Any) -> Iterator[str]:
    """The words of a JSON value: its strings, numbers and object keys, depth first."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, int | float):
        yield str(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    else:
        yield str(value)
