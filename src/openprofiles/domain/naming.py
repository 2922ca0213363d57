"""Deriving a profile's name from its identifiers (RULES §4)."""

from __future__ import annotations

from collections.abc import Sequence

from .identifiers import Identifier

# In order of preference: the first identifier of the first type present names the profile.
_NAME_BY_TYPE: tuple[tuple[str, str], ...] = (
    ("email", "{value}"),
    ("external_id", "User {value}"),
    ("phone_number", "User {value}"),
    ("twitter", "Twitter user {value}"),
    ("facebook", "Facebook user {value}"),
    ("sdk", "SDK user {value}"),
)


def derive_name(identifiers: Sequence[Identifier]) -> str:
    for identifier_type, template in _NAME_BY_TYPE:
        for identifier in identifiers:
            if identifier.type == identifier_type:
                return template.format(value=identifier.value)
    first = identifiers[0]
    return f"{first.type} user {first.value}"
