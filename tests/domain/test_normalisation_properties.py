"""Normalisation of identifier values (RULES §1, §2)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from openprofiles.domain.errors import InvalidProfile
from openprofiles.domain.identifiers import LOWER_CASED_TYPES, make_identifier, normalise_value
from openprofiles.domain.users import identity_key

from .strategies import identifier_types, text


@given(identifier_types, text)
def test_normalising_is_idempotent(identifier_type: str, value: str) -> None:
    once = normalise_value(identifier_type, value)
    assert normalise_value(identifier_type, once) == once


@given(text)
def test_email_is_lower_cased_and_stripped(value: str) -> None:
    normal = normalise_value("email", value)
    assert normal == normal.lower()
    assert normal == normal.strip()
    # Letter case and surrounding spaces make no difference.
    assert normalise_value("email", f"  {value.upper()}\t") == normalise_value("email", value.upper())
    assert normalise_value("email", value.swapcase()) == normalise_value("email", value.swapcase().lower())


@given(text)
def test_twitter_is_lower_cased(value: str) -> None:
    normal = normalise_value("twitter", value)
    assert normal == normal.lower()
    assert normalise_value("twitter", value.upper()) == normalise_value("twitter", value.upper().lower())


@given(identifier_types.filter(lambda t: t not in LOWER_CASED_TYPES), text)
def test_other_values_are_kept_exactly(identifier_type: str, value: str) -> None:
    assert normalise_value(identifier_type, value) == value


@given(identifier_types, st.one_of(text, st.integers()))
def test_made_identifiers_are_normal_strings(identifier_type: str, value: object) -> None:
    try:
        identifier = make_identifier(identifier_type, value)
    except InvalidProfile:
        assume(False)
        return
    assert isinstance(identifier.value, str) and identifier.value
    assert identifier.type == identifier_type
    assert make_identifier(identifier_type, identifier.value) == identifier
    if isinstance(value, int):
        assert identifier.value == str(value)


@given(identifier_types, st.one_of(st.booleans(), st.none(), st.lists(st.integers()),
                                   st.dictionaries(st.text(), st.integers()), st.just("")))
def test_values_that_are_not_strings_or_numbers_are_refused(identifier_type: str, value: object) -> None:
    with pytest.raises(InvalidProfile):
        make_identifier(identifier_type, value)


@given(text)
def test_a_google_identity_is_matched_as_an_email(value: str) -> None:
    assert identity_key("google", value) == identity_key("email", value)
    assert identity_key("email", value.upper()) == identity_key("email", value.upper().lower())
