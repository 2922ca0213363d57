"""The Users API subset of RULES §8."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from ..domain import access
from ..domain.errors import InvalidUser, UserNotFound
from ..service import users
from . import render
from .auth import forbidden
from .bodies import member, read_json
from .context import Call
from .responses import JsonResponse


def _json(document: Any, status: int = 200, location: str | None = None) -> Response:
    headers = {"Location": location} if location else None
    return JsonResponse(render.encode(document), status, headers)


def _user_id(call: Call) -> int:
    raw = call.request.path_params["user_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise UserNotFound(f"No user has the id {raw}.")
    return int(raw)


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidUser(f"'{key}' must be a string.")
    return value


async def create_user(call: Call) -> Response:
    body = member(await read_json(call.request), "user", "InvalidUser", "Invalid user")
    raw_identities = body.get("identities") or []
    if not isinstance(raw_identities, list) or not all(isinstance(i, dict) for i in raw_identities):
        raise InvalidUser("'identities' must be an array of {type, value} objects.")
    new = users.NewUser(
        name=body.get("name"),  # type: ignore[arg-type]  # checked by the service
        role=body.get("role") or "end-user",
        email=_optional_str(body, "email"),
        external_id=_optional_str(body, "external_id"),
        identities=tuple((i.get("type"), i.get("value")) for i in raw_identities),
    )
    if not access.may_create_role(call.principal.user.role, new.role):
        raise forbidden(f"Only admins may create users with the role '{new.role}'.")
    created = await users.create_user(call.store, call.account_id, new)
    location = f"{call.base_url}/api/v2/users/{created.user.id}"
    return _json({"user": render.user(created.user, call.base_url)}, 201, location)


async def get_user(call: Call) -> Response:
    user = await users.get_user(call.store, call.account_id, _user_id(call))
    return _json({"user": render.user(user, call.base_url)})


async def me(call: Call) -> Response:
    # Read afresh: the principal may come from a kept sign-in, and a user's details (its
    # external id, say) change without ending the sign-in.
    user = await users.get_user(call.store, call.account_id, call.principal.user.id)
    return _json({"user": render.user(user, call.base_url)})


async def list_identities(call: Call) -> Response:
    found = await users.list_identities(call.store, call.account_id, _user_id(call))
    return _json({"identities": [render.identity(i, call.base_url) for i in found]})


async def add_identity(call: Call) -> Response:
    body = member(await read_json(call.request), "identity", "InvalidIdentity", "Invalid identity")
    identity = await users.add_identity(
        call.store, call.account_id, _user_id(call), body.get("type"), body.get("value")
    )
    return _json({"identity": render.identity(identity, call.base_url)}, 201)
