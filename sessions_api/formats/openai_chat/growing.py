"""The growing-document hook of openai_chat (formats/growing.py): a transcript grows by
appending to ``messages``, and one raw message is one canonical message with ``seq`` equal to
its index, so a range of messages parses on its own once the envelope is known."""

from __future__ import annotations

from typing import Any

from sessions_api.domain import ParsedSession
from sessions_api.formats.common import result_looks_like_error
from sessions_api.formats.openai_chat import parse as chat
from sessions_api.formats.pairing import pair_tool_calls

# Message keys whose values a merge with earlier messages cannot see from the stored index: a
# time moves the session's start and end, usage makes the tokens per model a sum over messages.
_CROSS_MESSAGE_KEYS = ("usage", *chat._MESSAGE_TIMESTAMP_KEYS)


class GrowingChat:
    format_id = chat.FORMAT_ID
    array_key = "messages"

    def message_list(self, doc: Any) -> list[Any] | None:
        found = chat._message_list(doc)
        return found[0] if found else None

    def message_context(self, doc: Any) -> Any:
        # The envelope's model is the model of every assistant message that names none.
        return doc.get("model") if isinstance(doc, dict) else None

    def plain(self, messages: list[Any]) -> bool:
        keys = _CROSS_MESSAGE_KEYS
        return all(
            type(message) is dict and all(message.get(key) is None for key in keys)
            for message in messages
        )

    def evidence(self, messages: list[Any]) -> chat.RoleEvidence | None:
        return chat.role_evidence(messages)

    def appended_evidence(self, messages: list[Any]) -> chat.RoleEvidence | None:
        # Only messages of a known role: then no rule before this format's can come to match
        # by what they add (an AgentFlow "tool_result" role would, or Anthropic blocks).
        found = chat.role_evidence(messages)
        if found is None or found.unknown or found.known != len(messages):
            return None
        return found

    def variant(self, doc: Any, evidence: chat.RoleEvidence) -> str | None:
        found = chat._message_list(doc)
        return None if found is None else chat.variant_of_evidence(doc, found[1], evidence)

    def evidence_to_json(self, evidence: chat.RoleEvidence) -> Any:
        return {
            "roles": sorted(evidence.roles),
            "known": evidence.known,
            "unknown": evidence.unknown,
        }

    def evidence_from_json(self, value: Any) -> chat.RoleEvidence:
        return chat.RoleEvidence(frozenset(value["roles"]), value["known"], value["unknown"])

    def parse_range(self, doc: Any, start: int, stop: int, *, variant: str = "") -> ParsedSession:
        envelope, raw_messages, messages_path = chat._split_document(doc)
        state = chat._ParseState()
        state.session_model = chat.optional(envelope, "model", str, "")
        messages = [
            chat._parse_message(raw_messages[index], index, f"{messages_path}/{index}", state)
            for index in range(start, min(stop, len(raw_messages)))
        ]
        paired, pairing_warnings = pair_tool_calls(messages, heuristic=result_looks_like_error)
        session = chat._build_session(
            envelope, variant or chat._parse_variant(doc), tuple(paired), state
        )
        return ParsedSession(session=session, warnings=(*state.warnings, *pairing_warnings))


GROWING = GrowingChat()
