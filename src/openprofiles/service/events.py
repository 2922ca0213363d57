"""The Events API (EVENTS.md): tracking an event against a profile, and listing events.

Each operation is one unit of work. Tracking by profile finds, creates or extends the profile
and stores the event in the same transaction, so a 202 means both are committed, and a 4xx
leaves neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ..domain import events as rules
from ..domain import profile as profile_rules
from ..domain.errors import IdentifierInUse, InvalidProfile, LimitExceeded, ProfileNotFound, UserNotFound
from ..domain.events import EventInput, EventPage, EventQuery
from ..domain.identifiers import IdentifierQuery
from ..domain.limits import Limits
from ..domain.profile import Profile, ProfileInput
from ..store.base import Store, Transaction
from . import profiles
from .clock import new_profile_id, now_ms

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Received:
    """Where a tracked event was stored."""

    profile_id: str
    user_id: int


def check_target(data: ProfileInput) -> tuple[str, str]:
    """The `profile` of a track request names its profile by source, type and identifiers."""
    if data.source is None:
        raise InvalidProfile("The profile of an event needs a 'source'.")
    if data.type is None:
        raise InvalidProfile("The profile of an event needs a 'type'.")
    profile_rules.check_source(data.source)
    profile_rules.check_type(data.type)
    if not data.identifiers:
        raise InvalidProfile("The profile of an event needs at least one identifier.")
    return data.source, data.type


async def _register_kind(tx: Transaction, source: str, event_type: str) -> None:
    """Counts a new (source, type) of events against the account's limits on its first use."""
    if await tx.has_event_kind(source, event_type):
        return
    source_known, sources, kinds = await tx.event_kind_counts(source)
    if not source_known and sources >= rules.MAX_EVENT_SOURCES:
        raise LimitExceeded(
            f"An account may use at most {rules.MAX_EVENT_SOURCES} event sources."
        )
    if kinds >= rules.MAX_EVENT_TYPES:
        raise LimitExceeded(f"An account may use at most {rules.MAX_EVENT_TYPES} event types.")
    await tx.add_event_kind(source, event_type)


async def _store_event(tx: Transaction, profile: Profile, data: EventInput) -> Received:
    await _register_kind(tx, data.source, data.type)
    event = rules.new_event(
        data, event_id=new_profile_id(), profile_id=profile.id, user_id=profile.user_id,
        received_at=now_ms(),
    )
    await tx.insert_event(event, _encode(event.properties))
    return Received(profile.id, profile.user_id)


async def _find_or_create(
    tx: Transaction, limits: Limits, target: ProfileInput, source: str, profile_type: str,
    user_id: int | None,
) -> Profile:
    """The profile of that source and type holding any of the identifiers, given the ones it
    lacks as a PATCH would; or a new one, by the rules of a profile create."""
    holders = await tx.profile_ids_holding(source, profile_type, target.identifiers)
    if len(holders) > 1:
        raise IdentifierInUse("All identifiers must belong to a single profile.")
    if not holders:
        create = ProfileInput(
            source=source, type=profile_type, name=target.name, identifiers=target.identifiers
        )
        return await profiles.create_in(tx, limits, source, profile_type, create, user_id=user_id)
    # Most events go to a profile that needs no change: it is read without a lock, so that
    # the events of one person do not queue behind each other.
    profile_id = holders.pop()
    existing = await tx.get_profile(profile_id)
    assert existing is not None, "an identifier row always has its profile"
    if user_id is not None and existing.user_id != user_id:
        raise InvalidProfile("The profile belongs to another user.", code="ProfileOfAnotherUser")
    missing = [i for i in target.identifiers if i not in existing.identifiers]
    if not missing:
        return existing
    existing = await tx.get_profile(profile_id, for_update=True)
    assert existing is not None
    after = profile_rules.merged(existing, ProfileInput(identifiers=missing), now=now_ms())
    return await profiles.save_changed(tx, existing, after)


async def track(
    store: Store, account_id: int, limits: Limits, target: ProfileInput, event: EventInput,
    *, user_id: int | None = None,
) -> Received:
    """`POST /api/v2/user_profiles/events`, and with `user_id` `POST /api/v2/users/{id}/events`."""
    source, profile_type = check_target(target)

    async def unit(tx: Transaction) -> Received:
        if user_id is not None and await tx.get_user(user_id) is None:
            raise UserNotFound(f"No user has the id {user_id}.")
        profile = await _find_or_create(tx, limits, target, source, profile_type, user_id)
        return await _store_event(tx, profile, event)

    return await store.write(account_id, unit)


async def track_for_profile(
    store: Store, account_id: int, profile_id: str, event: EventInput
) -> Received:
    """`POST /api/v2/user_profiles/{profile_id}/events`."""

    async def unit(tx: Transaction) -> Received:
        profile = await tx.get_profile(profile_id)
        if profile is None:
            raise ProfileNotFound(f"No profile has the id '{profile_id}'.")
        return await _store_event(tx, profile, event)

    return await store.write(account_id, unit)


# Reads


async def list_for_user(store: Store, account_id: int, user_id: int, query: EventQuery) -> EventPage:
    async def unit(tx: Transaction) -> EventPage | None:
        if await tx.get_user(user_id) is None:
            return None
        return rules.page_of(await tx.user_events(user_id, query), query)

    found = await store.read_stale(account_id, unit)
    if found is None:
        raise UserNotFound(f"No user has the id {user_id}.")
    return found


async def list_for_profile(
    store: Store, account_id: int, profile_id: str, query: EventQuery
) -> EventPage:
    async def unit(tx: Transaction) -> EventPage | None:
        if await tx.get_profile(profile_id) is None:
            return None
        return rules.page_of(await tx.profile_events(profile_id, query), query)

    found = await store.read_stale(account_id, unit)
    if found is None:
        raise ProfileNotFound(f"No profile has the id '{profile_id}'.")
    return found


async def list_for_query(
    store: Store, account_id: int, identifier: IdentifierQuery, query: EventQuery
) -> EventPage:
    async def unit(tx: Transaction) -> EventPage | None:
        profile = await tx.find_profile(
            identifier.source, identifier.profile_type, identifier.identifier
        )
        if profile is None:
            return None
        return rules.page_of(await tx.profile_events(profile.id, query), query)

    found = await store.read_stale(account_id, unit)
    if found is None:
        raise ProfileNotFound("No profile matches the identifier query.")
    return found
