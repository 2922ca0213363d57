"""Users behind profiles: roles, identities, and which identities a profile's identifiers match."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from .errors import InvalidUser
from .identifiers import (
    IDENTITY_TYPES,
    MAX_IDENTIFIER_VALUE_LENGTH,
    NUL_MESSAGE,
    Identifier,
    normalise_value,
    storable,
)

ROLES = ("admin", "agent", "end-user")
PEOPLE_ACCESS = ("full", "readonly")

# Identity types a user may hold, as in the Users API; `google` is an email address.
USER_IDENTITY_TYPES = frozenset(
    {"email", "twitter", "facebook", "google", "phone_number", "sdk", "agent_forwarding",
     "any_channel", "foreign", "messaging"}
)

MAX_NAME_LENGTH = 255


class IdentityKey(msgspec.Struct, frozen=True, gc=False):
    """What makes an identity unique within an account, and what a profile identifier matches."""

    type: str
    value: str


def identity_key(identity_type: str, value: str) -> IdentityKey:
    match_type = "email" if identity_type == "google" else identity_type
    return IdentityKey(match_type, normalise_value(match_type, value))


def external_id_key(external_id: str) -> str:
    """External ids match case-insensitively."""
    return external_id.lower()


def identity_keys_of(identifiers: Iterable[Identifier]) -> list[IdentityKey]:
    """The identity keys that a profile's standard identifiers would match or create."""
    keys: list[IdentityKey] = []
    for identifier in identifiers:
        if identifier.type in IDENTITY_TYPES:
            key = identity_key(identifier.type, identifier.value)
            if key not in keys:
                keys.append(key)
    return keys


def external_ids_of(identifiers: Iterable[Identifier]) -> list[str]:
    return [i.value for i in identifiers if i.type == "external_id"]


def check_identity(identity_type: object, value: object) -> tuple[str, str]:
    if not isinstance(identity_type, str) or identity_type not in USER_IDENTITY_TYPES:
        raise InvalidUser(
            f"Identity type must be one of: {', '.join(sorted(USER_IDENTITY_TYPES))}."
        )
    if not isinstance(value, str) or not value.strip():
        raise InvalidUser("An identity needs a non-empty string value.")
    _check_key_text(value, "An identity value")
    return identity_type, normalise_value(identity_type, value)


def _check_key_text(value: str, what: str) -> None:
    """Identity values and external ids are database keys, held to identifier values' rules."""
    if not storable(value):
        raise InvalidUser(f"{what}: {NUL_MESSAGE}")
    if len(value) > MAX_IDENTIFIER_VALUE_LENGTH:
        raise InvalidUser(f"{what} is at most {MAX_IDENTIFIER_VALUE_LENGTH} characters.")


def check_external_id(external_id: object) -> str:
    if not isinstance(external_id, str) or not external_id:
        raise InvalidUser("'external_id' must be a non-empty string.")
    _check_key_text(external_id, "An external id")
    return external_id


def check_role(role: object) -> str:
    if role not in ROLES:
        raise InvalidUser(f"Role must be one of: {', '.join(ROLES)}.")
    return role  # type: ignore[return-value]


def check_people_access(access: object) -> str:
    if access not in PEOPLE_ACCESS:
        raise InvalidUser(f"People access must be one of: {', '.join(PEOPLE_ACCESS)}.")
    return access  # type: ignore[return-value]


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidUser("A user needs a non-empty name.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidUser(f"A user's name is at most {MAX_NAME_LENGTH} characters.")
    if not storable(name):
        raise InvalidUser("A user's name cannot contain the character U+0000.")
    return name.strip()


@dataclass(slots=True)
class User:
    id: int
    name: str
    email: str | None
    role: str
    people_access: str
    external_id: str | None
    active: bool
    suspended: bool
    created_at: int
    updated_at: int


@dataclass(slots=True)
class Identity:
    id: int
    user_id: int
    type: str
    value: str
    primary: bool
    created_at: int
    updated_at: int
