"""Helpers several format adapters share beyond base.py's contract and type checks.

Each one was written more than once while the adapters were built in parallel; where the copies
differed, the difference is a keyword argument here, so every adapter keeps its exact behaviour
(the same values, warnings, error codes, messages and paths).

- ``CHAT_ROLES``, :func:`map_role`: the role names most chat formats use, and an unknown role as
  ``other`` with a warning.
- ``ANTHROPIC_BLOCK_TYPES``, :func:`has_anthropic_blocks`: the boundary between rule 15
  (anthropic) and rule 16 (openai_chat), one definition for both sides.
- :func:`tool_call_objects`, :func:`tool_call_id`, :func:`parse_tool_arguments`,
  :func:`refuse_json_constant`: tool calls with a synthetic id when the call has none, and
  arguments written as JSON text.
- :func:`result_looks_like_error`: the shared text heuristic for results given as text parts.
- :func:`first_string`, :func:`first_id`: the first usable of several envelope keys.
- :func:`timestamp_field`: a type-checked timestamp field.
- :func:`sum_token_usages`: session totals from per-message or per-response usage.
- :func:`read_usages`, :func:`usage_count`: usage is optional data, so a usage in a shape the
  adapter cannot read is a warning and no tokens, never a refusal; a list of usage objects
  (one per model response, as apps that log each completion keep it) is read item by item.
- :func:`parse_embedded_json`: JSON stored as a string inside the document.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sessions_api.domain import ParseWarning, Role, TokenSource, TokenUsage
from sessions_api.errors import InvalidDocument, RejectedDocument
from sessions_api.formats.base import (
    MAX_SAFE_INTEGER,
    content_to_text,
    enumerate_array,
    expect,
    json_type_name,
    optional,
    parse_timestamp,
    pointer_join,
)
from sessions_api.formats.decoding import (
    UNSTORABLE_STRING_CODES,
    DecodeLimits,
    check_content,
    parse_json_text,
)
from sessions_api.formats.pairing import looks_like_error

# --- roles ----------------------------------------------------------------------------------

# ``role`` values that name the canonical role exactly (OpenAI-style history items).
CHAT_ROLES: Mapping[str, Role] = MappingProxyType(
    {"system": Role.SYSTEM, "user": Role.USER, "assistant": Role.ASSISTANT, "tool": Role.TOOL}
)


def map_role(
    raw_role: str, roles: Mapping[str, Role], path: str, warnings: list[ParseWarning]
) -> Role:
    """``roles[raw_role]``; an unknown role is ``Role.OTHER`` plus an ``unknown_role`` warning at
    ``path`` (the caller keeps ``raw_role`` so nothing is lost)."""
    role = roles.get(raw_role)
    if role is None:
        warnings.append(
            ParseWarning(
                code="unknown_role",
                message=f"unknown role {raw_role[:80]!r}; shown as 'other'",
                path=path,
            )
        )
        return Role.OTHER
    return role


# --- the Anthropic blocks (detection rules 15 and 16) ---------------------------------------

# Content block types only the Anthropic Messages API writes: a transcript holding one is an
# Anthropic transcript (rule 15), never an OpenAI chat transcript (rule 16).
ANTHROPIC_BLOCK_TYPES = frozenset(
    {
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
    }
)


def is_anthropic_block_type(block_type: Any) -> bool:
    """One of the ``ANTHROPIC_BLOCK_TYPES``, or any ``*_tool_use``/``*_tool_result`` type (the
    API names every server-side and connector tool block so: ``mcp_tool_use``,
    ``web_fetch_tool_result``, ``code_execution_tool_result`` ...)."""
    return isinstance(block_type, str) and (
        block_type in ANTHROPIC_BLOCK_TYPES or block_type.endswith(("_tool_use", "_tool_result"))
    )


def has_anthropic_blocks(message: Any) -> bool:
    """Whether ``message`` is an object whose ``content`` array holds an Anthropic block
    (:func:`is_anthropic_block_type`). Never raises."""
    if not isinstance(message, dict):
        return False
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(block, dict) and is_anthropic_block_type(block.get("type")) for block in content
    )


# --- tool calls -----------------------------------------------------------------------------


def tool_call_objects(
    value: Any, seq: int, path: str, warnings: list[ParseWarning]
) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(call, call_path, call_id) for each object of a ``tool_calls`` array at ``path`` (null:
    none) of the message ``seq``; a non-object item is ``wrong_type``, a call without an id gets
    :func:`tool_call_id`'s synthetic one."""
    if value is None:
        return
    for index, item, item_path in enumerate_array(value, path):
        call = expect(item, dict, item_path)
        yield call, item_path, tool_call_id(call, item_path, seq, index, warnings)


def tool_call_id(
    raw: dict[str, Any], path: str, seq: int, index: int, warnings: list[ParseWarning]
) -> str:
    """A tool call's ``id``; without one, ``tool_call:<seq>:<index>`` (the message's seq, the
    call's index in it) plus a ``missing_tool_call_id`` warning, so the call still pairs."""
    call_id = optional(raw, "id", str, path)
    if call_id:
        return call_id
    synthetic = f"tool_call:{seq}:{index}"
    warnings.append(
        ParseWarning(
            code="missing_tool_call_id",
            message=f"tool call has no id; using {synthetic!r}",
            path=path,
        )
    )
    return synthetic


def refuse_json_constant(name: str) -> Any:
    """``parse_constant`` for :func:`json.loads`: NaN and Infinity are not JSON, and the store
    cannot keep them, so text holding them is unparseable."""
    raise ValueError(f"{name} is not valid JSON")


def parse_tool_arguments(
    value: Any,
    path: str,
    warnings: list[ParseWarning],
    *,
    check_type: bool = True,
    blank_is_none: bool = True,
    warn_path: str | None = None,
    as_embedded_json: bool = False,
) -> tuple[Any, str | None]:
    """(arguments, arguments_error) for tool-call arguments written as JSON text.

    An object is taken as it is; a string is parsed as strict JSON. Text that is not JSON is
    kept verbatim with an ``arguments_error`` and an ``unparseable_tool_arguments`` warning at
    ``warn_path`` (default: ``path``).

    - ``check_type``: anything but a string, an object or null is ``wrong_type`` at ``path``;
      without it any other value is kept as it is.
    - ``blank_is_none``: a blank string means no arguments (some clients send ``""``); without
      it a blank string is unparseable text like any other.
    - ``as_embedded_json``: the text is held to the policy of the document itself
      (:func:`parse_embedded_json`: a NUL or lone surrogate in it is a 422 at ``path``, and
      its depth is bounded).
    """
    if check_type:
        expect(value, (str, dict), path, nullable=True)
    if not isinstance(value, str):
        return value, None
    if blank_is_none and not value.strip():
        return None, None
    if as_embedded_json:
        parsed, reason = parse_embedded_json(value, path)
        if reason is None:
            return parsed, None
    else:
        try:
            return json.loads(value, parse_constant=refuse_json_constant), None
        except (ValueError, RecursionError) as exc:
            reason = str(exc)
    error = f"arguments are not valid JSON: {reason[:200]}"
    warnings.append(
        ParseWarning(
            code="unparseable_tool_arguments",
            message=f"{error}; kept verbatim",
            path=path if warn_path is None else warn_path,
        )
    )
    return value, error


def result_looks_like_error(content: Any) -> bool:
    """The shared text heuristic (pairing.looks_like_error), also for results given as a list of
    text parts or an object (their text parts are read)."""
    if isinstance(content, list | dict):
        content = content_to_text(content)[0]
    return looks_like_error(content)


# --- envelope fields ------------------------------------------------------------------------


def first_string(container: dict[str, Any], keys: Iterable[str], path: str) -> str | None:
    """The first non-empty string among ``container[key]`` for ``keys`` (each type-checked)."""
    for key in keys:
        value = optional(container, key, str, path)
        if value:
            return value
    return None


def first_id(
    container: dict[str, Any], keys: Iterable[str], path: str, warnings: list[ParseWarning]
) -> str | None:
    """The first non-blank string id among ``keys``; a blank one is skipped with an
    ``empty_session_id`` warning (treated as absent)."""
    for key in keys:
        value = container.get(key)
        if value is None:
            continue
        at = pointer_join(path, key)
        expect(value, str, at)
        if value.strip():
            return value
        warnings.append(
            ParseWarning(
                code="empty_session_id", message=f"{key} is blank; treated as absent", path=at
            )
        )
    return None


def timestamp_field(
    container: dict[str, Any],
    key: str,
    path: str,
    warnings: list[ParseWarning],
    kinds: tuple[type, ...] = (str, int, float),
) -> datetime | None:
    """:func:`~sessions_api.formats.base.parse_timestamp` of ``container[key]`` after checking its
    JSON type against ``kinds`` (the order names the types in a ``wrong_type`` message)."""
    value = optional(container, key, kinds, path)
    return parse_timestamp(value, pointer_join(path, key), warnings)


# --- tokens ---------------------------------------------------------------------------------

TOKEN_FIELDS = ("input", "output", "total", "reasoning", "cached", "cache_write")


def sum_token_usages(
    usages: Iterable[TokenUsage],
    path: str,
    *,
    skip_empty: bool = False,
    path_in_message: bool = True,
) -> TokenUsage:
    """The field-wise sum of ``usages`` with source ``summed``; ``TokenUsage()`` when there are
    none. A field no usage has stays None; a sum above 2^53-1 is ``out_of_range`` at ``path``
    (the largest integer a JavaScript client reads exactly).

    - ``skip_empty``: usages without input, output and total are left out first, so usages
      that are all empty give ``TokenUsage()`` rather than an empty summed usage.
    - ``path_in_message``: the error message starts with the path (``document`` for ``""``).
    """
    kept = [usage for usage in usages if not (skip_empty and usage.is_empty)]
    if not kept:
        return TokenUsage()
    totals: dict[str, int | None] = {}
    for name in TOKEN_FIELDS:
        values = [getattr(u, name) for u in kept if getattr(u, name) is not None]
        total = sum(values) if values else None
        if total is not None and total > MAX_SAFE_INTEGER:
            where = f"{path or 'document'}: " if path_in_message else ""
            raise InvalidDocument(
                f"{where}summed {name} tokens exceed 2^53-1", path=path, code="out_of_range"
            )
        totals[name] = total
    return TokenUsage(source=TokenSource.SUMMED, **totals)


# Above this a count is kept but flagged: no real session spends a trillion tokens.
IMPLAUSIBLE_TOKEN_COUNT = 10**12


def usage_count(value: Any, path: str, warnings: list[ParseWarning]) -> int | None:
    """A token count inside optional usage data.

    Not an integer: ``wrong_type`` (:func:`read_usages` turns it into a warning; "451" is never
    read as 451). Negative: impossible, clamped to 0 with an ``impossible_token_count`` warning.
    At or above ``IMPLAUSIBLE_TOKEN_COUNT``: kept, with an ``implausible_token_count`` warning.
    Above 2^53-1: ``out_of_range`` (no client reads it exactly; the document is refused)."""
    if value is None:
        return None
    expect(value, int, path)
    if value < 0:
        warnings.append(
            ParseWarning(
                code="impossible_token_count",
                message=f"token count {value} is negative; counted as 0",
                path=path,
            )
        )
        return 0
    if value > MAX_SAFE_INTEGER:
        raise InvalidDocument(
            f"{path}: token count {value} is out of range (0 to 2^53-1)",
            path=path,
            code="out_of_range",
        )
    if value >= IMPLAUSIBLE_TOKEN_COUNT:
        warnings.append(
            ParseWarning(
                code="implausible_token_count",
                message=f"token count {value} is implausibly large; kept as given",
                path=path,
            )
        )
    return value


def read_usages(
    value: Any,
    path: str,
    warnings: list[ParseWarning],
    read_one: Callable[[dict[str, Any], str], TokenUsage],
) -> list[TokenUsage] | None:
    """The usages in an optional usage field: ``[read_one(value)]`` for an object, one per
    object for a list of them; None when the field is absent or null.

    Anything ``read_one`` cannot read (``wrong_type`` inside it), a usage that is neither an
    object nor a list, and a list item that is not an object is left out with an
    ``unreadable_usage`` warning: the session is imported without those tokens."""
    if value is None:
        return None
    if isinstance(value, dict):
        items = [(value, path)]
    elif isinstance(value, list):
        items = [(item, f"{path}/{index}") for index, item in enumerate(value)]
    else:
        items = [(value, path)]
    usages: list[TokenUsage] = []
    for item, item_path in items:
        if not isinstance(item, dict):
            _unreadable_usage(
                item_path, f"a usage is an object, not {json_type_name(item)}", warnings
            )
            continue
        try:
            usages.append(read_one(item, item_path))
        except InvalidDocument as exc:
            if exc.code != "wrong_type":
                raise
            _unreadable_usage(exc.path or item_path, exc.message, warnings)
    return usages


def _unreadable_usage(path: str, reason: str, warnings: list[ParseWarning]) -> None:
    warnings.append(
        ParseWarning(
            code="unreadable_usage",
            message=f"token usage not read ({reason[:160]}); its tokens are not counted",
            path=path,
        )
    )


# --- embedded JSON --------------------------------------------------------------------------

_EMBEDDED_LIMITS = DecodeLimits()


def parse_embedded_json(text: str, path: str) -> tuple[Any, str | None]:
    """A JSON value stored as a string inside the document (``message_data``, ``event_data``,
    token details): (value, None), or (None, reason) when it is not strict JSON.

    Strings that no store can hold (NUL, lone surrogates) are an InvalidDocument at ``path``,
    exactly as they would be in the document itself."""
    try:
        value = parse_json_text(text)
    except RejectedDocument as exc:
        return None, exc.message
    try:
        check_content(value, _EMBEDDED_LIMITS)
    except RejectedDocument as exc:
        if exc.code in UNSTORABLE_STRING_CODES:
            raise InvalidDocument(
                f"{path}: {exc.message}", path=path + (exc.path or ""), code=exc.code
            ) from None
        return None, exc.message
    return value, None
