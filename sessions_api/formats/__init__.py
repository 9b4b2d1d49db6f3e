"""Formats: one package per format id (its adapter, its editor, its framework's own stores), and
the registry that detects, parses and finds the editor.

See README.md beside this file for the layout and how to add a format.
"""

from sessions_api.formats.base import DetectionRule, FormatAdapter, InvalidDocument
from sessions_api.formats.registry import (
    FORMAT_IDS,
    Detection,
    UnknownFormat,
    detect_format,
    get_adapter,
    parse_document,
    parse_resolved,
    resolve_format,
)

__all__ = [
    "FORMAT_IDS",
    "Detection",
    "DetectionRule",
    "FormatAdapter",
    "InvalidDocument",
    "UnknownFormat",
    "detect_format",
    "get_adapter",
    "parse_document",
    "parse_resolved",
    "resolve_format",
]
