"""Format adapters: one module per framework, and the registry that detects and parses.

See README.md beside this file for how to add a format.
"""

from sessions_api.formats.base import DetectionRule, FormatAdapter, InvalidDocument
from sessions_api.formats.registry import (
    FORMAT_IDS,
    Detection,
    UnknownFormat,
    detect_format,
    get_adapter,
    parse_document,
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
]
