"""Identifier queries (RULES §3): `source:type:identifier_type:value`, split on three colons."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from openprofiles.domain.errors import InvalidIdentifierQuery
from openprofiles.domain.limits import MAX_IDENTIFIER_VALUE_LENGTH
from openprofiles.domain.identifiers import (
    MAX_IDENTIFIER_TYPE_LENGTH, Identifier, IdentifierQuery, normalise_value,
)

from .strategies import identifier_types, no_colon, nonempty, text


@given(no_colon, no_colon, identifier_types, nonempty)
@example("web", "visitor", "url", "https://x.example/a:b")
@example("shop", "customer", "email", " Jane@Example.COM ")
def test_four_parts_round_trip(source: str, profile_type: str, identifier_type: str,
                               value: str) -> None:
    expected = normalise_value(identifier_type, value)
    assume(expected and len(expected) <= MAX_IDENTIFIER_VALUE_LENGTH)
    parsed = IdentifierQuery.parse(f"{source}:{profile_type}:{identifier_type}:{value}")
    assert parsed == IdentifierQuery(source, profile_type, Identifier(identifier_type, expected))


@given(no_colon, no_colon, st.sampled_from(["url", "custom", "phone_number"]),
       st.lists(text, min_size=2, max_size=5))
def test_colons_in_the_value_are_kept(source: str, profile_type: str, identifier_type: str,
                                      pieces: list[str]) -> None:
    value = ":".join(pieces)
    assume(value and len(value) <= MAX_IDENTIFIER_VALUE_LENGTH)
    parsed = IdentifierQuery.parse(f"{source}:{profile_type}:{identifier_type}:{value}")
    assert parsed.identifier.value == value
    assert (parsed.source, parsed.profile_type) == (source, profile_type)


@given(st.lists(no_colon, min_size=0, max_size=3))
def test_fewer_than_four_parts_are_refused(parts: list[str]) -> None:
    with pytest.raises(InvalidIdentifierQuery):
        IdentifierQuery.parse(":".join(parts))


@given(st.lists(no_colon, min_size=4, max_size=4), st.sets(st.integers(0, 3), min_size=1))
def test_any_empty_part_is_refused(parts: list[str], empty: set[int]) -> None:
    for index in empty:
        parts[index] = ""
    with pytest.raises(InvalidIdentifierQuery):
        IdentifierQuery.parse(":".join(parts))


@given(no_colon, no_colon, st.text(min_size=MAX_IDENTIFIER_TYPE_LENGTH + 1).filter(
    lambda t: ":" not in t), nonempty)
def test_long_identifier_types_are_refused(source: str, profile_type: str, identifier_type: str,
                                           value: str) -> None:
    with pytest.raises(InvalidIdentifierQuery):
        IdentifierQuery.parse(f"{source}:{profile_type}:{identifier_type}:{value}")


@given(st.one_of(st.none(), st.text()))
def test_any_text_parses_or_is_refused_cleanly(raw: str | None) -> None:
    try:
        parsed = IdentifierQuery.parse(raw)
    except InvalidIdentifierQuery:
        return
    assert raw is not None
    # What parses holds four non-empty parts, the first three free of colons.
    for part in (parsed.source, parsed.profile_type, parsed.identifier.type):
        assert part and ":" not in part
    assert parsed.identifier.value
    assert raw.startswith(f"{parsed.source}:{parsed.profile_type}:{parsed.identifier.type}:")
