"""Anthropic transcripts are not edited part by part: they keep no state of their own."""

from __future__ import annotations

from sessions_api.formats.editing import ReadOnlyEditor

EDITOR = ReadOnlyEditor(
    "anthropic",
    "Anthropic transcripts have no state of their own; replace the whole document instead",
)
