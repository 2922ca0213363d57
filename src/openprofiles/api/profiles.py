"""The profile endpoints of RULES §6."""

from __future__ import annotations

from starlette.responses import Response

from ..domain.errors import ProfileNotFound, UserNotFound
from ..domain.identifiers import IdentifierQuery
from ..domain.profile import Profile, ProfileInput, is_profile_id, parse_profile_input
from ..service import profiles
from ..store.base import StoredProfile
from . import render
from .bodies import JSON_TYPES, MERGE_PATCH_TYPES, member, query_value, read_json
from .context import Call
from .responses import EmptyResponse, JsonResponse


def _one(profile: Profile, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JsonResponse(render.encode({"profile": render.profile(profile)}), status, headers)


def _stored(profile: StoredProfile) -> Response:
    return JsonResponse(render.encode({"profile": render.stored_profile(profile)}))


def _query(call: Call) -> IdentifierQuery:
    return IdentifierQuery.parse(query_value(call.request, "identifier"))


def _profile_id(call: Call) -> str:
    raw = call.request.path_params["profile_id"]
    if not is_profile_id(raw):
        # Not even the shape of an id: no lookup, and no odd characters sent to the database.
        raise ProfileNotFound(f"No profile has the id '{raw[:40]}'.")
    return raw


def _user_id(call: Call) -> int:
    raw = call.request.path_params["user_id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise UserNotFound(f"No user has the id {raw}.")
    return int(raw)


async def _body(call: Call, *, merge: bool = False) -> ProfileInput:
    document = await read_json(call.request, MERGE_PATCH_TYPES if merge else JSON_TYPES)
    return parse_profile_input(member(document, "profile", "InvalidProfile", "Invalid profile"))


def _written(call: Call, written: profiles.Written) -> Response:
    if written.created:
        location = f"{call.base_url}/api/v2/user_profiles/{written.profile.id}"
        return _one(written.profile, 201, {"Location": location})
    return _one(written.profile)


async def get_by_query(call: Call) -> Response:
    return _stored(await profiles.get_by_query(call.store, call.account_id, _query(call)))


async def put_by_query(call: Call) -> Response:
    query = _query(call)
    data = await _body(call)
    written = await profiles.put_by_query(
        call.store, call.account_id, call.settings.limits, query, data
    )
    return _written(call, written)


async def patch_by_query(call: Call) -> Response:
    query = _query(call)
    data = await _body(call, merge=True)
    return _one(await profiles.patch_by_query(call.store, call.account_id, query, data))


async def delete_by_query(call: Call) -> Response:
    await profiles.delete_by_query(call.store, call.account_id, _query(call))
    return EmptyResponse()


async def get_by_id(call: Call) -> Response:
    profile_id = _profile_id(call)
    return _stored(await profiles.get_by_id(call.store, call.account_id, profile_id))


async def replace_by_id(call: Call) -> Response:
    profile_id = _profile_id(call)
    data = await _body(call)
    return _one(await profiles.replace_by_id(call.store, call.account_id, profile_id, data))


async def patch_by_id(call: Call) -> Response:
    profile_id = _profile_id(call)
    data = await _body(call, merge=True)
    return _one(await profiles.patch_by_id(call.store, call.account_id, profile_id, data))


async def delete_by_id(call: Call) -> Response:
    await profiles.delete_by_id(call.store, call.account_id, _profile_id(call))
    return EmptyResponse()


async def list_for_user(call: Call) -> Response:
    found = await profiles.list_for_user(call.store, call.account_id, _user_id(call))
    return JsonResponse(render.encode({"profiles": [render.profile(p) for p in found]}))


async def put_for_user(call: Call) -> Response:
    user_id = _user_id(call)
    query = _query(call)
    data = await _body(call)
    written = await profiles.put_by_query(
        call.store, call.account_id, call.settings.limits, query, data, user_id=user_id
    )
    return _written(call, written)
