"""Every profile of an account as NDJSON, in the format the import reads."""

from __future__ import annotations

from typing import IO

import msgspec

from ...domain.profile import Profile
from ...store.base import Store, Transaction
from ...store.batch import profiles_in_id_order

_encode = msgspec.json.Encoder().encode


def _exported(profile: Profile) -> bytes:
    return _encode({"profile": {
        "id": profile.id,
        "user_id": str(profile.user_id),
        "source": profile.source,
        "type": profile.type,
        "name": profile.name,
        "identifiers": profile.identifiers,
        "attributes": profile.attributes,
    }})


async def export_profiles(store: Store, account_id: int, out: IO[bytes]) -> int:
    """Writes every profile of the account, by id, from one consistent read."""
    async def unit(tx: Transaction) -> int:
        count = 0
        async for page in profiles_in_id_order(tx):  # type: ignore[arg-type]
            out.write(b"".join(_exported(p) + b"\n" for p in page))
            count += len(page)
        return count

    return await store.read(account_id, unit)
