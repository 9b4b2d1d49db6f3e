"""Every adapter in one place, and detection in the documented precedence (README.md beside
this file lists the rules).

Detection is deterministic and explainable: the first rule (by its number) that matches wins,
and the answer names that rule. A user can always force a format with ?format=.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessions_api.domain import ParsedSession
from sessions_api.errors import UnknownFormat
from sessions_api.formats.agentflow import parse as agentflow
from sessions_api.formats.anthropic import parse as anthropic
from sessions_api.formats.base import DetectionRule, FormatAdapter
from sessions_api.formats.falai import parse as falai
from sessions_api.formats.google_adk import parse as google_adk
from sessions_api.formats.langchain import parse as langchain
from sessions_api.formats.openai_agents import parse as openai_agents
from sessions_api.formats.openai_chat import parse as openai_chat
from sessions_api.formats.picoflow import parse as picoflow
from sessions_api.formats.praisonai import parse as praisonai

# Every format id of the product's fixed contract, in its order.
FORMAT_IDS = (
    "picoflow",
    "langchain",
    "openai_agents",
    "google_adk",
    "falai",
    "praisonai",
    "agentflow",
    "openai_chat",
    "anthropic",
)

ADAPTERS: dict[str, FormatAdapter] = {
    adapter.format_id: adapter
    for adapter in (
        picoflow.ADAPTER,
        openai_chat.ADAPTER,
        langchain.ADAPTER,
        anthropic.ADAPTER,
        agentflow.ADAPTER,
        falai.ADAPTER,
        praisonai.ADAPTER,
        openai_agents.ADAPTER,
        google_adk.ADAPTER,
    )
}

if set(ADAPTERS) != set(FORMAT_IDS):
    raise RuntimeError(f"adapters {sorted(ADAPTERS)} do not match the format ids {FORMAT_IDS}")

RULES: tuple[DetectionRule, ...] = tuple(
    sorted(
        (rule for adapter in ADAPTERS.values() for rule in adapter.rules), key=lambda r: r.number
    )
)


@dataclass(frozen=True)
class Detection:
    format_id: str
    rule: str  # e.g. "rule 1: Picoflow (runStatus + flows + log/error/warn)" or "?format="
    variant: str = ""


def get_adapter(format_id: str) -> FormatAdapter:
    adapter = ADAPTERS.get(format_id)
    if adapter is None:
        raise UnknownFormat(f"unknown format id {format_id!r}; use one of: {', '.join(FORMAT_IDS)}")
    return adapter


def detect_format(doc: Any) -> Detection:
    """The first matching rule in rule-number order; UnknownFormat when none matches."""
    for rule in RULES:
        try:
            matched = rule.matches(doc)
        except (AttributeError, TypeError, KeyError, IndexError):
            # A sniffer must never crash on an odd shape: odd shapes simply do not match.
            matched = False
        if matched:
            return Detection(
                format_id=rule.format_id,
                rule=f"rule {rule.number}: {rule.description}",
                variant=rule.variant,
            )
    raise UnknownFormat(
        "unknown format: the document matches no detection rule; "
        "if it is a supported framework's document, say which with ?format=ID "
        f"({', '.join(sorted(ADAPTERS))})"
    )


def parse_document(doc: Any, *, format_id: str | None = None) -> tuple[Detection, ParsedSession]:
    """Detect (unless forced) and parse. Raises InvalidDocument (or a subclass) on failure."""
    if format_id:
        adapter = get_adapter(format_id)
        detection = Detection(format_id=format_id, rule="forced by ?format=")
    else:
        detection = detect_format(doc)
        adapter = ADAPTERS[detection.format_id]
    return detection, adapter.parse(doc)
