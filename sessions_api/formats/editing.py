"""The editor contract: what an editor may change in a session document, and the operations
that change it in the framework's own shape (pure: no Django, no storage). Each format's editor
is ``formats/<format>/edit.py``; the registry (``formats/registry.py``) holds one per format id.

An edit never invents a shape: step state goes back into Picoflow's ``steps[].state`` (with its
``_saveOn`` refreshed), LangGraph state into ``values``, OpenAI chat state into ``variables``,
and so on, so the agent can load the edited document back. The ingest path parses every edited
document again with the format's adapter; an edit that breaks the document is refused there.

Each editor describes the document's editable *parts* (a JSON pointer each, with the keys the
framework manages itself hidden from the editor and kept on save), the statuses its status field
can take, whether expiry lives in the document, and where appended messages go. Formats with no
editable state raise :class:`NotEditable` with a message saying so.

The agent patch (``PATCH /api/v1/sessions/{id}/document``) is :class:`DocumentPatch`::

    {"messages": [...framework-shaped messages, appended in order...],
     "state": {...RFC 7386 merge patch: objects merge, null deletes a key...},
     "step": "StepName",        # Picoflow: whose state "state" merges into (default: current)
     "namespace": "memory-key", # Picoflow: which memory namespace gets the messages
     "status": "completed"}     # a canonical status the format's status field can express
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from sessions_api.errors import NotEditable
from sessions_api.jsondiff import MISSING, merge_patch, pointer, resolve, same, split_pointer

MAX_PATCH_MESSAGES = 1000
# Keys that name a session in the documents we know (renamed when a session is branched).
SESSION_ID_KEYS = frozenset(
    {"id", "_id", "session_id", "sessionId", "thread_id", "conversation_id", "conversationId"}
)


@dataclass(frozen=True)
class Part:
    key: str  # "state", "metadata", "context:0", "step:0:2" ...
    label: str
    pointer: str  # where the value lives in the document
    kind: str = "state"  # state, step, metadata, context
    # Keys the framework maintains inside the value: hidden from the editor, kept on save.
    managed_keys: tuple[str, ...] = ()
    # A save-time stamp the framework writes into the value (Picoflow steps' ``_saveOn``).
    stamp_key: str | None = None


@dataclass(frozen=True)
class Capabilities:
    parts: tuple[Part, ...] = ()
    statuses: tuple[str, ...] = ()  # canonical statuses a status edit may set
    document_expiry: bool = False  # expiry lives in the document (Picoflow v1 expireAfter)
    can_append: bool = False
    reason: str = ""  # why nothing (or little) is editable, for people


@dataclass(frozen=True)
class DocumentPatch:
    messages: list[Any] = field(default_factory=list)
    state: dict[str, Any] | None = None
    step: str | None = None
    namespace: str | None = None
    status: str | None = None


# --- the editor contract and the shared behaviour ---------------------------------------------


class Editor:
    format_id: ClassVar[str] = ""
    # canonical status -> the value the format writes; empty when it has no status field
    status_values: ClassVar[dict[str, str]] = {}

    def parts(self, doc: Any) -> list[Part]:
        return []

    def not_editable_reason(self, doc: Any) -> str:
        return f"{self.format_id} documents record no state an editor can change"

    def status_pointer(self, doc: Any) -> str | None:
        return None

    def expiry_pointer(self, doc: Any) -> str | None:
        return None

    def message_list(self, doc: Any, namespace: str | None) -> list[Any]:
        raise NotEditable(f"appending messages is not supported for {self.format_id} documents")

    def merge_target(self, doc: Any, step: str | None) -> Part:
        parts = {part.key: part for part in self.parts(doc)}
        if step is not None:
            raise NotEditable(f"{self.format_id} documents have no steps", path="/step")
        for key in ("state", "metadata"):
            if key in parts:
                return parts[key]
        raise NotEditable(self.not_editable_reason(doc), path="/state")

    def touch(self, doc: Any, *, now: datetime, revision: int | None) -> None:
        """Refresh what the framework itself changes on every save (times, CAS counters)."""

    # -- shared ---------------------------------------------------------------------------

    def capabilities(self, doc: Any) -> Capabilities:
        parts = tuple(self.parts(doc))
        statuses = tuple(self.status_values) if self.status_pointer(doc) else ()
        try:
            self.message_list(copy.deepcopy(doc), None)
            can_append = True
        except NotEditable:
            can_append = False
        return Capabilities(
            parts=parts,
            statuses=statuses,
            document_expiry=self.expiry_pointer(doc) is not None,
            can_append=can_append,
            reason="" if parts else self.not_editable_reason(doc),
        )

    def part(self, doc: Any, key: str) -> Part:
        for part in self.parts(doc):
            if part.key == key:
                return part
        if not self.parts(doc):
            raise NotEditable(self.not_editable_reason(doc), path=key)
        raise NotEditable(f"this document has no editable part {key!r}", path=key)

    def get_part(self, doc: Any, key: str) -> Any:
        part = self.part(doc, key)
        value = resolve(doc, part.pointer)
        value = None if value is MISSING else value
        if isinstance(value, dict) and (part.managed_keys or part.stamp_key):
            hidden = {*part.managed_keys, *([part.stamp_key] if part.stamp_key else [])}
            value = {k: v for k, v in value.items() if k not in hidden}
        return copy.deepcopy(value)

    def set_part(self, doc: Any, key: str, value: Any, *, now: datetime) -> None:
        part = self.part(doc, key)
        old = resolve(doc, part.pointer)
        hidden = [*part.managed_keys, *([part.stamp_key] if part.stamp_key else [])]
        if hidden:
            if not isinstance(value, dict):
                raise NotEditable(f"{part.label} must be a JSON object", path=part.pointer)
            clash = sorted(set(value) & set(hidden))
            if clash:
                raise NotEditable(
                    f"{', '.join(clash)} in {part.label} is managed by the framework",
                    path=part.pointer + pointer(clash[0]),
                )
            merged: dict[str, Any] = {}
            old_dict = old if isinstance(old, dict) else {}
            # Keep the managed keys where they were, then the edited keys in the editor's order.
            for k in old_dict:
                if k in part.managed_keys:
                    merged[k] = old_dict[k]
            merged.update(value)
            if part.stamp_key and part.stamp_key in old_dict:
                merged[part.stamp_key] = stamp_like(old_dict[part.stamp_key], now)
            value = merged
        set_at(doc, part.pointer, copy.deepcopy(value))

    def set_status(self, doc: Any, status: str) -> None:
        where = self.status_pointer(doc)
        if where is None:
            raise NotEditable(
                f"{self.format_id} documents have no status field; the status is derived",
                path="/status",
            )
        if status not in self.status_values:
            raise NotEditable(
                f"{self.format_id} can record the statuses {', '.join(self.status_values)}, "
                f"not {status!r}",
                path=where,
                code="invalid_status",
            )
        set_at(doc, where, self.status_values[status])

    def set_expire_after(self, doc: Any, seconds: int | None) -> None:
        where = self.expiry_pointer(doc)
        if where is None:
            raise NotEditable(f"{self.format_id} documents record no expiry", path="/expiry")
        if seconds is None:
            parts = split_pointer(where)
            parent = resolve(doc, pointer(*parts[:-1]))
            if isinstance(parent, dict):
                parent.pop(parts[-1], None)
        else:
            set_at(doc, where, seconds)


class ReadOnlyEditor(Editor):
    """Formats whose documents keep no state of their own (transcripts, run items)."""

    def __init__(self, format_id: str, reason: str) -> None:
        self.format_id = format_id  # type: ignore[misc]
        self._reason = reason

    def not_editable_reason(self, doc: Any) -> str:
        return self._reason


# --- helpers ----------------------------------------------------------------------------------


def set_at(doc: Any, path: str, value: Any) -> None:
    parts = split_pointer(path)
    if not parts:
        raise NotEditable("cannot replace the whole document here", path=path)
    parent = resolve(doc, pointer(*parts[:-1]))
    if isinstance(parent, dict):
        parent[parts[-1]] = value
    elif isinstance(parent, list) and parts[-1].isdigit() and int(parts[-1]) < len(parent):
        parent[int(parts[-1])] = value
    else:
        raise NotEditable(f"{path}: the document has no place for this value", path=path)


def js_iso(now: datetime) -> str:
    """A JavaScript ``Date.toISOString()`` string (what the TypeScript frameworks write)."""
    moment = now.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def stamp_like(old: Any, now: datetime) -> Any:
    """``now`` written the way ``old`` was: Mongo extended JSON, epoch seconds or ISO text."""
    if isinstance(old, dict) and "$date" in old:
        return {"$date": js_iso(now)}
    if isinstance(old, int | float) and not isinstance(old, bool):
        return now.timestamp()
    if isinstance(old, str) and (old.endswith("Z") or not old):
        return js_iso(now)
    return now.astimezone(UTC).isoformat()


def messages_array(doc: Any) -> list[Any]:
    """The document's top-level ``messages`` array, where chat-shaped formats append."""
    if isinstance(doc, dict) and isinstance(doc.get("messages"), list):
        return doc["messages"]
    raise NotEditable("this document has no messages array", path="/messages")


def restamp_updated_at(doc: Any, now: datetime) -> None:
    """A top-level ``updated_at`` text, where there is one, set to ``now`` in its own style."""
    if isinstance(doc, dict) and isinstance(doc.get("updated_at"), str):
        doc["updated_at"] = stamp_like(doc["updated_at"], now)


def first_key(doc: dict[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` present in ``doc`` (frameworks spell a field snake or camel)."""
    return next((key for key in keys if key in doc), None)


# --- the lookup by format id -------------------------------------------------------------------


def editor_for(format_id: str) -> Editor:
    # The registry imports every format's edit module, and each of those builds on this
    # contract, so the registry can only be read once this module is loaded.
    from sessions_api.formats.registry import EDITORS

    editor = EDITORS.get(format_id)
    if editor is None:
        raise NotEditable(f"no editor for format {format_id!r}")
    return editor


# --- operations (each returns a new document; the input is never changed) ---------------------


def capabilities(format_id: str, doc: Any) -> Capabilities:
    return editor_for(format_id).capabilities(doc)


def get_part(format_id: str, doc: Any, key: str) -> Any:
    return editor_for(format_id).get_part(doc, key)


def _finish(editor: Editor, doc: Any, result: Any, *, now: datetime, revision: int | None) -> Any:
    """``doc`` itself when the edit changed nothing (no save stamp either), else ``result``
    with what the framework refreshes on every save."""
    if same(doc, result):
        return doc
    editor.touch(result, now=now, revision=revision)
    return result


def edit_part(
    format_id: str, doc: Any, key: str, value: Any, *, now: datetime, revision: int | None
) -> Any:
    editor = editor_for(format_id)
    if same(editor.get_part(doc, key), value):
        return doc
    result = copy.deepcopy(doc)
    editor.set_part(result, key, value, now=now)
    editor.touch(result, now=now, revision=revision)
    return result


def edit_status(
    format_id: str, doc: Any, status: str, *, now: datetime, revision: int | None
) -> Any:
    editor = editor_for(format_id)
    result = copy.deepcopy(doc)
    editor.set_status(result, status)
    return _finish(editor, doc, result, now=now, revision=revision)


def edit_expire_after(
    format_id: str, doc: Any, seconds: int | None, *, now: datetime, revision: int | None
) -> Any:
    editor = editor_for(format_id)
    result = copy.deepcopy(doc)
    editor.set_expire_after(result, seconds)
    return _finish(editor, doc, result, now=now, revision=revision)


def apply_patch(
    format_id: str, doc: Any, patch: DocumentPatch, *, now: datetime, revision: int | None
) -> Any:
    """Append ``patch.messages``, merge ``patch.state`` (RFC 7386), set ``patch.status``."""
    editor = editor_for(format_id)
    result = copy.deepcopy(doc)
    if patch.messages:
        editor.message_list(result, patch.namespace).extend(copy.deepcopy(patch.messages))
    if patch.state is not None:
        target = editor.merge_target(result, patch.step)
        current = editor.get_part(result, target.key)
        editor.set_part(result, target.key, merge_patch(current or {}, patch.state), now=now)
    elif patch.step is not None and format_id == "picoflow":
        editor.merge_target(result, patch.step)  # still say so when the step does not exist
    if patch.status is not None:
        editor.set_status(result, patch.status)
    return _finish(editor, doc, result, now=now, revision=revision)


def parse_patch(value: Any, *, statuses: tuple[str, ...]) -> DocumentPatch:
    """A :class:`DocumentPatch` from a decoded request body; NotEditable (code ``invalid_patch``)
    with a JSON pointer when it is not one."""
    if not isinstance(value, dict):
        raise NotEditable("the patch must be a JSON object", path="", code="invalid_patch")
    unknown = sorted(set(value) - {"messages", "state", "step", "namespace", "status", "reason"})
    if unknown:
        raise NotEditable(
            f"unknown patch key {unknown[0]!r}; use messages, state, step, namespace, status",
            path=pointer(unknown[0]),
            code="invalid_patch",
        )
    messages = value.get("messages", [])
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise NotEditable(
            "messages must be an array of message objects", path="/messages", code="invalid_patch"
        )
    if len(messages) > MAX_PATCH_MESSAGES:
        raise NotEditable(
            f"at most {MAX_PATCH_MESSAGES} messages per patch", path="/messages", code="too_many"
        )
    state = value.get("state")
    if state is not None and not isinstance(state, dict):
        raise NotEditable("state must be an object", path="/state", code="invalid_patch")
    for name in ("step", "namespace", "status"):
        if value.get(name) is not None and not isinstance(value[name], str):
            raise NotEditable(f"{name} must be a string", path=f"/{name}", code="invalid_patch")
    status = value.get("status")
    if status is not None and status not in statuses:
        raise NotEditable(
            f"status must be one of {', '.join(statuses)}", path="/status", code="invalid_patch"
        )
    if not messages and state is None and status is None:
        raise NotEditable(
            "an empty patch: send messages, state or status", path="", code="empty_patch"
        )
    return DocumentPatch(
        messages=messages,
        state=state,
        step=value.get("step"),
        namespace=value.get("namespace"),
        status=status,
    )


# --- branching: a copy of the document under a new session id ---------------------------------


def document_session_id(doc: Any, external_id: str) -> str | None:
    """The session id as the document writes it (an ADK external id is app/user/id)."""
    for candidate in (external_id, external_id.rsplit("/", 1)[-1]):
        if any(True for _ in _id_slots(doc, candidate)):
            return candidate
    return None


def rename_session(doc: Any, *, old_id: str, new_id: str) -> Any:
    """A copy of ``doc`` whose session-id fields read ``new_id`` instead of ``old_id`` (a
    Mongo ``_id`` object gets a fresh ObjectId, so the branch never overwrites its parent)."""
    result = copy.deepcopy(doc)
    for container, key in list(_id_slots(result, old_id)):
        container[key] = new_id
    if isinstance(result, dict) and isinstance(result.get("_id"), dict):
        oid = result["_id"].get("$oid")
        if oid == old_id:
            result["_id"] = {"$oid": hashlib.sha1(new_id.encode()).hexdigest()[:24]}
    return result


def _id_slots(node: Any, value: str, depth: int = 0) -> Iterator[tuple[Any, str]]:
    if depth > 8:
        return
    if isinstance(node, dict):
        for key, child in node.items():
            if key in SESSION_ID_KEYS and child == value and isinstance(child, str):
                yield node, key
            elif isinstance(child, dict | list):
                yield from _id_slots(child, value, depth + 1)
    elif isinstance(node, list):
        for child in node:
            yield from _id_slots(child, value, depth + 1)


# --- bytes ------------------------------------------------------------------------------------


def encode(doc: Any, *, like: bytes) -> bytes:
    """``doc`` as JSON bytes in the layout of ``like`` (pretty when it was, else compact)."""
    head = like[:4096]
    if b"\n" in head:
        indent = 4 if b'\n    "' in head and b'\n  "' not in head else 2
        return json.dumps(doc, ensure_ascii=False, indent=indent).encode("utf-8")
    spaced = b'": ' in head or b", " in head
    separators = (", ", ": ") if spaced else (",", ":")
    return json.dumps(doc, ensure_ascii=False, separators=separators).encode("utf-8")
