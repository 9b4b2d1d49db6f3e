"""Formatting filters for dashboard templates. Every one returns plain text: the template's
autoescaping still applies to what they return (nothing here marks anything safe)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import template
from django.utils import timezone

from sessions_api import jsondiff

register = template.Library()

LONG_TEXT_CHARS = 1200
LONG_TEXT_LINES = 18


@register.filter
def pretty_json(value: Any) -> str:
    """A value (or JSON text) pretty-printed. Never raises, whatever a client stored: text
    nested too deep to parse is shown as it is, and values nested deeper than the pretty
    printer's limit are written compact (jsondiff.pretty)."""
    if value is None:
        return ""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and len(stripped) < 1_000_000:
            # Tool results and arguments often arrive as JSON text: show them structured.
            try:
                parsed = json.loads(stripped)
            except (ValueError, RecursionError):
                return value
            return jsondiff.pretty(parsed)
        return value
    return jsondiff.pretty(value)


@register.filter
def is_long(value: Any) -> bool:
    text = value if isinstance(value, str) else pretty_json(value)
    return len(text) > LONG_TEXT_CHARS or text.count("\n") > LONG_TEXT_LINES


@register.filter
def is_structured(value: Any) -> bool:
    return isinstance(value, dict | list)


@register.filter
def preview(value: Any, chars: int = 280) -> str:
    """The start of a text on one line (plain slicing; no HTML-aware truncation)."""
    text = value if isinstance(value, str) else pretty_json(value)
    text = " ".join(text[: chars * 2].split())
    return text if len(text) <= chars else text[:chars].rstrip() + "…"


@register.filter
def compact(value: Any) -> str:
    if value is None or value == "":
        return "—"
    number = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            scaled = number / limit
            return f"{scaled:.1f}{suffix}" if scaled < 100 else f"{scaled:.0f}{suffix}"
    return f"{int(number):,}"


@register.filter
def money(value: Decimal | float | None) -> str:
    if value is None:
        return "—"
    value = Decimal(value)
    if value == 0:
        return "$0"
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    if value >= Decimal("0.01"):
        return f"${value:.3f}"
    return f"${value:.4f}" if value >= Decimal("0.0001") else "<$0.0001"


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%"


def _human_seconds(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


@register.filter
def duration_to(start: datetime | None, end: datetime | None) -> str:
    if not start or not end:
        return "—"
    return _human_seconds((end - start).total_seconds())


@register.filter
def ago(value: datetime | None) -> str:
    if not value:
        return "—"
    seconds = (timezone.now() - value).total_seconds()
    if seconds < 0:
        return "in " + _human_seconds(-seconds).split(" ")[0]
    if seconds < 45:
        return "just now"
    return _human_seconds(seconds).split(" ")[0] + " ago"


@register.filter
def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


KIND_LABELS = {
    "tool_error": "tool error",
    "message_error": "message error",
    "log_error": "logged error",
    "log_warning": "warning",
}


@register.filter
def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


@register.filter
def price(value: Decimal | None) -> str:
    """A per-million price: at least two decimals, no trailing zeros beyond them."""
    if value is None:
        return "—"
    text = f"{Decimal(value):.4f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


@register.filter
def get_item(mapping: dict, key: Any) -> Any:
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def startswith(value: str, prefix: str) -> bool:
    return isinstance(value, str) and value.startswith(prefix)


@register.filter
def filesize(value: int | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
