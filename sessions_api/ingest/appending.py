"""Append points: a save that extends the latest version of its session costs what it adds.

An agent saves the same growing document after every turn. When a version is stored that the
growth path (formats/growing.py, incremental.py) could extend, its append point is recorded
with it (``DocumentVersion.append_point``): the byte offset just after its last message, the
SHA-256 of the bytes before that offset, how many messages they hold, where the message array
opens, the values they hold as the decoder's limit counts them, what detection read from their
messages, and the message context (the envelope's model for openai_chat).

A later document of the session whose first bytes hash to that digest repeats the version up
to its last message, so only the rest is read (decoding.decode_continuation, under the strict
decoder's rules): the appended messages, the end of the array and the root members after it.
Detection is not run over the earlier messages: the evidence recorded for them plus that of the
appended ones gives the variant, and a document holding only the appended messages checks that
no earlier detection rule comes to match. The earlier messages are decoded from the body only
if the merge asks for one of them (a stored call still waiting for its result). The store keeps
the body as a delta of the version after the shared prefix, without reading it.

Anything unexpected (another digest, a tail that is not certainly fine, another context, a
role no earlier rule can be ruled out for) answers None, and ingest takes the whole path, which
decodes, detects and refuses exactly as before.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from sessions_api.errors import RejectedDocument
from sessions_api.formats import Detection
from sessions_api.formats.decoding import (
    UTF8_BOM,
    DecodeLimits,
    LaidOutDocument,
    decode_continuation,
    read_value,
    value_weight,
)
from sessions_api.formats.growing import GrowingFormat
from sessions_api.formats.registry import FORCED_RULE, detection_if_no_earlier_rule

_WHITESPACE = " \t\n\r"
# Smaller documents take the whole path, which decodes them in well under a millisecond: the
# look-up of an append point would cost a new session more than it saves (a new session needs
# no look-up on the whole path).
MIN_BYTES = 32 * 1024
# Message offsets kept with a point: a merge re-derives from the first call still waiting for
# its result, almost always one of the last few messages.
RECENT = 32
# The root members before the message array are read from at most this many bytes of a new
# document (an id, a model, a little metadata); a longer head takes the whole path.
HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class AppendPoint:
    """Where a later version may append to a stored one (module docstring)."""

    #: Bytes of the version up to just after its last message.
    offset: int
    #: SHA-256 (hex) of those bytes.
    sha256: str
    #: Byte offset of the message array's opening bracket.
    array_offset: int
    #: Whether the array is a member of the root object (else it is the root).
    in_object: bool
    #: Raw messages before ``offset``.
    messages: int
    #: Values before ``offset`` as the decoder's max_nodes limit counts them: the root, the
    #: root members up to the array, and the messages with everything inside them.
    nodes: int
    #: What detection read from those messages (the format's hook says what).
    evidence: Any
    #: The message context (hook.message_context) as JSON text.
    context: str
    #: Whether the format's own rule detected the version (not a forced format): only then is
    #: no earlier rule known to miss its messages.
    detected: bool
    #: Byte offsets where the last few messages before ``offset`` start (up to RECENT), so a
    #: merge that re-derives from one of them decodes only those; empty when unknown (a version
    #: stored whole).
    recent: list[int] = field(default_factory=list)

    def to_json(self) -> str:
        return orjson.dumps(self).decode()

    @classmethod
    def from_json(cls, text: str | None) -> AppendPoint | None:
        if not text:
            return None
        try:
            return cls(**orjson.loads(text))
        except (orjson.JSONDecodeError, TypeError):
            return None  # written by another release: the whole path records a new one


def digest_and_point(
    body: bytes, laid_out: LaidOutDocument, hook: GrowingFormat, *, detected: bool
) -> tuple[str, str | None]:
    """The body's SHA-256 and, when a later version could append to it, its append point as
    JSON (both from one pass over the bytes)."""
    point = _point_of(laid_out, hook, detected=detected)
    if point is None:
        return hashlib.sha256(body).hexdigest(), None
    hasher = hashlib.sha256(memoryview(body)[: point.offset])
    point = _with_digest(point, hasher)
    hasher.update(memoryview(body)[point.offset :])
    return hasher.hexdigest(), point.to_json()


def _with_digest(point: AppendPoint, hasher: Any) -> AppendPoint:
    return dataclasses.replace(point, sha256=hasher.copy().hexdigest())


def _point_of(
    laid_out: LaidOutDocument, hook: GrowingFormat, *, detected: bool
) -> AppendPoint | None:
    doc, text = laid_out.value, laid_out.text
    messages = hook.message_list(doc)
    if not messages or not hook.plain(messages):
        return None
    evidence = hook.evidence(messages)
    if evidence is None:
        return None
    after: list[Any] = []  # root members after the array
    if isinstance(doc, list):
        start = len(text) - len(text.lstrip(_WHITESPACE))
        end = len(text.rstrip(_WHITESPACE))
    elif laid_out.members is not None:
        keys = [key for key, _, _ in laid_out.members]
        if hook.array_key not in keys:
            return None
        index = keys.index(hook.array_key)
        _, start, end = laid_out.members[index]
        after = [doc[key] for key in keys[index + 1 :]]
    else:
        return None
    last = end - 2  # before the closing bracket
    while last > start and text[last] in _WHITESPACE:
        last -= 1
    if text[start] != "[" or text[end - 1] != "]" or text[last] != "}":
        return None
    limits = DecodeLimits(max_depth=10**9, max_nodes=10**18)  # the document passed the real ones
    nodes = laid_out.nodes - sum(
        1 + (value_weight(value, depth_above=1, limits=limits) or 0) for value in after
    )
    return AppendPoint(
        offset=laid_out.byte_offset(last + 1),
        sha256="",
        array_offset=laid_out.byte_offset(start),
        in_object=isinstance(doc, dict),
        messages=len(messages),
        nodes=nodes,
        evidence=hook.evidence_to_json(evidence),
        context=_context_json(hook, doc),
        detected=detected,
    )


def _context_json(hook: GrowingFormat, doc: Any) -> str:
    return orjson.dumps(hook.message_context(doc)).decode()


@dataclass(frozen=True)
class Head:
    """A new document's beginning: the root members before the message array (None when the
    array is the root), and the byte offset where the array opens."""

    members: dict[str, Any] | None
    array_offset: int

    def document(self, hook: GrowingFormat) -> Any:
        """The document as far as the head tells: its members with an empty message array."""
        if self.members is None:
            return []
        return {**self.members, hook.array_key: []}


def read_head(body: bytes, hook: GrowingFormat) -> Head | None:
    """The head of ``body`` read with the strict decoder, or None when it is not plainly one
    (a member value that does not end within HEAD_BYTES, a repeated key, no array where the
    messages go): the whole path then judges the document."""
    bom = len(UTF8_BOM) if body.startswith(UTF8_BOM) else 0
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(body[bom : bom + HEAD_BYTES])
    except UnicodeDecodeError:
        return None
    position = _skip(text, 0)
    if text.startswith("[", position):
        return Head(members=None, array_offset=bom + position)
    if not text.startswith("{", position):
        return None
    members: dict[str, Any] = {}
    position = _skip(text, position + 1)
    try:
        while text.startswith('"', position):
            key, position = read_value(text, position)
            position = _skip(text, position)
            if key in members or not text.startswith(":", position):
                return None
            position = _skip(text, position + 1)
            if key == hook.array_key:
                if not text.startswith("[", position):
                    return None
                return Head(
                    members=members, array_offset=bom + len(text[:position].encode("utf-8"))
                )
            members[key], position = read_value(text, position)
            position = _skip(text, position)
            if not text.startswith(",", position):
                return None
            position = _skip(text, position + 1)
    except (ValueError, RecursionError, RejectedDocument):
        return None
    return None


def _byte_length(text: str, end: int) -> int:
    """Bytes of ``text[:end]`` in UTF-8."""
    return end if text.isascii() else len(text[:end].encode("utf-8"))


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in _WHITESPACE:
        position += 1
    return position


class EarlierOnDemand(list):
    """A message array read from an append point: the appended messages are at hand, the
    earlier ones (placeholders until then) are decoded from the body when asked for: from the
    one asked for on when the point knows where it starts, else all of them (and all of them
    for an iteration or a slice). The earlier bytes are a stored version's, which passed the
    strict decoder, so orjson reads them to the same values."""

    def __init__(self, body: bytes, point: AppendPoint, appended: list[Any]) -> None:
        super().__init__([None] * point.messages)
        self.extend(appended)
        self._body = body
        self._point = point
        self._loaded_from = point.messages  # the earlier messages from here on are decoded

    def _load(self, index: int = 0) -> None:
        if index >= self._loaded_from:
            return
        point = self._point
        recent_first = point.messages - len(point.recent)
        if index >= recent_first:
            start = point.recent[index - recent_first]
            window = b"[" + self._body[start : point.offset] + b"]"
        else:
            index, window = 0, self._body[point.array_offset : point.offset] + b"]"
        list.__setitem__(self, slice(index, point.messages), orjson.loads(window))
        self._loaded_from = index

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int) and index >= 0:
            self._load(index)
        else:
            self._load()
        return list.__getitem__(self, index)

    def __iter__(self) -> Any:
        self._load()
        return list.__iter__(self)

    def __reversed__(self) -> Any:
        self._load()
        return list.__reversed__(self)

    def __contains__(self, value: Any) -> bool:
        self._load()
        return list.__contains__(self, value)

    def __eq__(self, other: Any) -> bool:
        self._load()
        return list.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Continued:
    """A document read from an append point of its session's latest version."""

    #: The document: its root members (or root array) with EarlierOnDemand as the messages.
    doc: Any
    appended: list[Any]
    variant: str
    detection: Detection
    digest: str
    #: The new version's own append point, as JSON.
    point: str


def continue_from(
    body: bytes,
    hook: GrowingFormat,
    head: Head,
    point: AppendPoint,
    *,
    format_id: str | None,
    limits: DecodeLimits,
    max_messages: int,
) -> Continued | None:
    """``body`` read from ``point`` (of its session's latest version) on, or None when only the
    whole path is sure to decode, detect and refuse it as it should (module docstring)."""
    in_object = head.members is not None
    if (
        point.in_object != in_object
        or point.array_offset != head.array_offset
        or not point.array_offset < point.offset <= len(body) <= limits.max_bytes
        or (format_id is None and not point.detected)
    ):
        return None
    view = memoryview(body)
    hasher = hashlib.sha256(view[: point.offset])
    if hasher.hexdigest() != point.sha256:
        return None  # not the stored version's bytes up to its last message
    taken = [*(head.members or ()), hook.array_key] if in_object else []
    rest = decode_continuation(
        body[point.offset :],
        in_object=in_object,
        taken_keys=taken,
        nodes_before=point.nodes,
        limits=limits,
    )
    if rest is None:
        return None
    appended = rest.items
    total = point.messages + len(appended)
    if total > max_messages or not hook.plain(appended):
        return None
    added = hook.appended_evidence(appended)
    if added is None:
        return None
    evidence = hook.evidence_from_json(point.evidence) + added
    messages = EarlierOnDemand(body, point, appended)
    doc: Any = messages
    if head.members is not None:
        doc = {**head.members, hook.array_key: messages, **dict(rest.members)}
    if _context_json(hook, doc) != point.context:
        return None
    variant = hook.variant(doc, evidence)
    if variant is None:
        return None
    if format_id:
        detection = Detection(format_id=format_id, rule=FORCED_RULE)
    else:
        # Detection over the whole document. The version before was detected by the format's
        # own rule: no earlier rule matched it, and a rule that needs every message to pass a
        # test still fails on the earlier messages. What can change is the root's members and
        # what the appended messages add (hook.appended_evidence rules out any role or block
        # an earlier rule looks for): tried on the root with only the appended messages.
        probe = {**doc, hook.array_key: appended} if in_object else appended
        found = detection_if_no_earlier_rule(probe, hook.format_id, variant)
        if found is None:
            return None
        detection = found
    offset = point.offset + _byte_length(rest.text, rest.items_end)
    starts = [point.offset + _byte_length(rest.text, start) for start in rest.item_starts]
    hasher.update(view[point.offset : offset])
    new_point = AppendPoint(
        offset=offset,
        sha256=hasher.copy().hexdigest(),
        array_offset=point.array_offset,
        in_object=in_object,
        messages=total,
        nodes=point.nodes + rest.item_nodes,
        evidence=hook.evidence_to_json(evidence),
        context=point.context,
        detected=format_id is None,
        recent=[*point.recent, *starts][-RECENT:],
    )
    hasher.update(view[offset:])
    return Continued(
        doc=doc,
        appended=appended,
        variant=variant,
        detection=detection,
        digest=hasher.hexdigest(),
        point=new_point.to_json(),
    )
