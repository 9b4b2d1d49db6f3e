"""Cells of a CSV export that a spreadsheet will show as text, never run as a formula.

Excel, LibreOffice and Google Sheets start a formula at ``=``, ``+``, ``-`` or ``@``, also after
leading spaces, tabs or line breaks (which they trim), and also at the full-width and small
forms of those signs (U+FF1D, U+FE66, ...), which they fold to the ASCII ones. A cell whose first
visible character is any of them, or that starts with whitespace or a control character, gets a
leading apostrophe: the spreadsheet then shows the rest as text.
"""

from __future__ import annotations

import unicodedata
from typing import Any

_TRIGGERS = frozenset("=+-@\u2212")


def starts_like_a_formula(text: str) -> bool:
    if not text:
        return False
    first = text[0]
    if first.isspace() or unicodedata.category(first) in ("Cc", "Cf", "Zs", "Zl", "Zp"):
        return True
    return unicodedata.normalize("NFKC", first)[:1] in _TRIGGERS


def csv_cell(value: Any) -> Any:
    """``value`` as one CSV cell: lists joined with ``;``, times in ISO 8601, text made safe."""
    if isinstance(value, list):
        value = ";".join(str(item) for item in value)
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str) and starts_like_a_formula(value):
        return "'" + value
    return value
