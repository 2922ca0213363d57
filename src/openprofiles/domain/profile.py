"""The profile and the rules for writing one: validation, create, replace and merge."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from . import limits
from .errors import InvalidProfile, ReservedSource, TooManyIdentifiers
from .identifiers import (
    NUL_MESSAGE,
    Identifier,
    IdentifierQuery,
    dedupe,
    make_identifier,
    storable,
)
from .merge_patch import merge_patch
from .naming import derive_name

RESERVED_SOURCE = "zendesk"

# Profile ids are ULIDs: 26 characters of Crockford's base 32.
_ID_ALPHABET = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def is_profile_id(text: str) -> bool:
    """Whether `text` could be a profile id; anything else names no profile."""
    return len(text) == 26 and _ID_ALPHABET.issuperset(text)


@dataclass(slots=True)
class Profile:
    id: str
    user_id: int
    source: str
    type: str
    name: str
    identifiers: list[Identifier]
    attributes: dict[str, Any]
    created_at: int  # milliseconds since the epoch, UTC
    updated_at: int


@dataclass(slots=True)
class ProfileInput:
    """What a PUT or PATCH body says about a profile, checked and normalised."""

    source: str | None = None
    type: str | None = None
    name: str | None = None
    identifiers: list[Identifier] = field(default_factory=list)
    attributes: dict[str, Any] | None = None


def check_source(source: str, *, error: type[InvalidProfile] = InvalidProfile) -> None:
    if not source:
        raise error("The profile source must not be empty.")
    if not storable(source):
        raise error(NUL_MESSAGE)
    if len(source) > limits.MAX_SOURCE_LENGTH:
        raise error(
            f"The profile source is longer than {limits.MAX_SOURCE_LENGTH} characters.",
            code="InvalidProfileSourceLength",
        )
    if source.lower() == RESERVED_SOURCE:
        raise ReservedSource("The source 'zendesk' is reserved and cannot be used.")


def check_type(profile_type: str, *, error: type[InvalidProfile] = InvalidProfile) -> None:
    if not profile_type:
        raise error("The profile type must not be empty.")
    if not storable(profile_type):
        raise error(NUL_MESSAGE)
    if len(profile_type) > limits.MAX_TYPE_LENGTH:
        raise error(
            f"The profile type is longer than {limits.MAX_TYPE_LENGTH} characters.",
            code="InvalidProfileTypeLength",
        )


def parse_profile_input(body: object) -> ProfileInput:
    """Checks the inside of a `{"profile": {...}}` body. Unknown and read-only keys are ignored."""
    if not isinstance(body, dict):
        raise InvalidProfile("The body must be a JSON object {\"profile\": {...}}.")
    result = ProfileInput()
    for key in ("source", "type"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidProfile(f"'{key}' must be a string.")
        setattr(result, key, value)
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidProfile("'name' must be a string.")
    if name is not None and not storable(name):
        raise InvalidProfile(NUL_MESSAGE)
    result.name = name or None
    raw_identifiers = body.get("identifiers")
    if raw_identifiers is not None:
        if not isinstance(raw_identifiers, list):
            raise InvalidProfile("'identifiers' must be an array of {type, value} objects.")
        for item in raw_identifiers:
            if not isinstance(item, dict):
                raise InvalidProfile("Each identifier must be an object {type, value}.")
            result.identifiers.append(make_identifier(item.get("type"), item.get("value")))
        result.identifiers = dedupe(result.identifiers)
    attributes = body.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, dict):
            raise InvalidProfile("'attributes' must be a JSON object.")
        if _depth_exceeds(attributes, limits.MAX_ATTRIBUTES_DEPTH):
            raise InvalidProfile(
                f"Attributes nest at most {limits.MAX_ATTRIBUTES_DEPTH} levels deep.",
                code="AttributesTooDeep",
            )
        result.attributes = attributes
    return result


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest in `value` more than `limit` deep (the top one counts).

    Walks with an explicit stack, so that the check itself cannot hit the recursion limit.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        children = current.values() if isinstance(current, dict) else current
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


def _check_identifier_count(identifiers: list[Identifier]) -> None:
    if len(identifiers) > limits.MAX_IDENTIFIERS:
        raise TooManyIdentifiers(
            f"A profile holds at most {limits.MAX_IDENTIFIERS} identifiers; "
            f"this one would hold {len(identifiers)}."
        )


def check_attributes_size(size: int) -> None:
    """`size` is the length of the attributes encoded as JSON, measured where they are encoded."""
    if size > limits.MAX_ATTRIBUTES_BYTES:
        raise InvalidProfile(
            f"Attributes are at most {limits.MAX_ATTRIBUTES_BYTES} bytes of JSON.",
            code="AttributesTooLarge",
        )


def check_matches_query(data: ProfileInput, query: IdentifierQuery) -> None:
    """A body may repeat the query's source and type, but not contradict them."""
    if data.source is not None and data.source != query.source:
        raise InvalidProfile("The body's source differs from the identifier query's source.")
    if data.type is not None and data.type != query.profile_type:
        raise InvalidProfile("The body's type differs from the identifier query's type.")


def with_query_identifier(identifiers: list[Identifier], query: IdentifierQuery) -> list[Identifier]:
    if query.identifier in identifiers:
        return identifiers
    return [*identifiers, query.identifier]


def new_profile(
    data: ProfileInput,
    *,
    profile_id: str,
    user_id: int,
    source: str,
    profile_type: str,
    now: int,
) -> Profile:
    check_source(source)
    check_type(profile_type)
    if not data.identifiers:
        raise InvalidProfile("A profile needs at least one identifier.")
    _check_identifier_count(data.identifiers)
    return Profile(
        id=profile_id,
        user_id=user_id,
        source=source,
        type=profile_type,
        name=data.name or derive_name(data.identifiers),
        identifiers=list(data.identifiers),
        attributes=data.attributes if data.attributes is not None else {},
        created_at=now,
        updated_at=now,
    )


def replaced(profile: Profile, data: ProfileInput, *, now: int, keep: Identifier | None = None) -> Profile:
    """A full replace: name, identifiers and attributes are the request's; `keep` stays."""
    if data.source is not None and data.source != profile.source:
        raise InvalidProfile("A replace cannot change the profile's source.")
    if data.type is not None and data.type != profile.type:
        raise InvalidProfile("A replace cannot change the profile's type.")
    identifiers = list(data.identifiers)
    if keep is not None and keep not in identifiers:
        identifiers.append(keep)
    if not identifiers:
        raise InvalidProfile("A profile needs at least one identifier.")
    _check_identifier_count(identifiers)
    return replace(
        profile,
        name=data.name or derive_name(identifiers),
        identifiers=identifiers,
        attributes=data.attributes if data.attributes is not None else {},
        updated_at=now,
    )


def merged(profile: Profile, data: ProfileInput, *, now: int) -> Profile:
    """A merge: attributes by merge patch, identifiers added, name replaced when given."""
    identifiers = dedupe([*profile.identifiers, *data.identifiers])
    _check_identifier_count(identifiers)
    attributes = profile.attributes
    if data.attributes is not None:
        attributes = merge_patch(profile.attributes, data.attributes)
    return replace(
        profile,
        name=data.name or profile.name,
        identifiers=identifiers,
        attributes=attributes,
        updated_at=now,
    )
