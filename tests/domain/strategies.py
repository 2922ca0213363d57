"""Hypothesis strategies for the domain's values."""

from __future__ import annotations

from hypothesis import strategies as st

from openprofiles.domain.identifiers import MAX_IDENTIFIER_TYPE_LENGTH, STANDARD_TYPES

# Text as the wire can carry it: any character but U+0000 and lone surrogates.
_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
text = st.text(_chars)
nonempty = st.text(_chars, min_size=1)
no_colon = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00:"),
                   min_size=1)
identifier_types = st.one_of(
    st.sampled_from(sorted(STANDARD_TYPES | {"twitter", "google", "Email", "custom"})),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00:"),
            min_size=1, max_size=MAX_IDENTIFIER_TYPE_LENGTH),
)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=8))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=4), json_values, max_size=5)
