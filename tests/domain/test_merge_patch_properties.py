"""JSON merge patch (RFC 7396) as PATCH applies it to attributes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openprofiles.domain.merge_patch import merge_patch

from .strategies import json_objects, json_scalars, json_values


def _null_members(value: Any) -> int:
    """How many null members the objects of `value` hold, down to any array: an array is taken
    whole from the patch, nulls and all, so what lies inside one is data, not members."""
    if isinstance(value, dict):
        return sum(1 if v is None else _null_members(v) for v in value.values())
    return 0


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


null_free_objects = json_objects.map(_without_nulls)


@given(json_objects)
def test_an_empty_patch_is_the_identity(target: dict[str, Any]) -> None:
    assert merge_patch(target, {}) == target


@given(json_values, json_objects)
def test_a_null_member_removes_the_key(target: Any, patch: dict[str, Any]) -> None:
    result = merge_patch(target, patch)
    for key, value in patch.items():
        if value is None:
            assert key not in result
        else:
            assert key in result


@given(json_values, json_values)
def test_applying_a_patch_twice_is_applying_it_once(target: Any, patch: Any) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


@given(null_free_objects, json_objects)
def test_a_patch_brings_no_null_members(target: dict[str, Any], patch: dict[str, Any]) -> None:
    assert _null_members(merge_patch(target, patch)) == 0


@given(json_values, st.one_of(json_scalars.filter(lambda v: v is not None),
                              st.lists(json_values, max_size=3)))
def test_a_patch_that_is_not_an_object_replaces_the_target(target: Any, patch: Any) -> None:
    assert merge_patch(target, patch) == patch


@given(json_objects, json_objects)
def test_keys_the_patch_does_not_name_are_kept(target: dict[str, Any], patch: dict[str, Any]) -> None:
    result = merge_patch(target, patch)
    for key, value in target.items():
        if key not in patch:
            assert result[key] == value


@given(json_values, json_values)
def test_neither_argument_is_changed(target: Any, patch: Any) -> None:
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    merge_patch(target, patch)
    assert (target, patch) == (target_before, patch_before)


# The examples of RFC 7396, appendix A.
@pytest.mark.parametrize(("target", "patch", "expected"), [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_rfc_7396_examples(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected
