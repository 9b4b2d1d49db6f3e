"""Where each framework keeps what an editor may change, and how to change it in the
framework's own shape (pure: no Django, no storage).

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


def _first_key(doc: dict[str, Any], *keys: str) -> str | None:
    return next((key for key in keys if key in doc), None)


# --- Picoflow ---------------------------------------------------------------------------------


class PicoflowEditor(Editor):
    format_id = "picoflow"
    status_values = {"running": "running", "completed": "completed", "aborted": "aborted"}

    @staticmethod
    def _v15(doc: Any) -> bool:
        return isinstance(doc, dict) and isinstance(doc.get("flow"), dict)

    def _flows(self, doc: Any) -> list[tuple[str, dict[str, Any]]]:
        """(pointer, flow) for each flow."""
        if not isinstance(doc, dict):
            return []
        if self._v15(doc):
            return [("/flow", doc["flow"])]
        flows = doc.get("flows")
        if not isinstance(flows, list):
            return []
        return [(pointer("flows", i), f) for i, f in enumerate(flows) if isinstance(f, dict)]

    def _steps(self, doc: Any) -> Iterator[tuple[int, int, str, dict[str, Any], str]]:
        """(flow index, step index, flow name, step, pointer) for each step."""
        for fi, (flow_ptr, flow) in enumerate(self._flows(doc)):
            steps = flow.get("steps")
            if not isinstance(steps, list):
                continue
            for si, step in enumerate(steps):
                if isinstance(step, dict) and isinstance(step.get("name"), str):
                    yield fi, si, str(flow.get("name") or ""), step, f"{flow_ptr}/steps/{si}"

    def parts(self, doc: Any) -> list[Part]:
        flows = self._flows(doc)
        several = len(flows) > 1
        found = []
        for fi, si, flow_name, step, ptr in self._steps(doc):
            label = f"{flow_name} / {step['name']}" if several else step["name"]
            found.append(
                Part(
                    key=f"step:{fi}:{si}",
                    label=f"Step state: {label}",
                    pointer=ptr + "/state",
                    kind="step",
                    stamp_key="_saveOn",
                )
            )
        for fi, (flow_ptr, flow) in enumerate(flows):
            if isinstance(flow.get("context"), dict | type(None)):
                name = f" ({flow.get('name')})" if several else ""
                found.append(
                    Part(
                        key=f"context:{fi}",
                        label=f"Flow context{name}",
                        pointer=flow_ptr + "/context",
                        kind="context",
                    )
                )
        return found

    def not_editable_reason(self, doc: Any) -> str:
        return "this Picoflow document has no flows or steps to edit"

    def status_pointer(self, doc: Any) -> str | None:
        return "/runStatus" if isinstance(doc, dict) else None

    def expiry_pointer(self, doc: Any) -> str | None:
        # v1 only: v1.5 stores deliberately apply no expiry.
        return None if self._v15(doc) or not isinstance(doc, dict) else "/expireAfter"

    def current_step(self, doc: Any) -> tuple[int, int] | None:
        if self._v15(doc):
            current = doc["flow"].get("currentStep")
            for fi, si, _, step, _ in self._steps(doc):
                if step["name"] == current:
                    return fi, si
            return None
        for fi, si, _, step, _ in self._steps(doc):
            if step.get("isActive") is True:
                return fi, si
        return None

    def find_step(self, doc: Any, name: str) -> tuple[int, int]:
        matches = [
            (fi, si)
            for fi, si, flow_name, step, _ in self._steps(doc)
            if name in (step["name"], f"{flow_name}/{step['name']}")
        ]
        if not matches:
            raise NotEditable(f"no step named {name!r} in this document", path="/step")
        if len(matches) > 1:
            raise NotEditable(
                f"several flows have a step {name!r}: name it as Flow/{name}", path="/step"
            )
        return matches[0]

    def merge_target(self, doc: Any, step: str | None) -> Part:
        where = self.find_step(doc, step) if step is not None else self.current_step(doc)
        if where is None:
            raise NotEditable(
                "Picoflow keeps state per step and this document has no current step: "
                'name one with "step"',
                path="/step",
            )
        return self.part(doc, f"step:{where[0]}:{where[1]}")

    def message_list(self, doc: Any, namespace: str | None) -> list[Any]:
        current = self.current_step(doc)
        steps = {(fi, si): step for fi, si, _, step, _ in self._steps(doc)}
        current_name = steps[current]["name"] if current else None
        flows = self._flows(doc)
        if not flows:
            raise NotEditable("this Picoflow document has no flow to append to", path="/flow")
        if self._v15(doc):
            flow = doc["flow"]
            memory = flow.setdefault("memory", {})
            if not isinstance(memory, dict):
                raise NotEditable("flow.memory is not an object", path="/flow/memory")
            ns = namespace or (
                current_name if current_name in memory else next(reversed(memory), None)
            )
            ns = ns or current_name or "default"
            bucket = memory.setdefault(ns, {"messages": []})
            if not isinstance(bucket, dict) or not isinstance(
                bucket.setdefault("messages", []), list
            ):
                raise NotEditable(
                    f"flow.memory[{ns!r}].messages is not an array",
                    path=f"/flow/memory/{ns}/messages",
                )
            return bucket["messages"]
        flow = flows[current[0] if current else 0][1]
        memory = flow.setdefault("memory", [])
        if not isinstance(memory, list):
            raise NotEditable("flows[].memory is not an array", path="/flows/memory")
        wanted = namespace or current_name
        entry = next(
            (m for m in memory if isinstance(m, dict) and m.get("nameSpace") == wanted), None
        )
        if entry is None and namespace is None and memory and isinstance(memory[-1], dict):
            entry = memory[-1]
        if entry is None:
            entry = {"nameSpace": wanted or "default", "history": []}
            memory.append(entry)
        history = entry.setdefault("history", [])
        if not isinstance(history, list):
            raise NotEditable("memory[].history is not an array", path="/flows/memory/history")
        return history

    def touch(self, doc: Any, *, now: datetime, revision: int | None) -> None:
        if not isinstance(doc, dict):
            return
        if "saveOn" in doc:
            doc["saveOn"] = stamp_like(doc["saveOn"], now)
        # v1.5's CAS token: one past every revision stored so far (an older one would clash).
        if revision is not None and type(doc.get("revision")) is int:
            doc["revision"] = revision


# --- LangChain / LangGraph --------------------------------------------------------------------


class LangchainEditor(Editor):
    format_id = "langchain"

    @staticmethod
    def _thread_state(doc: Any) -> bool:
        return isinstance(doc, dict) and "values" in doc

    @staticmethod
    def _history(doc: Any) -> bool:
        return (
            isinstance(doc, list) and bool(doc) and isinstance(doc[0], dict) and "values" in doc[0]
        )

    def parts(self, doc: Any) -> list[Part]:
        if self._thread_state(doc):
            if isinstance(doc["values"], dict):
                return [
                    Part(
                        key="state",
                        label="Graph state (values)",
                        pointer="/values",
                        managed_keys=("messages",),
                    )
                ]
            return []
        if isinstance(doc, dict) and not self._history(doc):
            return [Part(key="metadata", label="Metadata", pointer="/metadata", kind="metadata")]
        return []

    def not_editable_reason(self, doc: Any) -> str:
        if self._history(doc):
            return (
                "a LangGraph state history is a log of checkpoints; push and edit the thread "
                "state (get_state) instead"
            )
        return "a bare LangChain message list has no state to edit (messages can be appended)"

    def message_list(self, doc: Any, namespace: str | None) -> list[Any]:
        if self._history(doc):
            raise NotEditable(self.not_editable_reason(doc))
        if self._thread_state(doc):
            values = doc["values"]
            if isinstance(values, list):
                return values
            if not isinstance(values, dict):
                raise NotEditable("values is not an object", path="/values")
            messages = values.setdefault("messages", [])
            if not isinstance(messages, list):
                raise NotEditable("values.messages is not an array", path="/values/messages")
            return messages
        if isinstance(doc, list):
            return doc
        if isinstance(doc, dict) and isinstance(doc.get("messages"), list):
            return doc["messages"]
        raise NotEditable("this document has no message list", path="/messages")

    def touch(self, doc: Any, *, now: datetime, revision: int | None) -> None:
        if isinstance(doc, dict) and not self._thread_state(doc) and "updated_at" in doc:
            doc["updated_at"] = stamp_like(doc["updated_at"], now)


# --- OpenAI chat transcripts ------------------------------------------------------------------


class OpenAIChatEditor(Editor):
    format_id = "openai_chat"

    def parts(self, doc: Any) -> list[Part]:
        if not isinstance(doc, dict):
            return []
        return [
            Part(key="state", label="Variables (session state)", pointer="/variables"),
            Part(key="metadata", label="Metadata", pointer="/metadata", kind="metadata"),
        ]

    def not_editable_reason(self, doc: Any) -> str:
        return "a bare list of chat messages has no state to edit (messages can be appended)"

    def message_list(self, doc: Any, namespace: str | None) -> list[Any]:
        if isinstance(doc, list):
            return doc
        if isinstance(doc, dict) and isinstance(doc.get("messages"), list):
            return doc["messages"]
        raise NotEditable("this document has no messages array", path="/messages")

    def touch(self, doc: Any, *, now: datetime, revision: int | None) -> None:
        if isinstance(doc, dict) and isinstance(doc.get("updated_at"), str):
            doc["updated_at"] = stamp_like(doc["updated_at"], now)


# --- Google ADK -------------------------------------------------------------------------------


class GoogleAdkEditor(Editor):
    format_id = "google_adk"

    @staticmethod
    def _session(doc: Any) -> bool:
        return (
            isinstance(doc, dict)
            and isinstance(doc.get("events"), list)
            and ("app_name" in doc or "appName" in doc)
        )

    def parts(self, doc: Any) -> list[Part]:
        if not self._session(doc):
            return []
        return [Part(key="state", label="Session state", pointer="/state")]

    def not_editable_reason(self, doc: Any) -> str:
        return (
            "only a single ADK Session document is editable (not a list_sessions answer or a "
            "database dump)"
        )

    def touch(self, doc: Any, *, now: datetime, revision: int | None) -> None:
        if self._session(doc):
            key = _first_key(doc, "last_update_time", "lastUpdateTime")
            if key is not None:
                doc[key] = now.timestamp()


# --- @falai/agent -----------------------------------------------------------------------------


class FalaiEditor(Editor):
    format_id = "falai"
    status_values = {"running": "active", "completed": "completed", "abandoned": "abandoned"}

    @staticmethod
    def _row_pointer(doc: Any) -> str | None:
        """Where the session row is: the document itself, or ``session`` in an export."""
        if not isinstance(doc, dict):
            return None
        if isinstance(doc.get("session"), dict) and _first_key(
            doc["session"], "collectedData", "collected_data"
        ):
            return "/session"
        if _first_key(doc, "collectedData", "collected_data") and "status" in doc:
            return ""
        return None

    def _collected(self, doc: Any) -> str | None:
        row_ptr = self._row_pointer(doc)
        if row_ptr is None:
            return None
        row = resolve(doc, row_ptr)
        key = _first_key(row, "collectedData", "collected_data")
        if not isinstance(row.get(key), dict):
            return None  # the SQLite adapter's JSON text: edit the whole document instead
        return row_ptr + pointer(key)

    def parts(self, doc: Any) -> list[Part]:
        collected = self._collected(doc)
        if collected is not None:
            return [
                Part(key="state", label="Collected data", pointer=collected + "/data"),
                Part(
                    key="metadata",
                    label="Metadata",
                    pointer=collected + "/metadata",
                    kind="metadata",
                    stamp_key="lastUpdatedAt",
                ),
            ]
        if isinstance(doc, dict) and "data" in doc:  # a SessionState
            return [
                Part(key="state", label="Collected data", pointer="/data"),
                Part(
                    key="metadata",
                    label="Metadata",
                    pointer="/metadata",
                    kind="metadata",
                    stamp_key="lastUpdatedAt",
                ),
            ]
        return []

    def not_editable_reason(self, doc: Any) -> str:
        if self._row_pointer(doc) is not None:
            return "collectedData is stored as JSON text here; edit the whole document instead"
        return "@falai message rows carry no session state; edit the session row or state"

    def status_pointer(self, doc: Any) -> str | None:
        row_ptr = self._row_pointer(doc)
        return None if row_ptr is None else row_ptr + "/status"

    def message_list(self, doc: Any, namespace: str | None) -> list[Any]:
        collected = self._collected(doc)
        where = collected + "/history" if collected else None
        if where is None and isinstance(doc, dict) and "data" in doc:
            where = "/history"
        if where is None or resolve(doc, where) is MISSING:
            raise NotEditable("this @falai document keeps no history array", path="/history")
        history = resolve(doc, where)
        if not isinstance(history, list):
            raise NotEditable("history is not an array", path=where)
        return history

    def touch(self, doc: Any, *, now: datetime, revision: int | None) -> None:
        if not isinstance(doc, dict):
            return
        row_ptr = self._row_pointer(doc)
        target = resolve(doc, row_ptr) if row_ptr is not None else doc
        if row_ptr is not None:
            key = _first_key(target, "updatedAt", "updated_at")
            if key is not None:
                target[key] = stamp_like(target[key], now)
        else:
            meta = target.get("metadata")
            if isinstance(meta, dict) and "lastUpdatedAt" in meta:
                meta["lastUpdatedAt"] = stamp_like(meta["lastUpdatedAt"], now)
        # falai's optimistic-concurrency counter (persistence adapters compare it).
        if type(target.get("version")) is int:
            target["version"] += 1


# --- AgentFlow --------------------------------------------------------------------------------


class AgentflowEditor(Editor):
    format_id = "agentflow"
    status_values = {"running": "active", "completed": "completed", "error": "error"}

    @staticmethod
    def _session_pointer(doc: Any) -> str | None:
        if not isinstance(doc, dict):
            return None
        if isinstance(doc.get("session"), dict):
            return "/session"
        if "workflow" in doc and "agent" in doc:
            return ""
        return None

    def parts(self, doc: Any) -> list[Part]:
        where = self._session_pointer(doc)
        if where is None:
            return []
        return [Part(key="metadata", label="Session metadata", pointer=where + "/metadata")]

    def not_editable_reason(self, doc: Any) -> str:
        return "an AgentFlow history list carries no session state; push the session.json"

    def status_pointer(self, doc: Any) -> str | None:
        where = self._session_pointer(doc)
        return None if where is None else where + "/status"


# --- PraisonAI --------------------------------------------------------------------------------


class PraisonaiEditor(Editor):
    format_id = "praisonai"

    def parts(self, doc: Any) -> list[Part]:
        if not isinstance(doc, dict):
            return []
        return [Part(key="metadata", label="Session metadata", pointer="/metadata")]

    def message_list(self, doc: Any, namespace: str | None) -> list[Any]:
        if isinstance(doc, dict) and isinstance(doc.get("messages"), list):
            return doc["messages"]
        raise NotEditable("this document has no messages array", path="/messages")

    def touch(self, doc: Any, *, now: datetime, revision: int | None) -> None:
        if isinstance(doc, dict) and isinstance(doc.get("updated_at"), str):
            doc["updated_at"] = stamp_like(doc["updated_at"], now)


class ReadOnlyEditor(Editor):
    """Formats whose documents keep no state of their own (transcripts, run items)."""

    def __init__(self, format_id: str, reason: str) -> None:
        self.format_id = format_id  # type: ignore[misc]
        self._reason = reason

    def not_editable_reason(self, doc: Any) -> str:
        return self._reason


EDITORS: dict[str, Editor] = {
    editor.format_id: editor
    for editor in (
        PicoflowEditor(),
        LangchainEditor(),
        OpenAIChatEditor(),
        GoogleAdkEditor(),
        FalaiEditor(),
        AgentflowEditor(),
        PraisonaiEditor(),
        ReadOnlyEditor(
            "openai_agents",
            "OpenAI Agents sessions are lists of run items with no state of their own; "
            "replace the whole document instead",
        ),
        ReadOnlyEditor(
            "anthropic",
            "Anthropic transcripts have no state of their own; replace the whole document instead",
        ),
    )
}


def editor_for(format_id: str) -> Editor:
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
