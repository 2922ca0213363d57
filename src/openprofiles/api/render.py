"""Domain objects as the JSON the wire expects."""

from __future__ import annotations

import functools
import time
from typing import Any

import msgspec

from ..domain.profile import Profile
from ..domain.users import Identity, User
from ..store.base import StoredProfile

_encode = msgspec.json.Encoder().encode


def iso_time(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return f"{_iso_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    # Every profile carries two timestamps, and formatting costs more than a lookup.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def profile(p: Profile) -> dict[str, Any]:
    return _profile(p, p.identifiers, p.attributes)


def stored_profile(p: StoredProfile) -> dict[str, Any]:
    """As `profile`, with the stored identifiers and attributes spliced in as they are."""
    return _profile(p, msgspec.Raw(p.identifiers_json), msgspec.Raw(p.attributes_json))


def _profile(p: Profile | StoredProfile, identifiers: Any, attributes: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "source": p.source,
        "type": p.type,
        "name": p.name,
        "user_id": str(p.user_id),
        "identifiers": identifiers,
        "attributes": attributes,
        "created_at": iso_time(p.created_at),
        "updated_at": iso_time(p.updated_at),
    }


def user(u: User, base_url: str) -> dict[str, Any]:
    return {
        "id": u.id,
        "url": f"{base_url}/api/v2/users/{u.id}.json",
        "name": u.name,
        "email": u.email,
        "role": u.role,
        "external_id": u.external_id,
        "active": u.active,
        "suspended": u.suspended,
        "verified": False,
        "created_at": iso_time(u.created_at),
        "updated_at": iso_time(u.updated_at),
    }


def identity(i: Identity, base_url: str) -> dict[str, Any]:
    return {
        "id": i.id,
        "url": f"{base_url}/api/v2/users/{i.user_id}/identities/{i.id}.json",
        "user_id": i.user_id,
        "type": i.type,
        "value": i.value,
        "primary": i.primary,
        "verified": False,
        "created_at": iso_time(i.created_at),
        "updated_at": iso_time(i.updated_at),
    }


def encode(document: Any) -> bytes:
    return _encode(document)
