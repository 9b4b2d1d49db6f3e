"""The pure JSON diff module: patches that reproduce the target, rebases, merge patches."""

from __future__ import annotations

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
