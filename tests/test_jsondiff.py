"""The pure JSON diff module: patches that reproduce the target, rebases, merge patches."""

from __future__ import annotations

import difflib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from sessions_api import jsondiff

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(alphabet="ab/~c", max_size=4), children, max_size=5),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(json_values, json_values)
def test_applying_the_diff_turns_before_into_after(before, after):
    ops = jsondiff.diff(before, after)
    assert jsondiff.same(jsondiff.apply_patch(before, ops), after)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_no_diff_between_equal_values(value):
    assert jsondiff.diff(value, value) == []


@settings(max_examples=200, deadline=None)
@given(json_values, json_values)
def test_rebase_onto_an_unchanged_base_is_my_change(base, mine):
    rebased = jsondiff.rebase(base, mine, base)
    assert rebased.conflicts == []
    assert jsondiff.same(rebased.value, mine)


def test_diff_tells_numbers_from_booleans():
    assert jsondiff.diff({"a": 1}, {"a": True}) == [
        {"op": "replace", "path": "/a", "value": True, "old": 1}
    ]
    assert jsondiff.diff([1], [1.0]) != []


def test_diff_of_appended_messages_is_adds_at_the_end():
    ops = jsondiff.diff({"messages": [1, 2]}, {"messages": [1, 2, 3, 4]})
    assert ops == [
        {"op": "add", "path": "/messages/2", "value": 3},
        {"op": "add", "path": "/messages/3", "value": 4},
    ]


def test_pointer_escaping():
    ops = jsondiff.diff({}, {"a/b": {"c~d": 1}})
    assert ops == [{"op": "add", "path": "/a~1b", "value": {"c~d": 1}}]
    assert jsondiff.resolve({"a/b": {"c~d": 1}}, "/a~1b/c~0d") == 1


def test_rebase_keeps_both_sides_independent_changes():
    base = {"x": 1, "y": 1, "messages": ["a"]}
    theirs = {"x": 2, "y": 1, "messages": ["a", "theirs"]}
    mine = {"x": 1, "y": 5, "messages": ["a", "mine"]}
    rebased = jsondiff.rebase(base, mine, theirs)
    assert rebased.value == {"x": 2, "y": 5, "messages": ["a", "theirs", "mine"]}
    assert rebased.conflicts == []


def test_rebase_reports_a_path_both_changed_and_uses_mine():
    rebased = jsondiff.rebase({"x": 1}, {"x": 3}, {"x": 2})
    assert rebased.value == {"x": 3}
    assert rebased.conflicts == ["/x"]


def test_same_change_on_both_sides_is_no_conflict():
    rebased = jsondiff.rebase({"x": 1}, {"x": 2}, {"x": 2})
    assert rebased.value == {"x": 2}
    assert rebased.conflicts == []


def test_merge_patch_rfc7386():
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    patch = {"a": "z", "c": {"f": None}}
    assert jsondiff.merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}}
    assert jsondiff.merge_patch({"a": [1]}, {"a": [2]}) == {"a": [2]}
    assert jsondiff.merge_patch(None, {"a": 1}) == {"a": 1}


def test_text_diff_counts_lines():
    diff = jsondiff.text_diff({"a": 1}, {"a": 2, "b": 3})
    assert diff.added == 2 and diff.removed == 1
    assert any(line.kind == "add" and '"b": 3' in line.text for line in diff.lines)


def test_huge_diffs_are_truncated():
    ops = jsondiff.diff(list(range(5000)), [], max_ops=10)
    assert len(ops) == 11 and ops[-1] == {"op": "truncated", "omitted": 4990}


def _sides(diff: jsondiff.TextDiff) -> tuple[list[str], list[str]]:
    body = [line for line in diff.lines if line.kind in ("ctx", "add", "del")]
    left = [line.text[1:] for line in body if line.kind != "add"]
    right = [line.text[1:] for line in body if line.kind != "del"]
    return left, right


def test_line_diff_with_full_context_rebuilds_both_sides_and_is_never_longer_than_difflib():
    rng = random.Random(7)
    for _ in range(500):
        alphabet = rng.choice([2, 3, 20])
        left = [str(rng.randrange(alphabet)) for _ in range(rng.randrange(25))]
        right = [str(rng.randrange(alphabet)) for _ in range(rng.randrange(25))]
        diff = jsondiff.line_diff(left, right, context=10**6)
        if left == right:
            assert diff.lines == [] and diff.added == diff.removed == 0
            continue
        assert _sides(diff) == (left, right)
        reference = list(difflib.unified_diff(left, right, lineterm=""))
        edits = sum(1 for line in reference if line[:1] in "+-" and line[:3] not in ("+++", "---"))
        assert diff.added + diff.removed <= edits


def test_line_diff_writes_what_diff_u_writes():
    left = [f"line {i}" for i in range(40)]
    right = list(left)
    right[5] = "changed"
    del right[20]
    right.insert(30, "inserted")
    diff = jsondiff.line_diff(left, right, before_label="v1", after_label="v2")
    expected = list(difflib.unified_diff(left, right, "v1", "v2", lineterm=""))
    assert [line.text for line in diff.lines] == expected
    assert [line.kind for line in diff.lines[:3]] == ["meta", "meta", "hunk"]


def test_line_diff_gives_up_on_a_reordered_pair_within_its_step_budget():
    left = [str(i) for i in range(99_000)]
    budget = jsondiff.DiffBudget(max_seconds=3600)  # only the deterministic bounds count
    diff = jsondiff.line_diff(left, left[::-1], budget=budget)
    assert diff.too_large and diff.lines == []


def test_line_diff_refuses_a_pair_whose_line_counts_alone_exceed_the_edit_budget():
    left = [str(i) for i in range(5000)]
    right = [f"other {i}" for i in range(5000)]
    budget = jsondiff.DiffBudget(max_edits=100, max_seconds=3600)
    assert jsondiff.line_diff(left, right, budget=budget).too_large


def test_line_diff_finds_a_few_edits_in_a_long_document():
    left = [str(i) for i in range(99_000)]
    right = [*left[:500], "new", *left[500:60_000], *left[60_001:]]
    diff = jsondiff.line_diff(left, right)
    assert not diff.too_large and (diff.added, diff.removed) == (1, 1)


def _nested(depth: int) -> list:
    root: list = []
    node = root
    for _ in range(depth):
        node.append([])
        node = node[0]
    return root


def test_pretty_writes_values_past_the_depth_limit_compact():
    text = jsondiff.pretty({"ok": _nested(200)})
    assert text.startswith('{"ok": [[[') and "\n" not in text
    assert jsondiff.pretty({"a": [1]}) == '{\n  "a": [\n    1\n  ]\n}'


def test_pretty_never_raises_on_values_no_encoder_can_write():
    assert jsondiff.pretty({"ok": _nested(100_000)}) == "<dict too deeply nested to show>"
