"""How an editor changes a Google ADK document in the framework's own shape.

A Google ADK Session keeps its state in ``state``; ``last_update_time`` is refreshed on save.
A list_sessions answer or a database dump is not edited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sessions_api.formats.editing import Editor, Part, first_key


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
            key = first_key(doc, "last_update_time", "lastUpdateTime")
            if key is not None:
                doc[key] = now.timestamp()


EDITOR = GoogleAdkEditor()
