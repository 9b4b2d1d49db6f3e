"""Small, pure JSON diffs (standard library only).

- :func:`diff` gives an RFC 6902 JSON patch from one value to another. Each ``replace`` and
  ``remove`` op also carries ``"old"``, the value it replaced, so an audit entry explains itself
  without its before-document. Lists are compared position by position (a list that grew is a
  run of ``add`` ops at its end, which is what appending messages looks like).
- :func:`apply_patch` applies such a patch; :func:`rebase` re-applies one editor's change on
  top of a document someone else changed meanwhile, and names the paths both changed.
- :func:`merge_patch` is RFC 7386 (JSON merge patch): how PATCH merges state.
- :func:`text_diff` is a unified diff of two values' pretty-printed JSON, for people, and
  :func:`line_diff` the same for any two lists of lines: both within a :class:`DiffBudget`
  (Myers' O(ND) search with cut-offs) and saying ``too_large`` rather than running on.

JSON equality here is strict: ``1``, ``1.0`` and ``true`` are different values (their bytes are).
"""

from __future__ import annotations

import copy
import json
import time
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

# Pretty-printing follows nesting this deep; anything deeper is shown as compact JSON on one
# line (or, past what the encoder can follow, as its type), so stored content never breaks a page.
PRETTY_MAX_DEPTH = 64


def pretty(value: Any, *, max_depth: int = PRETTY_MAX_DEPTH) -> str:
    """2-space JSON for people. Never raises: nesting past ``max_depth`` is written compact,
    and a value no encoder can write (nested past the interpreter's limit, not JSON) becomes a
    short placeholder."""
    try:
        if _deeper_than(value, max_depth):
            return json.dumps(value, ensure_ascii=False, default=str)
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (RecursionError, ValueError, TypeError):
        return f"<{type(value).__name__} too deeply nested to show>"


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels (iterative: no recursion to exhaust)."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
    return False


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
    # Over the diff budget: no diff is shown, the page offers both versions instead.
    too_large: bool = False


@dataclass(frozen=True)
class DiffBudget:
    """What one diff may cost. Over any bound the diff gives up and says so (``too_large``)
    instead of computing on: the inputs come from clients, so the cost must not.

    ``max_edits`` bounds the edit distance Myers' algorithm searches (its work grows with
    the lines times the edits), ``max_steps`` the comparisons it makes and ``max_seconds``
    the wall time, a backstop on a busy machine."""

    max_input_lines: int = 200_000
    max_edits: int = 1_000
    max_steps: int = 3_000_000
    max_seconds: float = 0.5


DEFAULT_DIFF_BUDGET = DiffBudget()


def line_diff(
    left: list[str],
    right: list[str],
    *,
    before_label: str = "before",
    after_label: str = "after",
    context: int = 3,
    max_lines: int = 3000,
    budget: DiffBudget = DEFAULT_DIFF_BUDGET,
) -> TextDiff:
    """A unified diff of two lists of lines (the format of ``diff -u``), within ``budget``.

    Lines are compared by identity of their text (interned to small integers), the common head
    and tail are skipped in linear time, a multiset count gives a lower bound on the edits (so a
    hopeless pair is refused in linear time), and Myers' O(ND) search runs on what is left with
    the budget's cut-offs. Output past ``max_lines`` lines is cut (``truncated``)."""
    if len(left) + len(right) > budget.max_input_lines:
        return TextDiff(lines=[], added=0, removed=0, too_large=True)
    ops = _edit_script(left, right, budget, deadline=time.monotonic() + budget.max_seconds)
    if ops is None:
        return TextDiff(lines=[], added=0, removed=0, too_large=True)
    lines: list[DiffLine] = []
    added = sum(1 for op in ops if op[0] == "+")
    removed = sum(1 for op in ops if op[0] == "-")
    truncated = False
    if added or removed:
        lines = [DiffLine("meta", f"--- {before_label}"), DiffLine("meta", f"+++ {after_label}")]
        for hunk in _hunks(ops, context):
            lines.extend(_hunk_lines(hunk, left, right))
            if len(lines) > max_lines:
                lines, truncated = lines[:max_lines], True
                break
    return TextDiff(lines=lines, added=added, removed=removed, truncated=truncated)


def text_diff(
    before: Any,
    after: Any,
    *,
    before_label: str = "before",
    after_label: str = "after",
    context: int = 3,
    max_lines: int = 3000,
    budget: DiffBudget = DEFAULT_DIFF_BUDGET,
) -> TextDiff:
    """A unified diff of the two values' pretty-printed JSON, within ``budget``."""
    left = pretty(before).splitlines() if before is not MISSING else []
    right = pretty(after).splitlines() if after is not MISSING else []
    return line_diff(
        left,
        right,
        before_label=before_label,
        after_label=after_label,
        context=context,
        max_lines=max_lines,
        budget=budget,
    )


# An edit script: (op, left index, right index), op " " (same), "-" (left only), "+" (right only).
_Op = tuple[str, int, int]


def _edit_script(
    left: list[str], right: list[str], budget: DiffBudget, *, deadline: float
) -> list[_Op] | None:
    """The shortest edit script from ``left`` to ``right``, or None when over ``budget``."""
    n, m = len(left), len(right)
    head = 0
    while head < n and head < m and left[head] == right[head]:
        head += 1
    tail = 0
    while tail < n - head and tail < m - head and left[n - 1 - tail] == right[m - 1 - tail]:
        tail += 1
    ids: dict[str, int] = {}
    a = [ids.setdefault(line, len(ids)) for line in left[head : n - tail]]
    b = [ids.setdefault(line, len(ids)) for line in right[head : m - tail]]
    if _edit_lower_bound(a, b) > budget.max_edits:
        return None
    middle = _myers(a, b, budget, deadline=deadline)
    if middle is None:
        return None
    ops: list[_Op] = [(" ", i, i) for i in range(head)]
    ops.extend((op, i + head, j + head) for op, i, j in middle)
    ops.extend((" ", n - tail + k, m - tail + k) for k in range(tail))
    return ops


def _edit_lower_bound(a: list[int], b: list[int]) -> int:
    """Lines one side has more copies of than the other must each be added or removed."""
    counts: dict[int, int] = {}
    for line in a:
        counts[line] = counts.get(line, 0) + 1
    for line in b:
        counts[line] = counts.get(line, 0) - 1
    return sum(abs(count) for count in counts.values())


def _myers(a: list[int], b: list[int], budget: DiffBudget, *, deadline: float) -> list[_Op] | None:
    """Myers' greedy shortest-edit search (1986), keeping each round's frontier to trace the
    path back. None once the edits, the comparisons or the time run over the budget."""
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return [("-", i, 0) for i in range(n)] + [("+", n, j) for j in range(m)]
    max_d = min(n + m, budget.max_edits)
    offset = max_d + 1
    v = [0] * (2 * max_d + 3)
    trace: list[list[int]] = []
    steps = 0
    for d in range(max_d + 1):
        trace.append(v[offset - d - 1 : offset + d + 2])
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[offset + k - 1] < v[offset + k + 1]):
                x = v[offset + k + 1]
            else:
                x = v[offset + k - 1] + 1
            y = x - k
            start = x
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            steps += x - start + 1
            v[offset + k] = x
            if x >= n and y >= m:
                return _trace_back(trace, a_len=n, b_len=m)
        if steps > budget.max_steps or time.monotonic() > deadline:
            return None
    return None


def _trace_back(trace: list[list[int]], *, a_len: int, b_len: int) -> list[_Op]:
    ops: list[_Op] = []
    x, y = a_len, b_len
    for d in range(len(trace) - 1, -1, -1):
        frontier = trace[d]  # v[-d-1 .. d+1] before round d

        def at(k: int, frontier: list[int] = frontier, d: int = d) -> int:
            return frontier[k + d + 1]

        k = x - y
        down = k == -d or (k != d and at(k - 1) < at(k + 1))
        prev_k = k + 1 if down else k - 1
        prev_x = at(prev_k) if d > 0 else 0
        prev_y = prev_x - prev_k if d > 0 else 0
        while x > prev_x and y > prev_y:
            x, y = x - 1, y - 1
            ops.append((" ", x, y))
        if d > 0:
            if x == prev_x:
                ops.append(("+", x, y - 1))
            else:
                ops.append(("-", x - 1, y))
        x, y = prev_x, prev_y
    ops.reverse()
    return ops


def _hunks(ops: list[_Op], context: int) -> list[list[_Op]]:
    """The changes with ``context`` unchanged lines around each; changes closer than twice the
    context share a hunk (as ``diff -u`` groups them)."""
    changed = [index for index, op in enumerate(ops) if op[0] != " "]
    hunks: list[list[_Op]] = []
    start = end = -1
    for index in changed:
        if start >= 0 and index - end - 1 <= 2 * context:
            end = index
            continue
        if start >= 0:
            hunks.append(ops[max(0, start - context) : end + context + 1])
        start = end = index
    if start >= 0:
        hunks.append(ops[max(0, start - context) : end + context + 1])
    return hunks


def _hunk_lines(hunk: list[_Op], left: list[str], right: list[str]) -> list[DiffLine]:
    first_op = hunk[0]
    left_count = sum(1 for op in hunk if op[0] != "+")
    right_count = sum(1 for op in hunk if op[0] != "-")
    header = (
        f"@@ -{_unified_range(first_op[1], left_count)}"
        f" +{_unified_range(first_op[2], right_count)} @@"
    )
    lines = [DiffLine("hunk", header)]
    for op, i, j in hunk:
        if op == " ":
            lines.append(DiffLine("ctx", " " + left[i]))
        elif op == "-":
            lines.append(DiffLine("del", "-" + left[i]))
        else:
            lines.append(DiffLine("add", "+" + right[j]))
    return lines


def _unified_range(start: int, length: int) -> str:
    """A hunk's range as ``diff -u`` writes it (1-based; an empty range names the line before)."""
    if length == 1:
        return str(start + 1)
    if length == 0:
        return f"{start},0"
    return f"{start + 1},{length}"
