"""PUTs by identifier query that reach a server together, written as the import writes a batch.

A create that the stored records decide at a glance (none of its keys is stored, or only the
identities and external id of one user, whom it joins) is written with the others in a few
statements: each key looked up once for all of them, each table's rows inserted together.
Any other PUT (a replace, a key another PUT of the group shares, a new profile kind, a limit
that may refuse it) is left to its own unit, which the store runs after the group
(`store.base.Together`).
"""

from __future__ import annotations

from ...domain import profile as rules
from ...store.base import Transaction
from ...store.batch import BatchTransaction
from ..clock import now_ms
from ..profiles import PutItem, Written
from .drafts import Draft, Parsed, draft_lines
from .lines import line_of
from .writing import insert_drafts, stored_holders


async def put_together(tx: Transaction, items: list[PutItem]) -> list[Written | None]:
    """Creates the profiles of the PUTs the stored records decide at a glance; None for each
    of the others."""
    batch = BatchTransaction(tx)  # type: ignore[arg-type]
    limits = items[0].limits
    drafts = draft_lines(
        [(index, line_of(index + 1, item.query, item.create)) for index, item in enumerate(items)],
        now_ms(),
    )
    kinds = await batch.stored_kinds({(d.source, d.type) for d in drafts})
    # A PUT that shares a key with an earlier one of the group (`needs_service`) depends on
    # it: it runs alone, after. One that brings a new profile kind meets the account's limits
    # on kinds, which only the service applies.
    candidates = [
        d for d in drafts
        if not d.needs_service and d.refusal is None and (d.source, d.type) in kinds
        and items[d.index].limits == limits
    ]
    if not candidates:
        return [None] * len(items)
    stored = await stored_holders(batch, Parsed(candidates, []))
    new: list[Draft] = []
    linked: list[tuple[Draft, int]] = []
    linked_users: set[int] = set()
    for draft in candidates:
        if draft.index in stored.touching:  # its query finds a profile, or another key does
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
    results: list[Written | None] = [None] * len(items)
    for index, user_id in users.items():
        draft = drafts[index]
        profile = rules.new_profile(
            items[index].create, profile_id=draft.id, user_id=user_id, source=draft.source,
            profile_type=draft.type, now=draft.created_at,
        )
        results[index] = Written(profile, True)
    return results
