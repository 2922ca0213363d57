"""Identifiers, their normalisation, and identifier queries (RULES §2, §3)."""

from __future__ import annotations

import msgspec

from .errors import InvalidIdentifierQuery, InvalidProfile
from .limits import MAX_IDENTIFIER_VALUE_LENGTH

MAX_IDENTIFIER_TYPE_LENGTH = 60

# Values of these identifier types are matched without regard to letter case.
LOWER_CASED_TYPES = frozenset({"email", "twitter"})

# Identifier types that link a profile to a user identity (RULES §5).
IDENTITY_TYPES = frozenset({"email", "phone_number", "twitter", "facebook", "sdk"})
STANDARD_TYPES = IDENTITY_TYPES | {"external_id"}

# PostgreSQL cannot store U+0000 in text; it is refused on both engines alike.
NUL_MESSAGE = "Text may not contain the NUL character (U+0000)."


# Identifiers, identity keys and queries are values, made several times for each request and
# each imported line: immutable, compared and hashed by their fields. A frozen `msgspec.Struct`
# is all of that, and builds five times faster than a frozen dataclass.
class Identifier(msgspec.Struct, frozen=True, gc=False):
    type: str
    value: str


def storable(text: str) -> bool:
    """PostgreSQL text cannot hold U+0000, so no engine is given one to keep."""
    return "\x00" not in text


def normalise_value(identifier_type: str, value: str) -> str:
    if identifier_type == "email":
        return value.strip().lower()
    if identifier_type == "twitter":
        return value.lower()
    return value


def make_identifier(identifier_type: object, value: object) -> Identifier:
    """Checks one identifier from a request and returns it normalised.

    A JSON number is accepted as a value and kept as its decimal string, as the reference's
    own example sends a phone number as a number.
    """
    if not isinstance(identifier_type, str) or not identifier_type:
        raise InvalidProfile("Each identifier needs a non-empty string 'type'.")
    if not storable(identifier_type):
        raise InvalidProfile(NUL_MESSAGE)
    if len(identifier_type) > MAX_IDENTIFIER_TYPE_LENGTH:
        raise InvalidProfile(
            f"Identifier type '{identifier_type[:20]}...' is longer than "
            f"{MAX_IDENTIFIER_TYPE_LENGTH} characters."
        )
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidProfile(f"Identifier '{identifier_type}' needs a string value.")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidProfile(f"Identifier '{identifier_type}' needs a string value.")
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        text = str(value)
    text = normalise_value(identifier_type, text)
    if not text:
        raise InvalidProfile(f"Identifier '{identifier_type}' has an empty value.")
    if not storable(text):
        raise InvalidProfile(NUL_MESSAGE)
    if len(text) > MAX_IDENTIFIER_VALUE_LENGTH:
        raise InvalidProfile(
            f"Identifier '{identifier_type}' has a value longer than "
            f"{MAX_IDENTIFIER_VALUE_LENGTH} characters."
        )
    return Identifier(identifier_type, text)


def dedupe(identifiers: list[Identifier]) -> list[Identifier]:
    """Keeps the first of each (type, value) pair, in the order given."""
    seen: set[Identifier] = set()
    kept: list[Identifier] = []
    for identifier in identifiers:
        if identifier not in seen:
            seen.add(identifier)
            kept.append(identifier)
    return kept


class IdentifierQuery(msgspec.Struct, frozen=True, gc=False):
    source: str
    profile_type: str
    identifier: Identifier

    @classmethod
    def parse(cls, text: str | None) -> IdentifierQuery:
        """Parses `source:type:identifier_type:identifier_value`.

        Only the first three colons split: the value may hold colons of its own.
        """
        if text is None or text == "":
            raise InvalidIdentifierQuery("The 'identifier' query parameter is required.")
        if not storable(text):
            raise InvalidIdentifierQuery(NUL_MESSAGE)
        parts = text.split(":", 3)
        if len(parts) != 4 or not all(parts):
            raise InvalidIdentifierQuery(
                "An identifier query is source:type:identifier_type:identifier_value, "
                "with all four parts non-empty."
            )
        source, profile_type, identifier_type, value = parts
        if len(identifier_type) > MAX_IDENTIFIER_TYPE_LENGTH:
            raise InvalidIdentifierQuery(
                f"Identifier type is longer than {MAX_IDENTIFIER_TYPE_LENGTH} characters."
            )
        value = normalise_value(identifier_type, value)
        if not value:
            raise InvalidIdentifierQuery("The identifier value is empty.")
        if len(value) > MAX_IDENTIFIER_VALUE_LENGTH:
            raise InvalidIdentifierQuery(
                f"Identifier value is longer than {MAX_IDENTIFIER_VALUE_LENGTH} characters."
            )
        return cls(source, profile_type, Identifier(identifier_type, value))
