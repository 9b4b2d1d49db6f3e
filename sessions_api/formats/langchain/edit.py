"""How an editor changes a LangChain / LangGraph document in the framework's own shape.

A LangGraph thread state keeps its state in ``values`` (its ``messages`` managed by the
graph); other LangChain documents have only ``metadata``; a state history (bare, or in an
``{thread_id, history}`` envelope) is a log and is not edited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sessions_api.errors import NotEditable
from sessions_api.formats.editing import Editor, Part, stamp_like


class LangchainEditor(Editor):
    format_id = "langchain"

    @staticmethod
    def _thread_state(doc: Any) -> bool:
        return isinstance(doc, dict) and "values" in doc

    @staticmethod
    def _history(doc: Any) -> bool:
        if isinstance(doc, dict):  # a history saved in an envelope {thread_id, history|states}
            doc = next(
                (doc[k] for k in ("history", "states") if isinstance(doc.get(k), list)), None
            )
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


EDITOR = LangchainEditor()
