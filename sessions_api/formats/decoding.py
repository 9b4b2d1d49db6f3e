"""Strict, bounded decoding of a document's bytes into a JSON value.

Policy, in the order it is applied; every refusal is a RejectedDocument with the code named:

1. size: over the cap is ``too_large`` before anything is parsed; zero bytes is
   ``empty_document``;
2. encoding: a UTF-8 BOM is accepted (a common editor artefact); any other invalid UTF-8
   (bad bytes, encoded surrogates, overlong forms) is ``invalid_utf8``, never decoded with
   replacement;
3. syntax: strict JSON. NaN/Infinity (``non_finite_number``), duplicate keys
   (``duplicate_key``), integers beyond 64 bits and floats that overflow to infinity
   (``number_out_of_range``), and nesting deeper than the limit (``too_deep``) are refused;
4. content: lone surrogates and NUL characters (which PostgreSQL cannot store) are
   ``lone_surrogate`` and ``nul_character``, with the JSON-pointer path of the offending string;
   too many values in total is ``too_many_values``.

The result is a plain Python value; the bytes themselves are what gets stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sessions_api.errors import RejectedDocument
from sessions_api.formats.base import pointer_join

UTF8_BOM = b"\xef\xbb\xbf"
INT64_MAX = 2**63 - 1
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# The content refusals: the JSON is fine, but a string in it is one no store can keep.
UNSTORABLE_STRING_CODES = frozenset({"nul_character", "lone_surrogate"})


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 10 * 1024 * 1024
    max_depth: int = 64
    max_nodes: int = 1_000_000


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RejectedDocument("duplicate_key", f"duplicate key {key[:100]!r} in an object")
            seen.add(key)
    return result


def _reject_constant(name: str) -> Any:
    raise RejectedDocument("non_finite_number", f"{name} is not valid JSON")


def _checked_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise RejectedDocument(
            "number_out_of_range", f"number {text[:40]} overflows a 64-bit float"
        )
    return value


def _checked_int(text: str) -> int:
    # Up to 18 characters (sign included) always fits in 64 bits: the common case converts once.
    if len(text) <= 18:
        return int(text)
    # Reject on length before int() so a 5,000-digit number costs nothing (and never hits
    # CPython's 4,300-digit guard with a confusing message).
    value = int(text) if len(text.lstrip("-")) <= 19 else None
    if value is None or not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise RejectedDocument(
            "number_out_of_range", f"integer {text[:40]}… does not fit in 64 bits"
        )
    return value


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
    text = _checked_text(body, limits)
    value = parse_json_text(text)
    if _certain_node_count(text, value, limits) is None:
        check_content(value, limits)
    return value


@dataclass(frozen=True)
class LaidOutDocument:
    """A decoded document with where its parts sit, for a later version that appends to it
    (ingest/appending.py)."""

    value: Any
    text: str
    #: Bytes of the body before ``text`` (a BOM), so a text offset maps back to a byte offset.
    text_start: int
    #: Values in the document as the ``max_nodes`` limit counts them.
    nodes: int
    #: A root object's members, in document order: key, and where its value starts and ends in
    #: ``text``. None for any other root.
    members: tuple[tuple[str, int, int], ...] | None

    #: The body's length in bytes.
    size: int

    def byte_offset(self, text_offset: int) -> int:
        """The body's byte offset of a character offset of ``text``, encoding the shorter side
        of it again (an append point sits near the end)."""
        if self.text.isascii():
            return self.text_start + text_offset
        if text_offset > len(self.text) // 2:
            return self.size - len(self.text[text_offset:].encode("utf-8"))
        return self.text_start + len(self.text[:text_offset].encode("utf-8"))


def decode_document_laid_out(body: bytes, limits: DecodeLimits | None = None) -> LaidOutDocument:
    """decode_document, and where the root object's members sit: the same value, and the same
    refusal (code and message) for a document it refuses."""
    limits = limits or DecodeLimits()
    text = _checked_text(body, limits)
    laid_out = _parse_root_object(text)
    if laid_out is None:
        value, members = parse_json_text(text), None
    else:
        value, members = laid_out
    nodes = _certain_node_count(text, value, limits)
    if nodes is None:
        nodes = check_content(value, limits)
    return LaidOutDocument(
        value=value,
        text=text,
        text_start=len(UTF8_BOM) if body.startswith(UTF8_BOM) else 0,
        nodes=nodes,
        members=members,
        size=len(body),
    )


def _checked_text(body: bytes, limits: DecodeLimits) -> str:
    if len(body) > limits.max_bytes:
        raise RejectedDocument(
            "too_large", f"document is {len(body)} bytes; the limit is {limits.max_bytes}"
        )
    text = decode_utf8(body)
    if not text.strip():
        raise RejectedDocument("empty_document", "empty document")
    _check_breadth_before_parsing(text, limits)
    return text


def _parse_root_object(text: str) -> tuple[Any, tuple[tuple[str, int, int], ...]] | None:
    """A root object parsed member by member with the strict decoder (so each value's extent
    is known), or None when the text is not an object. Any failure is left to parse_json_text,
    which then raises the refusal a whole parse gives."""
    position = _skip_whitespace(text, 0)
    if not text.startswith("{", position):
        return None
    pairs: list[tuple[str, Any]] = []
    members: list[tuple[str, int, int]] = []
    try:
        position = _skip_whitespace(text, position + 1)
        if text.startswith("}", position):
            position += 1
        else:
            while True:
                if not text.startswith('"', position):
                    return None
                key, position = _DECODER.raw_decode(text, position)
                position = _skip_whitespace(text, position)
                if not text.startswith(":", position):
                    return None
                start = _skip_whitespace(text, position + 1)
                value, position = _DECODER.raw_decode(text, start)
                pairs.append((key, value))
                members.append((key, start, position))
                position = _skip_whitespace(text, position)
                if text.startswith(",", position):
                    position = _skip_whitespace(text, position + 1)
                    continue
                if not text.startswith("}", position):
                    return None
                position += 1
                break
        if _skip_whitespace(text, position) != len(text):
            return None
        return _reject_duplicates(pairs), tuple(members)
    except (ValueError, RecursionError, RejectedDocument):
        return None  # parse_json_text names it exactly


def decode_utf8(body: bytes) -> str:
    if body.startswith(UTF8_BOM):
        body = body[len(UTF8_BOM) :]
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedDocument(
            "invalid_utf8",
            f"document is not valid UTF-8: byte {exc.start} ({exc.reason})",
        ) from None


@contextmanager
def _refusing_malformed_json() -> Iterator[None]:
    """The JSON decoder's failures as ingest's refusals: where the text stops being JSON, or
    nesting deeper than Python can follow."""
    try:
        yield
    except json.JSONDecodeError as exc:
        raise RejectedDocument(
            "invalid_json", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise RejectedDocument("too_deep", "invalid JSON: nesting too deep") from None


def parse_json_text(text: str) -> Any:
    try:
        with _refusing_malformed_json():
            return _DECODER.decode(text)
    except ValueError as exc:  # any other failure of the decoder
        raise RejectedDocument("invalid_json", f"invalid JSON: {exc}") from None


def _too_many_values(limits: DecodeLimits) -> RejectedDocument:
    return RejectedDocument("too_many_values", f"document has more than {limits.max_nodes} values")


# A JSON string token (escapes included), for counting the commas outside strings. The closing
# quote is optional on purpose: an unterminated string then runs to the end of the text in one
# match instead of failing and being retried from every later quote (quadratic on '"\\"\\"...').
_STRING_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)


def _check_breadth_before_parsing(text: str, limits: DecodeLimits) -> None:
    """Refuse a document with too many values before building it (a million-element array
    costs seconds to parse and walk, and memory, for nothing).

    Every value but the first in a container is preceded by a comma outside any string, so
    (commas outside strings + 1) never exceeds the number of values check_content counts: this
    refuses only what check_content would refuse. The string-stripping pass only runs when the
    plain comma count (a cheap upper bound) could be over the limit."""
    if text.count(",") < limits.max_nodes:
        return
    if _STRING_TOKEN.sub("", text).count(",") + 1 > limits.max_nodes:
        raise _too_many_values(limits)


# The only ways a decoded string can hold NUL or a UTF-16 surrogate: the text is valid UTF-8 and
# strict JSON refuses raw control characters, so it takes a \u0000 or \uD800-\uDFFF escape.
# (A surrogate *pair* is legal; telling it from a lone one needs the decoded string.)
_RISKY_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _certain_node_count(text: str, value: Any, limits: DecodeLimits) -> int | None:
    """The number of values check_content counts when it would accept ``value`` (parsed from
    ``text``), found faster than its full walk, which runs a regex on every string and key (for
    a 4 MB document that walk costs more than parsing). None means "maybe not": check_content
    then walks the value and names the exact error and its JSON pointer.

    Without a risky escape in the text no string needs looking at, so what is left is depth
    and the number of values: one list comprehension per nesting level over the containers."""
    if _RISKY_ESCAPE.search(text):
        return None
    weight = value_weight(value, depth_above=0, limits=limits)
    return None if weight is None else 1 + weight


def value_weight(value: Any, *, depth_above: int, limits: DecodeLimits) -> int | None:
    """The values inside ``value`` (itself not counted), as check_content counts them, for a
    value nested ``depth_above`` containers deep; None when it nests deeper than the limit or
    holds more values than the limit."""
    if not isinstance(value, dict | list):
        return 0
    level: list[Any] = [value]
    depth, nodes = depth_above, 0
    while level:
        depth += 1
        if depth > limits.max_depth:
            return None
        nodes += sum(map(len, level))
        if nodes >= limits.max_nodes:
            return None
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
    return nodes


@dataclass(frozen=True)
class Continuation:
    """The rest of a document after the last element of an array that was the root or a member
    of the root object, as decode_continuation reads it."""

    #: The array's further elements.
    items: list[Any]
    #: Characters of the rest's text up to the end of its last element (0: none).
    items_end: int
    #: Characters of the rest's text before each element.
    item_starts: list[int]
    #: The text of the rest (its length in bytes may differ).
    text: str
    #: The root object's members after the array, in document order.
    members: list[tuple[str, Any]]
    #: Values in ``items`` as the ``max_nodes`` limit counts them (each item and everything
    #: inside it).
    item_nodes: int


def decode_continuation(
    rest: bytes,
    *,
    in_object: bool,
    taken_keys: Collection[str],
    nodes_before: int,
    limits: DecodeLimits,
) -> Continuation | None:
    """The rest of a document whose bytes before ``rest`` are those of a document decode_document
    accepted, up to just after an element of an array that is the root (``in_object`` False) or
    the value of a member of the root object, the other members before it keyed ``taken_keys``.
    ``nodes_before``: the values before ``rest`` as the limit counts them.

    The rest is read under decode_document's rules: strict UTF-8, further elements each after a
    comma, the array's end, then (in an object) further members, no key among ``taken_keys`` or
    repeated, and the object's end; every value read with the same strict decoder, within the
    depth and value limits, with no string a store cannot keep. None whenever the rest is not
    certainly fine, so that the whole document is decoded and refused as decode_document refuses
    it; never raises."""
    try:
        text = rest.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _RISKY_ESCAPE.search(text):
        return None  # a string to look at: the whole decode names it
    try:
        return _read_continuation(text, in_object, set(taken_keys), nodes_before, limits)
    except (ValueError, RecursionError, RejectedDocument):
        return None


def _read_continuation(
    text: str, in_object: bool, taken_keys: set[str], nodes: int, limits: DecodeLimits
) -> Continuation | None:
    items: list[Any] = []
    items_end = 0
    item_starts: list[int] = []
    nodes_before = nodes
    position = _skip_whitespace(text, 0)
    while text.startswith(",", position):
        item_starts.append(_skip_whitespace(text, position + 1))
        item, position = _DECODER.raw_decode(text, item_starts[-1])
        # An element of the root array, or of the array in the root object.
        weight = value_weight(item, depth_above=2 if in_object else 1, limits=limits)
        if weight is None:
            return None
        nodes += 1 + weight
        items.append(item)
        items_end = position
        position = _skip_whitespace(text, position)
    item_nodes = nodes - nodes_before
    if not text.startswith("]", position):
        return None
    position = _skip_whitespace(text, position + 1)
    members: list[tuple[str, Any]] = []
    if in_object:
        while text.startswith(",", position):
            position = _skip_whitespace(text, position + 1)
            if not text.startswith('"', position):
                return None
            key, position = _DECODER.raw_decode(text, position)
            if key in taken_keys:
                return None
            taken_keys.add(key)
            position = _skip_whitespace(text, position)
            if not text.startswith(":", position):
                return None
            value, position = _DECODER.raw_decode(text, _skip_whitespace(text, position + 1))
            weight = value_weight(value, depth_above=1, limits=limits)
            if weight is None:
                return None
            nodes += 1 + weight
            members.append((key, value))
            position = _skip_whitespace(text, position)
        if not text.startswith("}", position):
            return None
        position = _skip_whitespace(text, position + 1)
    if position != len(text) or nodes > limits.max_nodes:
        return None
    return Continuation(
        items=items,
        items_end=items_end,
        item_starts=item_starts,
        text=text,
        members=members,
        item_nodes=item_nodes,
    )


def read_value(text: str, position: int) -> tuple[Any, int]:
    """The JSON value starting exactly at ``position`` of ``text``, read by decode_document's
    strict decoder, and where it ends. Raises ValueError (malformed), RecursionError or
    RejectedDocument, as that decoder does."""
    return _DECODER.raw_decode(text, position)


# Where a value sits, built only when something is wrong: (parent location, key or index).
_Location = tuple["_Location | None", str | int] | None


def _pointer_of(location: _Location) -> str:
    parts: list[str | int] = []
    while location is not None:
        location, part = location
        parts.append(part)
    return pointer_join("", *reversed(parts))


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def check_content(value: Any, limits: DecodeLimits) -> int:
    """Walk the value once (iteratively: no recursion to exhaust) checking depth, the number of
    values and strings (keys too) that no store can hold; returns the number of values.

    Hot path: a 10 MB document has millions of values, so scalars are checked inline, never
    pushed, and JSON pointers are only built for the one value that is refused."""
    if isinstance(value, str):
        _check_string(value, None)
    if not isinstance(value, dict | list):
        return 1
    nodes = 1
    stack: list[tuple[dict[str, Any] | list[Any], int, _Location]] = [(value, 1, None)]
    while stack:
        node, depth, location = stack.pop()
        if depth > limits.max_depth:
            raise RejectedDocument(
                "too_deep",
                f"nesting deeper than {limits.max_depth} levels",
                path=_pointer_of(location),
            )
        nodes += len(node)
        if nodes > limits.max_nodes:
            raise _too_many_values(limits)
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in children:
            if isinstance(key, str) and _UNSTORABLE.search(key):
                _check_string(key, (location, key))
            if isinstance(child, str):
                if _UNSTORABLE.search(child):
                    _check_string(child, (location, key))
            elif isinstance(child, dict | list):
                stack.append((child, depth + 1, (location, key)))
    return nodes


def _check_string(text: str, location: _Location) -> None:
    if "\x00" in text:
        raise RejectedDocument(
            "nul_character",
            "strings must not contain NUL (\\u0000)",
            path=_pointer_of(location),
        )
    if _LONE_SURROGATE.search(text):
        raise RejectedDocument(
            "lone_surrogate",
            "string contains an unpaired UTF-16 surrogate",
            path=_pointer_of(location),
        )


# --- batches ----------------------------------------------------------------------------------

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# Finds where each item of a batch ends without judging it: numbers and constants are not even
# converted, so an item that the strict decoder will refuse still has a clear extent.
_EXTENT_DECODER = json.JSONDecoder(
    parse_float=lambda _: 0.0, parse_int=lambda _: 0, parse_constant=lambda _: 0.0
)


def split_batch_documents(text: str, *, max_items: int | None = None) -> list[str]:
    """The source text of each item of ``{"documents": [...]}``, exactly as sent.

    The envelope must be well-formed JSON; each item is then decoded strictly on its own, so a
    bad item fails alone and a good item is stored byte for byte as it stood in the batch.
    More than ``max_items`` items is ``too_many_documents`` as soon as the next item starts:
    the cap is checked while walking, never after walking every item of a huge array.
    """
    items: list[str] | None = None
    with _refusing_malformed_json():
        position = _skip_whitespace(text, 0)
        position = _expect(text, position, "{", 'a batch must be an object {"documents": [...]}')
        position = _skip_whitespace(text, position)
        if text.startswith("}", position):
            position += 1
        else:
            while True:
                key, position = _EXTENT_DECODER.raw_decode(text, position)
                if not isinstance(key, str):
                    raise RejectedDocument("invalid_json", "object keys must be strings")
                position = _expect(text, _skip_whitespace(text, position), ":", "expected ':'")
                position = _skip_whitespace(text, position)
                if key == "documents":
                    if items is not None:
                        raise RejectedDocument("duplicate_key", "duplicate key 'documents'")
                    items, position = _split_array(text, position, max_items)
                else:
                    _, position = _EXTENT_DECODER.raw_decode(text, position)
                position = _skip_whitespace(text, position)
                if text.startswith(",", position):
                    position = _skip_whitespace(text, position + 1)
                    continue
                position = _expect(text, position, "}", "expected ',' or '}'")
                break
        if _skip_whitespace(text, position) != len(text):
            raise RejectedDocument("invalid_json", "extra data after the batch object")
    if items is None:
        raise RejectedDocument(
            "missing_documents", 'a batch needs a "documents" array', path="/documents"
        )
    return items


def _split_array(text: str, position: int, max_items: int | None) -> tuple[list[str], int]:
    if not text.startswith("[", position):
        raise RejectedDocument("wrong_type", "documents: expected array", path="/documents")
    items: list[str] = []
    position = _skip_whitespace(text, position + 1)
    if text.startswith("]", position):
        return items, position + 1
    while True:
        if max_items is not None and len(items) >= max_items:
            raise RejectedDocument(
                "too_many_documents",
                f"more than {max_items} documents; the limit per batch is {max_items}",
                path="/documents",
            )
        start = position
        position = _item_end(text, position)
        items.append(text[start:position])
        position = _skip_whitespace(text, position)
        if text.startswith(",", position):
            position = _skip_whitespace(text, position + 1)
            continue
        return items, _expect(text, position, "]", "expected ',' or ']' in documents")


# Inside a container item: the next bracket or string opening; and a string's rest, escapes
# included, up to its closing quote.
_STRUCTURAL = re.compile(r'[\[\]{}"]')
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def _item_end(text: str, position: int) -> int:
    """Where the batch item starting at ``position`` ends.

    The C decoder finds it fastest. An object or array item it cannot read (nested past the
    recursion limit, or malformed inside, e.g. single quotes) still has an extent as long as its
    brackets balance outside strings: that item then fails alone, judged by the strict decoder,
    instead of sinking the whole batch (one bad item never blocks the others)."""
    try:
        return _EXTENT_DECODER.raw_decode(text, position)[1]
    except (json.JSONDecodeError, RecursionError):
        if not text.startswith(("[", "{"), position):
            raise
    depth = 0
    while True:
        found = _STRUCTURAL.search(text, position)
        if found is None:
            raise RejectedDocument("invalid_json", "unterminated item in documents")
        position = found.end()
        if found.group() == '"':
            rest = _STRING_REST.match(text, position)
            if rest is None:
                raise RejectedDocument("invalid_json", "unterminated string in documents")
            position = rest.end()
            continue
        depth += 1 if found.group() in "[{" else -1
        if depth == 0:
            return position


def _skip_whitespace(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position


def _expect(text: str, position: int, char: str, message: str) -> int:
    if not text.startswith(char, position):
        raise RejectedDocument("invalid_json", f"{message} at character {position}")
    return position + 1
