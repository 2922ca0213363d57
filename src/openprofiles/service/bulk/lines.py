"""One line of an import checked as the API checks a PUT, and what a refused line reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from ...domain import profile as rules
from ...domain.errors import InvalidProfile, ProfilesError
from ...domain.identifiers import IdentifierQuery
from ...domain.profile import ProfileInput, is_profile_id, parse_profile_input
from ...domain.users import external_id_key, external_ids_of, identity_keys_of
from .. import profiles

_decode = msgspec.json.Decoder().decode

_MAX_USER_ID_DIGITS = 18


class Line(msgspec.Struct, frozen=True):
    """One checked line: the PUT it stands for, and the ids an export gave it. (A frozen
    dataclass of this many fields takes longer to build than the rest of `line_of`.)"""

    number: int
    query: IdentifierQuery
    data: ProfileInput
    profile_id: str | None
    user_id: int | None
    # The keys by which this line's outcome could depend on another line's or a stored record.
    identifier_keys: list[tuple[str, str, str, str]]
    identity_keys: list[tuple[str, str]]
    external_ids: list[str]
    external_keys: list[str]


@dataclass(frozen=True, slots=True)
class Refusal:
    line: int
    code: str
    detail: str


def refusal_of(number: int, error: ProfilesError) -> Refusal:
    return Refusal(number, error.code, error.detail)


def _invalid_json(detail: str) -> ProfilesError:
    return ProfilesError(detail, code="InvalidJson", title="Invalid JSON")


def _user_id(raw: Any) -> int | None:
    if raw is None:
        return None
    text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()) \
            or len(text) > _MAX_USER_ID_DIGITS or int(text) == 0:
        raise InvalidProfile("'user_id' must be a user id: a positive integer or its decimal string.")
    return int(text)


def parse_line(number: int, raw: bytes) -> Line:
    """Checks one line as the API checks a PUT: body, source and type, identifiers."""
    try:
        document = _decode(raw)
    except msgspec.DecodeError as error:
        raise _invalid_json(f"The line is not valid JSON: {error}.") from None
    except RecursionError:
        raise _invalid_json("The line nests too deeply.") from None
    if not isinstance(document, dict) or not isinstance(document.get("profile"), dict):
        raise InvalidProfile("A line must be a JSON object {\"profile\": {...}}.")
    body = document["profile"]
    data = parse_profile_input(body)
    if not data.source or not data.type:
        rules.check_source(data.source or "")
        rules.check_type(data.type or "")
    if not data.identifiers:
        raise InvalidProfile("A profile needs at least one identifier.")
    query = IdentifierQuery(data.source or "", data.type or "", data.identifiers[0])
    profiles.check_query_for_write(query, data)
    profile_id = body.get("id")
    if profile_id is not None and (not isinstance(profile_id, str) or not is_profile_id(profile_id)):
        raise InvalidProfile("'id' must be a profile id: a ULID of 26 characters.")
    return line_of(number, query, data, profile_id=profile_id, user_id=_user_id(body.get("user_id")))


def line_of(
    number: int, query: IdentifierQuery, data: ProfileInput, *,
    profile_id: str | None = None, user_id: int | None = None,
) -> Line:
    """A checked PUT whose body holds the query's identifier, with its keys."""
    source, profile_type = query.source, query.profile_type
    external_ids = external_ids_of(data.identifiers)
    return Line(
        number, query, data, profile_id, user_id,
        [(source, profile_type, i.type, i.value) for i in data.identifiers],
        [(k.type, k.value) for k in identity_keys_of(data.identifiers)],
        external_ids, [external_id_key(e) for e in external_ids],
    )
