"""PUTs by identifier query that reach a server together, written as the import writes a batch.

Every query is looked up in one statement, which also reads the profile each one finds.

A create that the stored records decide at a glance (none of its keys is stored, or only the
identities and external id of one user, whom it joins) is written with the others in a few
statements: each key looked up once for all of them, each table's rows inserted together.

A replace that gains no identifier is written from the profile its query found, after the
creates: it needs no other lookup, and nothing the group writes before it changes what it does
(a create changes no stored profile, and takes no identifier one holds). A replace of a
profile that two PUTs of the group found, or one that gains an identifier, to be checked and
granted, is not written by the group.

Any other PUT (a key another PUT of the group shares, a new profile kind, a limit that may
refuse it, a body the rules refuse) is left to its own unit, which the store runs after the
group (`store.base.Together`). The PUTs then end as if they had run alone one after the
other: the group's creates, its replaces, then the others in the order they came.
"""

from __future__ import annotations

from collections import Counter

from ...domain.errors import ProfilesError
from ...domain.limits import Limits
from ...domain.profile import Profile
from ...store.base import Transaction
from ...store.batch import BatchTransaction
from ..clock import now_ms
from ..profiles import PutItem, Written, encoded_attributes, replacement, save_changed
from .drafts import (
    Draft,
    Holders,
    Lookups,
    Parsed,
    draft_lines,
    external_id_rows,
    identifier_rows,
    identity_rows,
)
from .lines import line_of
from .writing import insert_drafts, stored_holders


async def put_together(tx: Transaction, items: list[PutItem]) -> list[Written | None]:
    """Writes the PUTs the group decides (see above); None for each of the others."""
    batch = BatchTransaction(tx)  # type: ignore[arg-type]
    results: list[Written | None] = [None] * len(items)
    limits = items[0].limits
    # The queries first, all in one statement: a PUT whose query finds a profile replaces it.
    queries = [
        (item.query.source, item.query.profile_type, item.query.identifier.type,
         item.query.identifier.value, index)
        for index, item in enumerate(items) if item.limits == limits
    ]
    found = await batch.profiles_holding(queries)
    now = now_ms()
    replaces = _replaces(items, found, now)
    creates = [row for row in queries if row[4] not in found]
    if creates:
        await _create(batch, items, creates, limits, now, results)
    for index, before, after, attributes in replaces:
        results[index] = Written(await save_changed(tx, before, after, attributes), False)
    return results


def _replaces(
    items: list[PutItem], found: dict[int, Profile], now: int
) -> list[tuple[int, Profile, Profile, bytes]]:
    """(place, profile before, profile after, its attributes) of each replace the group writes."""
    finders = Counter(profile.id for profile in found.values())
    replaces = []
    for index in sorted(found):
        before = found[index]
        if finders[before.id] > 1:
            continue
        item = items[index]
        try:
            after = replacement(before, item.query, item.data, now)
            if not set(after.identifiers) <= set(before.identifiers):
                continue
            attributes = encoded_attributes(after)
        except ProfilesError:
            continue  # refused: its unit says why
        replaces.append((index, before, after, attributes))
    return replaces


async def _create(
    batch: BatchTransaction, items: list[PutItem], creates: list[tuple[str, str, str, str, int]],
    limits: Limits, now: int, results: list[Written | None],
) -> None:
    """Creates the profiles of the PUTs whose queries found none, where the stored records
    decide them at a glance; their results go to `results`."""
    drafted = draft_lines(
        [(index, line_of(index + 1, items[index].query, items[index].create))
         for *_, index in creates],
        now,
    )
    drafts = [draft for draft, _ in drafted]
    profiles = {draft.index: profile for draft, profile in drafted}
    kinds = await batch.stored_kinds({(d.source, d.type) for d in drafts})
    # A PUT that shares a key with an earlier one of the group (`needs_service`) depends on
    # it: it runs alone, after. One that brings a new profile kind meets the account's limits
    # on kinds, which only the service applies.
    candidates = [
        d for d in drafts
        if not d.needs_service and d.refusal is None and (d.source, d.type) in kinds
    ]
    if not candidates:
        return
    # Each query's identifier is known to be free: only the other keys are looked up.
    free = set(creates)
    again = Lookups(
        [row for row in identifier_rows(candidates) if row not in free],
        identity_rows(candidates), external_id_rows(candidates),
    )
    stored = await stored_holders(batch, Parsed(candidates, [], Holders([], [], []), again))
    new: list[Draft] = []
    linked: list[tuple[Draft, int]] = []
    linked_users: set[int] = set()
    for draft in candidates:
        if draft.index in stored.touching:  # another of its identifiers is held
            continue
        owners = stored.owners.get(draft.index)
        if not owners:
            new.append(draft)
            continue
        owner = next(iter(owners))
        # Two PUTs joining one user would each count its profiles as they were before.
        if len(owners) == 1 and owner not in linked_users:
            linked.append((draft, owner))
            linked_users.add(owner)
    _, users = await insert_drafts(batch, limits, new, linked, stored.held, drafts[0].created_at)
    for index, user_id in users.items():
        profile = profiles[index]
        assert profile is not None, "a draft the rules refused is no candidate"
        profile.user_id = user_id
        results[index] = Written(profile, True)
