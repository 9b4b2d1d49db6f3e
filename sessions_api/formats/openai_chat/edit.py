"""How an editor changes a OpenAI chat document in the framework's own shape.

An OpenAI chat transcript keeps its state in ``variables`` and ``metadata``; a bare list of
messages can only be appended to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sessions_api.formats.editing import Editor, Part, messages_array, restamp_updated_at


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
        return messages_array(doc)

    def touch(self, doc: Any, *, now: datetime, revision: int | None) -> None:
        restamp_updated_at(doc, now)


EDITOR = OpenAIChatEditor()
