"""The write the SQLite store tests make: a profile created for an email, in one account; and
how they make writes in one group."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from openprofiles.domain.identifiers import IdentifierQuery
from openprofiles.domain.profile import ProfileInput, parse_profile_input
from openprofiles.service.users import DEFAULT_ACCOUNT_ID
from openprofiles.store.sqlite import SqliteStore

ACCOUNT = DEFAULT_ACCOUNT_ID


def query(email: str) -> IdentifierQuery:
    return IdentifierQuery.parse(f"shop:customer:email:{email}")


def body(plan: str = "gold") -> ProfileInput:
    return parse_profile_input({"attributes": {"plan": plan}})


def in_one_group(path: str, *writes: Callable[[SqliteStore], Awaitable[object]]) -> list[object]:
    """The outcomes of `writes` made in one turn of the loop, and so committed as one group."""
    async def scenario() -> list[object]:
        store = SqliteStore(path)
        try:
            return await asyncio.gather(*(write(store) for write in writes), return_exceptions=True)
        finally:
            await store.close()

    return asyncio.run(scenario())
