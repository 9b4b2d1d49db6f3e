"""The format adapter contract and the helpers adapters share.

An adapter is a module-level object with:

- ``format_id``: one of ``registry.FORMAT_IDS``;
- ``rules``: the detection rules it owns, each numbered as in the table of README.md beside this
  file (the registry sorts every adapter's rules by that number, so the global precedence stays
  the documented one);
- ``parse(doc) -> ParsedSession``: a pure function from the decoded JSON value to the canonical
  session, raising :class:`InvalidDocument` with a JSON-pointer path when the document is not a
  valid document of this format, and returning warnings for anything odd but survivable.

Adapters never touch Django, storage or the network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sessions_api.domain import ParsedSession, ParseWarning
from sessions_api.errors import InvalidDocument

# Bounds that keep derived values sane: integers a JavaScript client reads exactly, and dates
# no agent session can have.
MAX_SAFE_INTEGER = 2**53 - 1
EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
LATEST_PLAUSIBLE = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DetectionRule:
    number: int
    format_id: str
    description: str
    matches: Callable[[Any], bool]
    # Which shape of the format this rule recognises (e.g. "v1.5", "transcript").
    variant: str = ""


class FormatAdapter(Protocol):
    format_id: str
    rules: tuple[DetectionRule, ...]

    def parse(self, doc: Any) -> ParsedSession: ...


@dataclass(frozen=True)
class ModuleAdapter:
    """A :class:`FormatAdapter` whose ``parse`` is the adapter module's ``parse`` function."""

    format_id: str
    rules: tuple[DetectionRule, ...]
    parse_function: Callable[[Any], ParsedSession]

    def parse(self, doc: Any) -> ParsedSession:
        return self.parse_function(doc)


@dataclass
class ParseContext:
    """What every parse collects: its warnings. Adapters subclass it for their own state
    (with ``@dataclass(kw_only=True)`` when a field has no default)."""

    warnings: list[ParseWarning] = field(default_factory=list)

    def warn(self, code: str, message: str, path: str = "") -> None:
        self.warnings.append(ParseWarning(code=code, message=message, path=path))


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from path parts: pointer("flows", 0, "name") -> /flows/0/name."""
    escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return "".join("/" + part for part in escaped)


_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def json_type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _is_kind(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if type(value) in kinds:
        return True  # the common case: decoded JSON holds exactly these types
    # bool is an int in Python but not in JSON: never accept true as a number.
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kind)


def expect(value: Any, kind: type | tuple[type, ...], path: str, *, nullable: bool = False) -> Any:
    """Return ``value`` if it has the JSON type ``kind``, else raise InvalidDocument at ``path``."""
    if value is None and nullable:
        return None
    if not _is_kind(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise InvalidDocument(
            f"{path or 'document'}: expected {wanted}, got {json_type_name(value)}",
            path=path,
            code="wrong_type",
        )
    return value


def optional(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str) -> Any:
    """``doc[key]`` type-checked, or None when the key is absent or null.

    The JSON pointer ``path/key`` is built only to report a wrong type: this runs for every
    field of every message, so the happy path allocates nothing."""
    value = doc.get(key)
    if value is None or _is_kind(value, kind):
        return value
    return expect(value, kind, pointer_join(path, key))  # raises wrong_type at path/key


def required(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str) -> Any:
    """``doc[key]`` type-checked; absent or null is ``missing_field`` ("path/key: required")."""
    value = doc.get(key)
    if value is None:
        at = pointer_join(path, key)
        raise InvalidDocument(f"{at}: required", path=at, code="missing_field")
    return optional(doc, key, kind, path)


def pointer_join(base: str, *parts: str | int) -> str:
    """``base`` followed by the pointer of ``parts``: pointer_join("/messages/0", "role").

    Adapters call this for nearly every field they read, so one index or one key with nothing
    to escape (the usual case) is joined directly, without :func:`pointer`'s generator; the
    result is the same string."""
    if len(parts) == 1:
        part = parts[0]
        if type(part) is int or (type(part) is str and "~" not in part and "/" not in part):
            return f"{base}/{part}"
    return base + pointer(*parts)


def enumerate_array(value: Any, path: str) -> Iterator[tuple[int, Any, str]]:
    """Yield (index, item, item_path) over a JSON array, type-checking the container.

    ``item_path`` is ``pointer_join(path, index)``, built without escaping (an index has
    nothing to escape)."""
    expect(value, list, path)
    for index, item in enumerate(value):
        yield index, item, f"{path}/{index}"


def array_items(container: dict[str, Any], key: str, path: str) -> Iterator[tuple[int, Any, str]]:
    """:func:`enumerate_array` over ``container[key]`` (at ``path/key``); absent or null reads
    as an empty array."""
    value = container.get(key)
    if value is None:
        return
    yield from enumerate_array(value, pointer_join(path, key))


def object_items(
    container: dict[str, Any], key: str, path: str = ""
) -> Iterator[tuple[int, dict[str, Any], str]]:
    """:func:`array_items` whose every item must be an object (``wrong_type`` at its path):
    the rows of a table in a database dump."""
    for index, item, item_path in array_items(container, key, path):
        yield index, expect(item, dict, item_path), item_path


def token_count(value: Any, path: str) -> int | None:
    """A token count: a non-negative safe integer, or None when absent."""
    if value is None:
        return None
    expect(value, int, path)
    if value < 0 or value > MAX_SAFE_INTEGER:
        raise InvalidDocument(
            f"{path}: token count {value} is out of range (0 to 2^53-1)",
            path=path,
            code="out_of_range",
        )
    return value


def parse_timestamp(
    value: Any, path: str, warnings: list[ParseWarning] | None = None
) -> datetime | None:
    """Parse an ISO 8601 string, a Mongo extended-JSON ``{"$date": ...}``, or epoch seconds.

    Out-of-range or unparseable values become None plus a warning, never an error: a bad
    timestamp should not cost the user the whole session.
    """
    if value is None:
        return None
    raw = value
    if isinstance(value, dict) and "$date" in value:
        # Mongo extended JSON: {"$date": ISO} or epoch *milliseconds* as a number or as
        # {"$numberLong": "..."}.
        value = value["$date"]
        if isinstance(value, dict) and "$numberLong" in value:
            value = value["$numberLong"]
            if isinstance(value, str) and value.lstrip("-").isdigit():
                value = int(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = value / 1000.0
    parsed: datetime | None = None
    try:
        if isinstance(value, bool):
            parsed = None
        elif isinstance(value, int | float):
            parsed = datetime.fromtimestamp(float(value), tz=UTC)
        elif isinstance(value, str):
            text = value.strip()
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        parsed = None
    if parsed is not None and not (EARLIEST_PLAUSIBLE <= parsed <= LATEST_PLAUSIBLE):
        parsed = None
    if parsed is None and warnings is not None:
        warnings.append(
            ParseWarning(
                code="bad_timestamp",
                message=f"unreadable or implausible timestamp {str(raw)[:80]!r}; ignored",
                path=path,
            )
        )
    return parsed


def checked_content(
    content: Any, path: str, kinds: tuple[type, ...] = (str, list, dict)
) -> tuple[str, Any]:
    """:func:`content_to_text` of a message's ``content`` after checking that it is a string,
    an array or an object (or null): anything else is ``wrong_type`` at ``path`` (``kinds``
    only orders the types the message names)."""
    if content is not None:
        expect(content, kinds, path)
    return content_to_text(content)


def content_to_text(content: Any) -> tuple[str, Any]:
    """Split message content into display text and structured parts.

    Plain strings are text. Lists of content blocks contribute their text blocks to the text and
    are kept whole as parts. Any other value (an object from structured output) is kept as parts
    and rendered as text by the UI.
    """
    if content is None:
        return "", None
    if isinstance(content, str):
        return content, None
    if isinstance(content, list):
        texts = []
        for block in content:
            if isinstance(block, str):
                texts.append(block)
            elif isinstance(block, dict):
                text = block.get("text")
                if isinstance(text, str):
                    texts.append(text)
        return "\n".join(texts), content
    return "", content
