"""Every adapter and every editor in one place, keyed by format id, and detection in the
documented precedence (the rule table of README.md beside this file).

Detection is deterministic and explainable: the first rule (by its number) that matches wins,
and the answer names that rule. A user can always force a format with ?format=.

A document no rule matches may still hold a known shape one level down, in the envelope apps
save sessions in: ``{id | session_id | thread_id, history | states | items | messages}``. Then
the rules are tried on that one value, the adapter reads it, and the envelope's id names the
session (when the inner value names none) and its other keys are kept in
``Session.metadata["envelope"]``. This holds for every format, and for a forced format too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sessions_api.domain import ParsedSession, ParseWarning
from sessions_api.errors import UnknownFormat
from sessions_api.formats.agentflow import edit as agentflow_edit
from sessions_api.formats.agentflow import parse as agentflow
from sessions_api.formats.anthropic import edit as anthropic_edit
from sessions_api.formats.anthropic import parse as anthropic
from sessions_api.formats.base import DetectionRule, FormatAdapter
from sessions_api.formats.editing import Editor
from sessions_api.formats.falai import edit as falai_edit
from sessions_api.formats.falai import parse as falai
from sessions_api.formats.google_adk import edit as google_adk_edit
from sessions_api.formats.google_adk import parse as google_adk
from sessions_api.formats.langchain import edit as langchain_edit
from sessions_api.formats.langchain import parse as langchain
from sessions_api.formats.openai_agents import edit as openai_agents_edit
from sessions_api.formats.openai_agents import parse as openai_agents
from sessions_api.formats.openai_chat import edit as openai_chat_edit
from sessions_api.formats.openai_chat import parse as openai_chat
from sessions_api.formats.otel import edit as otel_edit
from sessions_api.formats.otel import parse as otel
from sessions_api.formats.picoflow import edit as picoflow_edit
from sessions_api.formats.picoflow import parse as picoflow
from sessions_api.formats.praisonai import edit as praisonai_edit
from sessions_api.formats.praisonai import parse as praisonai

# Every format id the product supports; part of its public contract (REST ?format=, the
# import command's --format), so ids are added, never renamed.
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
    "otel",
)


_Entry = TypeVar("_Entry", FormatAdapter, Editor)


def by_format_id(entries: tuple[_Entry, ...], kind: str) -> dict[str, _Entry]:
    """``entries`` keyed by their format id: exactly one for each id in FORMAT_IDS."""
    keyed: dict[str, _Entry] = {}
    for entry in entries:
        if entry.format_id in keyed:
            raise RuntimeError(f"two {kind}s for the format id {entry.format_id!r}")
        keyed[entry.format_id] = entry
    if set(keyed) != set(FORMAT_IDS):
        raise RuntimeError(f"{kind}s {sorted(keyed)} do not match the format ids {FORMAT_IDS}")
    return keyed


ADAPTERS: dict[str, FormatAdapter] = by_format_id(
    (
        picoflow.ADAPTER,
        openai_chat.ADAPTER,
        langchain.ADAPTER,
        anthropic.ADAPTER,
        agentflow.ADAPTER,
        falai.ADAPTER,
        praisonai.ADAPTER,
        openai_agents.ADAPTER,
        google_adk.ADAPTER,
        otel.ADAPTER,
    ),
    "adapter",
)

EDITORS: dict[str, Editor] = by_format_id(
    (
        picoflow_edit.EDITOR,
        langchain_edit.EDITOR,
        openai_chat_edit.EDITOR,
        google_adk_edit.EDITOR,
        falai_edit.EDITOR,
        agentflow_edit.EDITOR,
        praisonai_edit.EDITOR,
        openai_agents_edit.EDITOR,
        anthropic_edit.EDITOR,
        otel_edit.EDITOR,
    ),
    "editor",
)

RULES: tuple[DetectionRule, ...] = tuple(
    sorted(
        (rule for adapter in ADAPTERS.values() for rule in adapter.rules), key=lambda r: r.number
    )
)


#: Detection.rule of a format forced by the caller (no rule was tried).
FORCED_RULE = "forced by ?format="


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


# The keys of the envelope detection looks inside (one of them, holding the session's content)
# and the keys that may name the session there.
ENVELOPE_CONTENT_KEYS = ("history", "states", "items", "messages")
ENVELOPE_ID_KEYS = ("id", "session_id", "thread_id")


def _first_match(doc: Any, rules: tuple[DetectionRule, ...] = RULES) -> DetectionRule | None:
    for rule in rules:
        try:
            matched = rule.matches(doc)
        except (AttributeError, TypeError, KeyError, IndexError):
            # A sniffer must never crash on an odd shape: odd shapes simply do not match.
            matched = False
        if matched:
            return rule
    return None


def _envelope_content(doc: Any) -> str | None:
    """The content key of a ``{id, history|states|items|messages}`` envelope, or None."""
    if not isinstance(doc, dict):
        return None
    keys = [key for key in ENVELOPE_CONTENT_KEYS if isinstance(doc.get(key), list | dict)]
    if len(keys) != 1 or not any(isinstance(doc.get(k), str) for k in ENVELOPE_ID_KEYS):
        return None
    return keys[0]


def _detect(doc: Any) -> tuple[Detection, str | None] | None:
    """The detection and, when it was made inside an envelope, the envelope's content key."""
    rule = _first_match(doc)
    if rule is not None:
        return _detection(rule), None
    key = _envelope_content(doc)
    if key is None:
        return None
    rule = _first_match(doc[key])
    if rule is None:
        return None
    return _detection(rule, inside=key), key


def _detection(rule: DetectionRule, inside: str | None = None) -> Detection:
    where = f" inside the envelope's {inside!r}" if inside else ""
    return Detection(
        format_id=rule.format_id,
        rule=f"rule {rule.number}{where}: {rule.description}",
        variant=rule.variant,
    )


def detection_if_no_earlier_rule(doc: Any, format_id: str, variant: str) -> Detection | None:
    """What detection gives ``doc`` when it is known to match the rule of ``format_id`` that
    gives ``variant``, provided no rule before that one matches ``doc``; None when one does."""
    rule = next(r for r in RULES if r.format_id == format_id and r.variant == variant)
    if _first_match(doc, tuple(r for r in RULES if r.number < rule.number)) is not None:
        return None
    return _detection(rule)


def detect_format(doc: Any) -> Detection:
    """The first matching rule in the documented order (looking one level into an envelope when
    nothing matches the document itself); UnknownFormat when none matches."""
    found = _detect(doc)
    if found is not None:
        return found[0]
    raise UnknownFormat(
        "unknown format: the document matches no detection rule (the rules are listed in "
        "sessions_api/formats/README.md); "
        "if it is a supported framework's document, say which with ?format=ID "
        f"({', '.join(sorted(ADAPTERS))})"
    )


def parse_document(doc: Any, *, format_id: str | None = None) -> tuple[Detection, ParsedSession]:
    """Detect (unless forced) and parse. Raises InvalidDocument (or a subclass) on failure."""
    detection, envelope = resolve_format(doc, format_id=format_id)
    return detection, parse_resolved(doc, detection, envelope)


def resolve_format(doc: Any, *, format_id: str | None = None) -> tuple[Detection, str | None]:
    """The format (forced, or detected) and the envelope key its content sits under, if any.
    Raises UnknownFormat."""
    if format_id:
        adapter = get_adapter(format_id)
        detection = Detection(format_id=format_id, rule=FORCED_RULE)
        return detection, _forced_envelope_content(doc, adapter)
    found = _detect(doc)
    if found is None:
        detect_format(doc)  # raises UnknownFormat
    return found  # type: ignore[return-value]


def parse_resolved(doc: Any, detection: Detection, envelope: str | None) -> ParsedSession:
    """The document parsed as ``resolve_format`` found it (inside its envelope, if any)."""
    adapter = ADAPTERS[detection.format_id]
    if envelope is None:
        parsed = adapter.parse(doc)
    else:
        parsed = _unwrapped(doc, envelope, adapter.parse(doc[envelope]))
    return replace(parsed, warnings=aggregate_warnings(parsed.warnings))


# Warnings of one code kept per document; the rest are counted in one summary warning. A
# document repeating one mistake 100,000 times would otherwise answer megabytes of warnings.
WARNINGS_PER_CODE = 20


def aggregate_warnings(
    warnings: tuple[ParseWarning, ...], *, per_code: int = WARNINGS_PER_CODE
) -> tuple[ParseWarning, ...]:
    """The first ``per_code`` warnings of each code, then one warning per code saying how many
    more there were."""
    counts = Counter(warning.code for warning in warnings)
    if all(count <= per_code for count in counts.values()):
        return warnings
    kept: list[ParseWarning] = []
    shown: Counter[str] = Counter()
    for warning in warnings:
        shown[warning.code] += 1
        if shown[warning.code] <= per_code:
            kept.append(warning)
    for code, count in counts.items():
        if count > per_code:
            kept.append(
                ParseWarning(
                    code=code,
                    message=f"{count - per_code} more warnings of this kind not listed",
                )
            )
    return tuple(kept)


def _forced_envelope_content(doc: Any, adapter: FormatAdapter) -> str | None:
    """The envelope key to read a forced format from: only when the document itself matches
    none of the format's rules and the envelope's content does."""
    if _first_match(doc, adapter.rules) is not None:
        return None
    key = _envelope_content(doc)
    if key is None or _first_match(doc[key], adapter.rules) is None:
        return None
    return key


def _unwrapped(doc: dict[str, Any], key: str, parsed: ParsedSession) -> ParsedSession:
    """``parsed`` (read from ``doc[key]``) with what the envelope says about the session."""
    session = parsed.session
    envelope = {k: v for k, v in doc.items() if k != key}
    envelope_id = next(
        (doc[k] for k in ENVELOPE_ID_KEYS if isinstance(doc.get(k), str) and doc[k].strip()),
        None,
    )
    metadata = {**session.metadata, "envelope": envelope}
    warnings = list(parsed.warnings)
    external_id = session.external_id
    if external_id is None:
        external_id = envelope_id
    elif envelope_id is not None and envelope_id != external_id:
        warnings.append(
            ParseWarning(
                code="envelope_id_differs",
                message=f"the envelope names the session {envelope_id[:80]!r}, its content "
                f"{external_id[:80]!r}; the content's id is used",
                path="",
            )
        )
    session = replace(session, external_id=external_id, metadata=metadata)
    return ParsedSession(session=session, warnings=tuple(warnings))
