"""Formats whose documents grow by appending messages, and the hook that lets ingest parse only
what a new version appends (ingest/incremental.py merges it with the stored derivation).

A hook is optional; a format without one is always parsed whole. A hook has:

- ``format_id``;
- ``message_list(doc)``: the raw message array of a document, or None;
- ``message_context(doc)``: what of the rest of the document the parse of a message depends
  on (for openai_chat: the envelope's model); a version with another context is parsed whole;
- ``plain(messages)``: True when none of these raw messages carries what a merge with the
  stored index cannot account for (for openai_chat: a time or token usage of its own);
- ``array_key``: the root object's member that holds the messages (a root array is the
  messages itself);
- ``evidence(messages)``: what detection reads from these messages, or None when it cannot be
  added to (for openai_chat: the roles, counted; None with Anthropic content blocks), with
  ``evidence_to_json`` and ``evidence_from_json`` to keep it with a stored version;
- ``appended_evidence(messages)``: the same for messages appended to a version the format's
  rule detected, or None unless they cannot make an earlier detection rule match;
- ``variant(doc, evidence)``: the variant the format's rule gives ``doc`` when its messages
  gave ``evidence``, or None when the rule would not match;
- ``parse_range(doc, start, stop, variant=...)``: what ``parse(doc)`` returns with only the
  raw messages ``start`` to ``stop``: the same session-level fields, and those messages with
  the ``seq`` and JSON paths they have in the whole document; tool calls are paired within
  the range only. ``variant`` is the detected one ("" to work it out).
"""

from __future__ import annotations

from typing import Any, Protocol

from sessions_api.domain import ParsedSession
from sessions_api.formats.openai_chat.growing import GROWING as OPENAI_CHAT


class GrowingFormat(Protocol):
    format_id: str

    array_key: str

    def message_list(self, doc: Any) -> list[Any] | None: ...

    def evidence(self, messages: list[Any]) -> Any: ...

    def appended_evidence(self, messages: list[Any]) -> Any: ...

    def variant(self, doc: Any, evidence: Any) -> str | None: ...

    def evidence_to_json(self, evidence: Any) -> Any: ...

    def evidence_from_json(self, value: Any) -> Any: ...

    def message_context(self, doc: Any) -> Any: ...

    def plain(self, messages: list[Any]) -> bool: ...

    def parse_range(
        self, doc: Any, start: int, stop: int, *, variant: str = ""
    ) -> ParsedSession: ...


GROWING_FORMATS: dict[str, GrowingFormat] = {hook.format_id: hook for hook in (OPENAI_CHAT,)}
