"""How an editor changes a PraisonAI document in the framework's own shape.

A PraisonAI session has editable ``metadata`` and a ``messages`` array to append to;
``updated_at`` is refreshed on save.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sessions_api.formats.editing import Editor, Part, messages_array, restamp_updated_at


class PraisonaiEditor(Editor):
    format_id = "praisonai"

    def parts(self, doc: Any) -> list[Part]:
        if not isinstance(doc, dict):
            return []
        return [Part(key="metadata", label="Session metadata", pointer="/metadata")]

    def message_list(self, doc: Any, namespace: str | None) -> list[Any]:
        return messages_array(doc)

    def touch(self, doc: Any, *, now: datetime, revision: int | None) -> None:
        restamp_updated_at(doc, now)


EDITOR = PraisonaiEditor()
