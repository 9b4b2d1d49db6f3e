"""Strict, bounded decoding of a document's bytes into a JSON value (HOSTILE.md).

Policy, in the order it is applied:

1. size: over the cap is 413 before anything is parsed; zero bytes is 400 "empty document";
2. encoding: a UTF-8 BOM is accepted (a common editor artefact); any other invalid UTF-8
   (bad bytes, encoded surrogates, overlong forms) is 400 — never decoded with replacement;
3. syntax: strict JSON. NaN/Infinity, duplicate keys, integers beyond 64 bits, floats that
   overflow to infinity, and nesting deeper than the limit are 400;
4. content: lone surrogates and NUL characters (which PostgreSQL cannot store) are 422 with the
   JSON-pointer path of the offending string; too many values in total is 413.

The result is a plain Python value; the bytes themselves are what gets stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sessions_api.formats.base import pointer_join

UTF8_BOM = b"\xef\xbb\xbf"
INT64_MAX = 2**63 - 1
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 10 * 1024 * 1024
    max_depth: int = 64
    max_nodes: int = 1_000_000


class RejectedDocument(Exception):
    """A document refused before parsing into a session: carries its HTTP status."""

    def __init__(self, status: int, code: str, message: str, path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.path = path


class _Reject(ValueError):
    """Raised from inside the json hooks; turned into a RejectedDocument."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Reject("duplicate_key", f"duplicate key {key[:100]!r} in an object")
            seen.add(key)
    return result


def _reject_constant(name: str) -> Any:
    raise _Reject("non_finite_number", f"{name} is not valid JSON")


def _checked_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Reject("number_out_of_range", f"number {text[:40]} overflows a 64-bit float")
    return value


def _checked_int(text: str) -> int:
    # Reject before int() so a 5,000-digit number costs nothing (and never hits CPython's
    # 4,300-digit guard with a confusing message).
    if len(text.lstrip("-")) > 19 or not (-INT64_MAX - 1 <= int(text) <= INT64_MAX):
        raise _Reject("number_out_of_range", f"integer {text[:40]}… does not fit in 64 bits")
    return int(text)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates,
    parse_constant=_reject_constant,
    parse_float=_checked_float,
    parse_int=_checked_int,
    strict=True,
)


def decode_document(body: bytes, limits: DecodeLimits | None = None) -> Any:
    """Bytes to a JSON value under the policy above; raises RejectedDocument."""
    limits = limits or DecodeLimits()
    if len(body) > limits.max_bytes:
        raise RejectedDocument(
            413, "too_large", f"document is {len(body)} bytes; the limit is {limits.max_bytes}"
        )
    text = decode_utf8(body)
    if not text.strip():
        raise RejectedDocument(400, "empty_document", "empty document")
    value = parse_json_text(text)
    check_content(value, limits)
    return value


def decode_utf8(body: bytes) -> str:
    if body.startswith(UTF8_BOM):
        body = body[len(UTF8_BOM) :]
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedDocument(
            400,
            "invalid_utf8",
            f"document is not valid UTF-8: byte {exc.start} ({exc.reason})",
        ) from None


def parse_json_text(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except _Reject as exc:
        raise RejectedDocument(400, exc.code, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise RejectedDocument(
            400, "invalid_json", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise RejectedDocument(400, "too_deep", "invalid JSON: nesting too deep") from None
    except ValueError as exc:
        raise RejectedDocument(400, "invalid_json", f"invalid JSON: {exc}") from None


def check_content(value: Any, limits: DecodeLimits) -> None:
    """Walk the value once (iteratively: no recursion to exhaust) checking depth, size and
    strings that no store can hold."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    nodes = 0
    while stack:
        node, path, depth = stack.pop()
        nodes += 1
        if nodes > limits.max_nodes:
            raise RejectedDocument(
                413, "too_many_values", f"document has more than {limits.max_nodes} values"
            )
        if isinstance(node, str):
            _check_string(node, path)
        elif isinstance(node, dict | list):
            if depth > limits.max_depth:
                raise RejectedDocument(
                    400,
                    "too_deep",
                    f"nesting deeper than {limits.max_depth} levels",
                    path=path,
                )
            if isinstance(node, dict):
                for key, child in node.items():
                    child_path = pointer_join(path, key)
                    _check_string(key, child_path)
                    stack.append((child, child_path, depth + 1))
            else:
                for index, child in enumerate(node):
                    stack.append((child, pointer_join(path, index), depth + 1))


def _check_string(text: str, path: str) -> None:
    if "\x00" in text:
        raise RejectedDocument(
            422, "nul_character", "strings must not contain NUL (\\u0000)", path=path
        )
    if _LONE_SURROGATE.search(text):
        raise RejectedDocument(
            422, "lone_surrogate", "string contains an unpaired UTF-16 surrogate", path=path
        )


# --- batches ----------------------------------------------------------------------------------

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# Finds where each item of a batch ends without judging it: numbers and constants are not even
# converted, so an item that the strict decoder will refuse still has a clear extent.
_EXTENT_DECODER = json.JSONDecoder(
    parse_float=lambda _: 0.0, parse_int=lambda _: 0, parse_constant=lambda _: 0.0
)


def split_batch_documents(text: str) -> list[str]:
    """The source text of each item of ``{"documents": [...]}``, exactly as sent.

    The envelope must be well-formed JSON; each item is then decoded strictly on its own, so a
    bad item fails alone and a good item is stored byte for byte as it stood in the batch.
    """
    items: list[str] | None = None
    try:
        position = _skip_whitespace(text, 0)
        position = _expect(text, position, "{", 'a batch must be an object {"documents": [...]}')
        position = _skip_whitespace(text, position)
        if text.startswith("}", position):
            position += 1
        else:
            while True:
                key, position = _EXTENT_DECODER.raw_decode(text, position)
                if not isinstance(key, str):
                    raise RejectedDocument(400, "invalid_json", "object keys must be strings")
                position = _expect(text, _skip_whitespace(text, position), ":", "expected ':'")
                position = _skip_whitespace(text, position)
                if key == "documents":
                    if items is not None:
                        raise RejectedDocument(400, "duplicate_key", "duplicate key 'documents'")
                    items, position = _split_array(text, position)
                else:
                    _, position = _EXTENT_DECODER.raw_decode(text, position)
                position = _skip_whitespace(text, position)
                if text.startswith(",", position):
                    position = _skip_whitespace(text, position + 1)
                    continue
                position = _expect(text, position, "}", "expected ',' or '}'")
                break
        if _skip_whitespace(text, position) != len(text):
            raise RejectedDocument(400, "invalid_json", "extra data after the batch object")
    except json.JSONDecodeError as exc:
        raise RejectedDocument(
            400, "invalid_json", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise RejectedDocument(400, "too_deep", "invalid JSON: nesting too deep") from None
    if items is None:
        raise RejectedDocument(
            422, "missing_documents", 'a batch needs a "documents" array', path="/documents"
        )
    return items


def _split_array(text: str, position: int) -> tuple[list[str], int]:
    if not text.startswith("[", position):
        raise RejectedDocument(422, "wrong_type", "documents: expected array", path="/documents")
    items: list[str] = []
    position = _skip_whitespace(text, position + 1)
    if text.startswith("]", position):
        return items, position + 1
    while True:
        start = position
        _, position = _EXTENT_DECODER.raw_decode(text, position)
        items.append(text[start:position])
        position = _skip_whitespace(text, position)
        if text.startswith(",", position):
            position = _skip_whitespace(text, position + 1)
            continue
        return items, _expect(text, position, "]", "expected ',' or ']' in documents")


def _skip_whitespace(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position


def _expect(text: str, position: int, char: str, message: str) -> int:
    if not text.startswith(char, position):
        raise RejectedDocument(400, "invalid_json", f"{message} at character {position}")
    return position + 1
