"""PUTs by identifier query that reach a server together, written as the import writes a batch.

A create that the stored records decide at a glance (none of its keys is stored, or only the
identities and external id of one user, whom it joins) is written with the others in a few
statements: each key looked up once for all of them, each table's rows inserted together.
Any other PUT (a replace, a key another PUT of the group shares, a new profile kind, a limit
that may refuse it) is left to its own unit, which the store runs after the group
(`store.base.Together`).
"""

from __future__ import annotations

from ...store.base import Transaction
from ...store.batch import BatchTransaction
from ..clock import now_ms
from ..profiles import PutItem, Written
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
    """Creates the profiles of the PUTs the stored records decide at a glance; None for each
    of the others."""
    batch = BatchTransaction(tx)  # type: ignore[arg-type]
    results: list[Written | None] = [None] * len(items)
    limits = items[0].limits
    # The queries first, all in one statement: a PUT whose query finds a profile replaces it,
    # and is left to its unit before anything is drafted for it.
    queries = [
        (item.query.source, item.query.profile_type, item.query.identifier.type,
         item.query.identifier.value, index)
        for index, item in enumerate(items) if item.limits == limits
    ]
    found = await batch.identifiers_held(queries)
    creates = [row for row in queries if row[4] not in found]
    if not creates:
        return results
    drafted = draft_lines(
        [(index, line_of(index + 1, items[index].query, items[index].create))
         for *_, index in creates],
        now_ms(),
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
        return results
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
    return results
