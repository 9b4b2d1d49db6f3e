"""OpenAI Agents sessions are not edited part by part: a session is a list of run items."""

from __future__ import annotations

from sessions_api.formats.editing import ReadOnlyEditor

EDITOR = ReadOnlyEditor(
    "openai_agents",
    "OpenAI Agents sessions are lists of run items with no state of their own; "
    "replace the whole document instead",
)
