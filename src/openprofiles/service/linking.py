"""Ties profiles to users (RULES §5): matching, anonymous users, identities gained.

These helpers run inside a unit of work; they read and write through its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..domain.errors import IdentifierInUse, IdentifiersForMultipleUsers, LimitExceeded, ProfileLimitExceeded
from ..domain.identifiers import Identifier
from ..domain.limits import Limits
from ..domain.users import external_ids_of, identity_keys_of
from ..store.base import Transaction


async def users_matching(tx: Transaction, identifiers: Sequence[Identifier]) -> set[int]:
    """The users whose identities or external id match the standard identifiers."""
    matched = set((await tx.users_for_identities(identity_keys_of(identifiers))).values())
    for external_id in external_ids_of(identifiers):
        user_id = await tx.user_for_external_id(external_id)
        if user_id is not None:
            matched.add(user_id)
    return matched


async def owner_for_new_profile(
    tx: Transaction, identifiers: Sequence[Identifier], name: str, now: int,
    *, user_id: int | None = None,
) -> tuple[int, bool]:
    """The user a new profile belongs to: `user_id` if given, else the one its identifiers match,
    else a new anonymous end-user; and whether it is that new user, who then owns nothing and
    none of whose identifiers another user holds."""
    matched = await users_matching(tx, identifiers)
    if user_id is not None:
        if matched - {user_id}:
            raise IdentifierInUse("A standard identifier of the profile belongs to another user.")
        return user_id, False
    if len(matched) > 1:
        raise IdentifiersForMultipleUsers("The identifiers belong to more than one user.")
    if matched:
        return matched.pop(), False
    user = await tx.insert_user(
        name=name, email=None, role="end-user", people_access="full",
        external_id=None, password_hash=None, now=now,
    )
    return user.id, True


async def check_profile_limit(tx: Transaction, user_id: int, limits: Limits) -> None:
    check_profile_count(await tx.count_user_profiles(user_id), limits)


def check_profile_count(owned: int, limits: Limits) -> None:
    """A user who owns `owned` profiles may gain one more."""
    if owned >= limits.max_profiles_per_user:
        raise ProfileLimitExceeded(
            f"A user may own at most {limits.max_profiles_per_user} profiles."
        )


async def grant_identities(
    tx: Transaction, user_id: int, identifiers: Sequence[Identifier], now: int,
    *, new_user: bool = False,
) -> None:
    """The user gains each standard identifier it lacks; one held by another user is refused.

    `new_user`: the user was just created because no user held any of these identifiers
    (`owner_for_new_profile`), so there is nothing to look up again."""
    keys = identity_keys_of(identifiers)
    if new_user:
        for key in keys:
            await tx.insert_identity(user_id, key.type, key.value, key, primary=False, now=now)
        external_ids = external_ids_of(identifiers)
        if external_ids:
            await tx.set_external_id(user_id, external_ids[0], now)
        return
    owners = await tx.users_for_identities(keys)
    for key in keys:
        owner = owners.get(key)
        if owner is None:
            await tx.insert_identity(user_id, key.type, key.value, key, primary=False, now=now)
        elif owner != user_id:
            raise IdentifierInUse(
                f"The {key.type} identifier '{key.value}' belongs to another user."
            )
    external_ids = external_ids_of(identifiers)
    if not external_ids:
        return
    user = await tx.get_user(user_id)
    assert user is not None
    for external_id in external_ids:
        owner = await tx.user_for_external_id(external_id)
        if owner is not None and owner != user_id:
            raise IdentifierInUse(f"The external_id '{external_id}' belongs to another user.")
    if user.external_id is None:
        await tx.set_external_id(user_id, external_ids[0], now)


async def check_identifiers_free(
    tx: Transaction, source: str, profile_type: str, identifiers: Sequence[Identifier],
    *, profile_id: str | None = None,
) -> None:
    """Within one source and type, an identifier belongs to at most one profile."""
    holders = await tx.profile_ids_holding(source, profile_type, identifiers)
    holders.discard(profile_id)  # type: ignore[arg-type]
    if holders:
        raise IdentifierInUse("All identifiers must belong to a single profile.")


def kinds_fit(known: set[tuple[str, str]], new: set[tuple[str, str]], limits: Limits) -> bool:
    """Whether the account, using the (source, type) pairs `known`, may use every one of `new`
    too: then `register_kind` admits each of them, in any order."""
    sources = {source for source, _ in known} | {source for source, _ in new}
    return len(sources) <= limits.max_sources and len(known | new) <= limits.max_types


async def register_kind(tx: Transaction, source: str, profile_type: str, limits: Limits) -> None:
    """Counts a new (source, type) against the account's limits the first time it is used."""
    if await tx.has_kind(source, profile_type):
        return
    source_known, kinds = await tx.kind_counts(source)
    if not source_known and await tx.count_sources() >= limits.max_sources:
        raise LimitExceeded(f"An account may use at most {limits.max_sources} profile sources.")
    if kinds >= limits.max_types:
        raise LimitExceeded(f"An account may use at most {limits.max_types} profile types.")
    await tx.add_kind(source, profile_type)
