"""How an editor changes a @falai/agent document in the framework's own shape.

@falai/agent keeps collected data and metadata in ``collectedData`` (of the session row, or
of ``session`` in an export) or in a SessionState's ``data``; its status field, its history
array and its optimistic-concurrency ``version`` counter are kept in the framework's shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sessions_api.errors import NotEditable
from sessions_api.formats.editing import Editor, Part, first_key, stamp_like
from sessions_api.jsondiff import MISSING, pointer, resolve


class FalaiEditor(Editor):
    format_id = "falai"
    status_values = {"running": "active", "completed": "completed", "abandoned": "abandoned"}

    @staticmethod
    def _row_pointer(doc: Any) -> str | None:
        """Where the session row is: the document itself, or ``session`` in an export."""
        if not isinstance(doc, dict):
            return None
        if isinstance(doc.get("session"), dict) and first_key(
            doc["session"], "collectedData", "collected_data"
        ):
            return "/session"
        if first_key(doc, "collectedData", "collected_data") and "status" in doc:
            return ""
        return None

    def _collected(self, doc: Any) -> str | None:
        row_ptr = self._row_pointer(doc)
        if row_ptr is None:
            return None
        row = resolve(doc, row_ptr)
        key = first_key(row, "collectedData", "collected_data")
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
            key = first_key(target, "updatedAt", "updated_at")
            if key is not None:
                target[key] = stamp_like(target[key], now)
        else:
            meta = target.get("metadata")
            if isinstance(meta, dict) and "lastUpdatedAt" in meta:
                meta["lastUpdatedAt"] = stamp_like(meta["lastUpdatedAt"], now)
        # falai's optimistic-concurrency counter (persistence adapters compare it).
        if type(target.get("version")) is int:
            target["version"] += 1


EDITOR = FalaiEditor()
