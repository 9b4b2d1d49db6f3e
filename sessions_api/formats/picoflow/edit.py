"""How an editor changes a Picoflow document in the framework's own shape.

Picoflow keeps state per step (``steps[].state``, with the ``_saveOn`` stamp
refreshed on save) and per flow (``context``); messages go to the current step's memory
namespace; v1 documents carry their own expiry (``expireAfter``), v1.5 ones deliberately none.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sessions_api.errors import NotEditable
from sessions_api.formats.editing import Editor, Part, stamp_like
from sessions_api.jsondiff import pointer


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


EDITOR = PicoflowEditor()
