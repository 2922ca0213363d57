"""Deriving a profile's name (RULES §4)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from openprofiles.domain.identifiers import Identifier
from openprofiles.domain.naming import derive_name
from openprofiles.domain.profile import ProfileInput, merged, new_profile, replaced

from .strategies import identifier_types, nonempty

# The table of RULES §4, written out again here rather than imported.
PRIORITY = ["email", "external_id", "phone_number", "twitter", "facebook", "sdk"]
TEMPLATES = {"email": "{}", "external_id": "User {}", "phone_number": "User {}",
             "twitter": "Twitter user {}", "facebook": "Facebook user {}", "sdk": "SDK user {}"}

identifiers = st.builds(Identifier, identifier_types, nonempty)
identifier_lists = st.lists(identifiers, min_size=1, max_size=8)


def expected_name(sent: list[Identifier]) -> str:
    ranked = [(PRIORITY.index(i.type), position, i) for position, i in enumerate(sent)
              if i.type in PRIORITY]
    if not ranked:
        return f"{sent[0].type} user {sent[0].value}"
    _, _, chosen = min(ranked, key=lambda r: (r[0], r[1]))
    return TEMPLATES[chosen.type].format(chosen.value)


@given(identifier_lists)
def test_name_follows_the_table(sent: list[Identifier]) -> None:
    assert derive_name(sent) == expected_name(sent)


@given(identifier_lists, st.randoms())
def test_name_depends_only_on_the_first_of_the_winning_type(sent: list[Identifier], rng) -> None:
    """Shuffling keeps the name whenever the same identifier comes first among its type."""
    shuffled = list(sent)
    rng.shuffle(shuffled)
    if expected_name(sent) == expected_name(shuffled):
        assert derive_name(sent) == derive_name(shuffled)


@given(identifier_lists, st.one_of(st.none(), st.just(""), nonempty))
def test_create_and_replace_derive_only_without_a_name(sent: list[Identifier], name: str | None) -> None:
    data = ProfileInput(name=name, identifiers=sent[:20])
    profile = new_profile(data, profile_id="01BX5ZZKBKACTAV9WEVGEMMVRY", user_id=1, source="s",
                          profile_type="t", now=0)
    assert profile.name == (name or derive_name(sent[:20]))
    again = replaced(profile, ProfileInput(identifiers=sent[:1]), now=1)
    assert again.name == derive_name(sent[:1])


@given(identifier_lists, st.one_of(st.none(), st.just(""), nonempty), nonempty)
def test_merge_keeps_the_name_unless_given(sent: list[Identifier], name: str | None, stored: str) -> None:
    profile = new_profile(ProfileInput(name=stored, identifiers=sent[:10]),
                          profile_id="01BX5ZZKBKACTAV9WEVGEMMVRY", user_id=1, source="s",
                          profile_type="t", now=0)
    after = merged(profile, ProfileInput(name=name, identifiers=sent[10:]), now=1)
    assert after.name == (name or stored)
