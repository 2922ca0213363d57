"""The profile operations of RULES §6, one function each, one transaction each."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ..domain import profile as rules
from ..domain.errors import InvalidProfile, ProfileNotFound, UserNotFound
from ..domain.identifiers import Identifier, IdentifierQuery
from ..domain.limits import Limits
from ..domain.profile import Profile, ProfileInput
from ..store.base import Store, StoredProfile, Together, Transaction
from . import linking
from .clock import new_profile_id, now_ms

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Written:
    profile: Profile
    created: bool


def encoded_attributes(profile: Profile) -> bytes:
    """The profile's attributes as stored; refused if they are too large."""
    encoded = _encode(profile.attributes)
    rules.check_attributes_size(len(encoded))
    return encoded


async def create_in(
    tx: Transaction, limits: Limits, source: str, profile_type: str, data: ProfileInput,
    *, user_id: int | None = None,
) -> Profile:
    """Creates a profile inside a unit of work (shared with the Events API)."""
    return await _create(tx, limits, source, profile_type, data, user_id, new_profile_id())


async def _create(
    tx: Transaction, limits: Limits, source: str, profile_type: str, data: ProfileInput,
    user_id: int | None, profile_id: str, *, known_free: Identifier | None = None,
) -> Profile:
    """`known_free`: an identifier the caller has just found no profile holding."""
    now = now_ms()
    draft = rules.new_profile(
        data, profile_id=profile_id, user_id=0, source=source,
        profile_type=profile_type, now=now,
    )
    attributes = encoded_attributes(draft)
    await linking.check_identifiers_free(
        tx, source, profile_type, [i for i in draft.identifiers if i != known_free]
    )
    await linking.register_kind(tx, source, profile_type, limits)
    draft.user_id, new_user = await linking.owner_for_new_profile(
        tx, draft.identifiers, draft.name, now, user_id=user_id
    )
    if not new_user:  # a new user owns no profile yet, and the limit is at least one
        await linking.check_profile_limit(tx, draft.user_id, limits)
    await linking.grant_identities(tx, draft.user_id, draft.identifiers, now, new_user=new_user)
    await tx.insert_profile(draft, attributes)
    return draft


async def save_changed(
    tx: Transaction, before: Profile, after: Profile, attributes: bytes | None = None
) -> Profile:
    """Stores a replaced or merged profile inside a unit of work (shared with the Events API);
    `attributes`: its attributes as `encoded_attributes` gave them, if the caller has them.

    Only identifiers the profile did not hold are checked and granted: those it holds were
    checked when it gained them, and identities are never taken from a user, so nothing has
    changed for them since."""
    if attributes is None:
        attributes = encoded_attributes(after)
    held = set(before.identifiers)
    added = [identifier for identifier in after.identifiers if identifier not in held]
    if added:
        await linking.check_identifiers_free(tx, after.source, after.type, added, profile_id=after.id)
        await linking.grant_identities(tx, after.user_id, added, after.updated_at)
    await tx.update_profile(after, attributes, before.identifiers)
    return after


# Reads: a single profile is answered as stored (`StoredProfile`), with no rule to apply.


async def get_by_id(store: Store, account_id: int, profile_id: str) -> StoredProfile:
    async def unit(tx: Transaction) -> StoredProfile | None:
        return await tx.get_stored_profile(profile_id)

    found = await store.read_stale(account_id, unit, single_statement=True)
    if found is None:
        raise ProfileNotFound(f"No profile has the id '{profile_id}'.")
    return found


async def get_by_query(store: Store, account_id: int, query: IdentifierQuery) -> StoredProfile:
    async def unit(tx: Transaction) -> StoredProfile | None:
        return await tx.find_stored_profile(query.source, query.profile_type, query.identifier)

    found = await store.read_stale(account_id, unit, single_statement=True)
    if found is None:
        raise ProfileNotFound("No profile matches the identifier query.")
    return found


async def list_for_user(store: Store, account_id: int, user_id: int) -> list[Profile]:
    async def unit(tx: Transaction) -> list[Profile] | None:
        if await tx.get_user(user_id) is None:
            return None
        return await tx.user_profiles(user_id)

    found = await store.read_stale(account_id, unit)
    if found is None:
        raise UserNotFound(f"No user has the id {user_id}.")
    return found


# Writes


def check_query_for_write(query: IdentifierQuery, data: ProfileInput) -> None:
    """The checks of a PUT by identifier query that need no database."""
    rules.check_source(query.source)
    rules.check_type(query.profile_type)
    rules.check_matches_query(data, query)


async def put_by_query(
    store: Store, account_id: int, limits: Limits, query: IdentifierQuery, data: ProfileInput,
    *, user_id: int | None = None,
) -> Written:
    """Replaces the profile the query selects, or creates it (linked to `user_id` if given)."""
    check_query_for_write(query, data)

    async def unit(tx: Transaction) -> Written:
        return await put_in(tx, limits, query, data, user_id=user_id)

    if user_id is not None:
        return await store.write(account_id, unit)
    item = PutItem(query, data, _create_input(query, data), limits)
    return await store.write(account_id, unit, together=Together(_put_together, item))


@dataclass(frozen=True, slots=True)
class PutItem:
    """A checked `PUT ?identifier=` as `bulk.together` takes it: its query, its body, and the
    body of the profile it creates if the query finds none."""

    query: IdentifierQuery
    data: ProfileInput
    create: ProfileInput
    limits: Limits


async def _put_together(tx: Transaction, items: list[PutItem]) -> list[Written | None]:
    from .bulk.together import put_together  # the import's modules import this one

    return await put_together(tx, items)


def _create_input(query: IdentifierQuery, data: ProfileInput) -> ProfileInput:
    """The body of the profile a PUT by query creates when the query finds none."""
    return ProfileInput(
        source=query.source, type=query.profile_type, name=data.name,
        identifiers=rules.with_query_identifier(data.identifiers, query),
        attributes=data.attributes,
    )


async def put_in(
    tx: Transaction, limits: Limits, query: IdentifierQuery, data: ProfileInput,
    *, user_id: int | None = None, profile_id: str | None = None,
) -> Written:
    """`put_by_query` inside a unit of work (shared with the bulk import, which may also name
    the id of a profile it creates). The caller has checked the query against the body."""
    if user_id is not None and await tx.get_user(user_id) is None:
        raise UserNotFound(f"No user has the id {user_id}.")
    existing = await tx.find_profile(
        query.source, query.profile_type, query.identifier, for_update=True
    )
    if existing is None:
        created = await _create(
            tx, limits, query.source, query.profile_type, _create_input(query, data), user_id,
            profile_id or new_profile_id(), known_free=query.identifier,
        )
        return Written(created, True)
    if user_id is not None and existing.user_id != user_id:
        raise InvalidProfile("The profile belongs to another user.", code="ProfileOfAnotherUser")
    after = replacement(existing, query, data, now_ms())
    return Written(await save_changed(tx, existing, after), False)


def replacement(existing: Profile, query: IdentifierQuery, data: ProfileInput, now: int) -> Profile:
    """What a `PUT ?identifier=` makes of the profile its query found: the body's, keeping the
    query's identifier. Raises if the body cannot replace it."""
    return rules.replaced(existing, data, now=now, keep=query.identifier)


async def replace_by_id(store: Store, account_id: int, profile_id: str, data: ProfileInput) -> Profile:
    async def unit(tx: Transaction) -> Profile:
        existing = await tx.get_profile(profile_id, for_update=True)
        if existing is None:
            raise ProfileNotFound(f"No profile has the id '{profile_id}'.")
        after = rules.replaced(existing, data, now=now_ms())
        return await save_changed(tx, existing, after)

    return await store.write(account_id, unit)


async def patch_by_id(store: Store, account_id: int, profile_id: str, data: ProfileInput) -> Profile:
    async def unit(tx: Transaction) -> Profile:
        existing = await tx.get_profile(profile_id, for_update=True)
        if existing is None:
            raise ProfileNotFound(f"No profile has the id '{profile_id}'.")
        return await save_changed(tx, existing, rules.merged(existing, data, now=now_ms()))

    return await store.write(account_id, unit)


async def patch_by_query(
    store: Store, account_id: int, query: IdentifierQuery, data: ProfileInput
) -> Profile:
    async def unit(tx: Transaction) -> Profile:
        existing = await tx.find_profile(
            query.source, query.profile_type, query.identifier, for_update=True
        )
        if existing is None:
            raise ProfileNotFound("No profile matches the identifier query.")
        return await save_changed(tx, existing, rules.merged(existing, data, now=now_ms()))

    return await store.write(account_id, unit)


async def delete_by_id(store: Store, account_id: int, profile_id: str) -> None:
    async def unit(tx: Transaction) -> None:
        existing = await tx.get_profile(profile_id, for_update=True)
        if existing is None:
            raise ProfileNotFound(f"No profile has the id '{profile_id}'.")
        await tx.delete_profile(existing)

    await store.write(account_id, unit)


async def delete_by_query(store: Store, account_id: int, query: IdentifierQuery) -> None:
    async def unit(tx: Transaction) -> None:
        existing = await tx.find_profile(
            query.source, query.profile_type, query.identifier, for_update=True
        )
        if existing is None:
            raise ProfileNotFound("No profile matches the identifier query.")
        await tx.delete_profile(existing)

    await store.write(account_id, unit)
