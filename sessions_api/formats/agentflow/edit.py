"""How an editor changes a AgentFlow document in the framework's own shape.

An AgentFlow session (``session.json``, or ``session`` in an export bundle) has editable
``metadata`` and a status field; a bare history list carries no session state.
"""

from __future__ import annotations

from typing import Any

from sessions_api.formats.editing import Editor, Part


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


EDITOR = AgentflowEditor()
