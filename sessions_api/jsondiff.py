"""Small, pure JSON diffs (standard library only).

- :func:`diff` gives an RFC 6902 JSON patch from one value to another. Each ``replace`` and
  ``remove`` op also carries ``"old"``, the value it replaced, so an audit entry explains itself
  without its before-document. Lists are compared position by position (a list that grew is a
  run of ``add`` ops at its end, which is what appending messages looks like).
- :func:`apply_patch` applies such a patch; :func:`rebase` re-applies one editor's change on
  top of a document someone else changed meanwhile, and names the paths both changed.
- :func:`merge_patch` is RFC 7386 (JSON merge patch): how PATCH merges state.
- :func:`text_diff` is a unified diff of two values' pretty-printed JSON, for people.

JSON equality here is strict: ``1``, ``1.0`` and ``true`` are different values (their bytes are).
"""

from __future__ import annotations

import copy
import difflib
import json
from dataclasses import dataclass, field
from typing import Any

MISSING: Any = object()


class PatchError(ValueError):
    """A patch op that does not fit the document (a missing parent, an index out of range)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


# --- pointers (RFC 6901) ----------------------------------------------------------------------


def pointer(*parts: str | int) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def split_pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"{path!r} is not a JSON pointer", path=path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def resolve(doc: Any, path: str) -> Any:
    """The value at ``path``, or :data:`MISSING`."""
    node = doc
    for part in split_pointer(path):
        if isinstance(node, dict):
            if part not in node:
                return MISSING
            node = node[part]
        elif isinstance(node, list):
            index = _index(part)
            if index is None or index >= len(node):
                return MISSING
            node = node[index]
        else:
            return MISSING
    return node


def _index(part: str) -> int | None:
    if not part.isdigit() or (len(part) > 1 and part[0] == "0"):
        return None
    return int(part)


# --- equality and diff ------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """JSON equality that tells 1 from 1.0 from true."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def diff(before: Any, after: Any, *, max_ops: int = 2000) -> list[dict[str, Any]]:
    """An RFC 6902 patch from ``before`` to ``after`` (ops carry ``old`` where they drop a
    value). At most ``max_ops`` ops; a longer diff ends with ``{"op": "truncated"}``."""
    ops: list[dict[str, Any]] = []
    _diff(before, after, "", ops)
    if len(ops) > max_ops:
        return [*ops[:max_ops], {"op": "truncated", "omitted": len(ops) - max_ops}]
    return ops


def _diff(a: Any, b: Any, path: str, ops: list[dict[str, Any]]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            if key not in b:
                ops.append({"op": "remove", "path": path + pointer(key), "old": a[key]})
        for key, value in b.items():
            if key in a:
                _diff(a[key], value, path + pointer(key), ops)
            else:
                ops.append({"op": "add", "path": path + pointer(key), "value": value})
        return
    if isinstance(a, list) and isinstance(b, list):
        common = min(len(a), len(b))
        for index in range(common):
            _diff(a[index], b[index], path + pointer(index), ops)
        # Removals from the end first, so every index stays valid while the patch applies.
        for index in range(len(a) - 1, common - 1, -1):
            ops.append({"op": "remove", "path": path + pointer(index), "old": a[index]})
        for index in range(common, len(b)):
            ops.append({"op": "add", "path": path + pointer(index), "value": b[index]})
        return
    if not same(a, b):
        ops.append({"op": "replace", "path": path, "value": b, "old": a})


def changed_paths(ops: list[dict[str, Any]]) -> list[str]:
    return [op["path"] for op in ops if "path" in op]


# --- applying ---------------------------------------------------------------------------------


def apply_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """A copy of ``doc`` with ``ops`` (add, remove, replace) applied; PatchError if one does
    not fit."""
    result = copy.deepcopy(doc)
    for op in ops:
        result = _apply(result, op)
    return result


def _apply(doc: Any, op: dict[str, Any]) -> Any:
    kind, path = op.get("op"), op.get("path", "")
    if kind not in ("add", "remove", "replace"):
        raise PatchError(f"unsupported patch op {kind!r}", path=path)
    if path == "":
        if kind == "remove":
            raise PatchError("cannot remove the whole document", path=path)
        return copy.deepcopy(op["value"])
    parts = split_pointer(path)
    parent = resolve(doc, pointer(*parts[:-1]))
    last = parts[-1]
    if isinstance(parent, dict):
        if kind in ("remove", "replace") and last not in parent:
            raise PatchError(f"{path}: nothing to {kind} there", path=path)
        if kind == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(op["value"])
        return doc
    if isinstance(parent, list):
        index = len(parent) if (last == "-" and kind == "add") else _index(last)
        limit = len(parent) if kind == "add" else len(parent) - 1
        if index is None or index > limit:
            raise PatchError(f"{path}: index out of range", path=path)
        if kind == "add":
            parent.insert(index, copy.deepcopy(op["value"]))
        elif kind == "remove":
            del parent[index]
        else:
            parent[index] = copy.deepcopy(op["value"])
        return doc
    raise PatchError(f"{path}: the parent is not an object or array", path=path)


@dataclass(frozen=True)
class Rebased:
    value: Any
    # Paths that both sides changed, differently: the re-applied change wins there.
    conflicts: list[str] = field(default_factory=list)


def rebase(base: Any, mine: Any, theirs: Any) -> Rebased:
    """Re-apply the change ``base -> mine`` on top of ``theirs`` (a three-way merge).

    Where the other side left a path as it was in ``base``, my change applies cleanly. Where
    both changed the same path, my value is used and the path is reported as a conflict for a
    person to check. Items I appended to a list are appended to their (possibly longer) list.
    """
    result = copy.deepcopy(theirs)
    conflicts: list[str] = []
    for op in diff(base, mine, max_ops=10**9):
        path = op["path"]
        parts = split_pointer(path)
        parent_path = pointer(*parts[:-1]) if parts else ""
        base_parent = resolve(base, parent_path)
        appended = (
            op["op"] == "add"
            and isinstance(base_parent, list)
            and (_index(parts[-1]) or 0) >= len(base_parent)
        )
        if appended:
            target = resolve(result, parent_path)
            if isinstance(target, list):
                target.append(copy.deepcopy(op["value"]))
                continue
        theirs_value = resolve(theirs, path)
        base_value = resolve(base, path)
        they_changed = not _same_or_missing(theirs_value, base_value)
        if they_changed and not _same_or_missing(theirs_value, resolve(mine, path)):
            conflicts.append(path)
        result = _force(result, op)
    return Rebased(value=result, conflicts=conflicts)


def _same_or_missing(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return a is b
    return same(a, b)


def _force(doc: Any, op: dict[str, Any]) -> Any:
    """Apply ``op`` where it fits; make an add/replace an upsert and a remove of something
    already gone a no-op, since the other side may have moved the ground under it."""
    path = op["path"]
    current = resolve(doc, path)
    if op["op"] == "remove":
        return doc if current is MISSING else _apply(doc, op)
    kind = "add" if current is MISSING else "replace"
    try:
        return _apply(doc, {"op": kind, "path": path, "value": op["value"]})
    except PatchError:
        return doc  # the parent is gone on their side; nothing sensible to re-apply here


# --- merge patch (RFC 7386) -------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- for people -------------------------------------------------------------------------------


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@dataclass(frozen=True)
class DiffLine:
    kind: str  # meta, hunk, add, del, ctx
    text: str


@dataclass(frozen=True)
class TextDiff:
    lines: list[DiffLine]
    added: int
    removed: int
    truncated: bool = False
    too_large: bool = False


def text_diff(
    before: Any,
    after: Any,
    *,
    before_label: str = "before",
    after_label: str = "after",
    context: int = 3,
    max_lines: int = 3000,
    max_input_lines: int = 60_000,
) -> TextDiff:
    """A unified diff of the two values' pretty-printed JSON, bounded in input and output."""
    left = pretty(before).splitlines() if before is not MISSING else []
    right = pretty(after).splitlines() if after is not MISSING else []
    if len(left) + len(right) > max_input_lines:
        return TextDiff(lines=[], added=0, removed=0, too_large=True)
    lines: list[DiffLine] = []
    added = removed = 0
    truncated = False
    for line in difflib.unified_diff(
        left, right, fromfile=before_label, tofile=after_label, n=context, lineterm=""
    ):
        if line.startswith(("---", "+++")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind, added = "add", added + 1
        elif line.startswith("-"):
            kind, removed = "del", removed + 1
        else:
            kind = "ctx"
        if len(lines) < max_lines:
            lines.append(DiffLine(kind=kind, text=line))
        else:
            truncated = True
    return TextDiff(lines=lines, added=added, removed=removed, truncated=truncated)
