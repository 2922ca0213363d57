"""A checked batch written in one unit of work.

Lines that create a profile and share no key with any other line of the batch are written
together, a few statements for the whole batch, when the stored records decide their outcome
at a glance: none of their keys is stored (a new user), or only identities and the external id
of one user, whom they join. Every other line goes through the service itself, in order, in a
savepoint of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...domain import profile as rules
from ...domain.errors import InvalidProfile, ProfilesError
from ...domain.limits import Limits
from ...domain.users import external_id_key
from ...store.base import Transaction
from ...store.batch import BatchTransaction, NewRecords
from .. import linking, profiles
from ..clock import new_profile_id, now_ms
from .drafts import (
    Draft,
    Holders,
    Parsed,
    external_id_rows,
    identifier_rows,
    identity_rows,
)
from .lines import Line, Refusal, parse_line, refusal_of


@dataclass
class BatchResult:
    created: int = 0
    replaced: int = 0
    refusals: list[Refusal] = field(default_factory=list)


@dataclass(slots=True)
class Stored:
    """What stored records hold of a batch's keys, by the place of each line in the batch."""

    touching: set[int]  # lines one of whose identifiers, or whose named user or id, is stored
    owners: dict[int, set[int]]  # the users holding a line's identities or external id
    held: dict[int, set[tuple[str, str]]]  # the identities of a line that some user holds
    reached: dict[int, set[int]]  # the stored users a line's keys lead to, by group


async def stored_holders(batch: BatchTransaction, parsed: Parsed) -> Stored:
    drafts = parsed.drafts
    stored = Stored(set(), {}, {}, {})
    group = {d.index: d.group for d in drafts}

    def reaches(index: int, user_id: int) -> None:
        stored.reached.setdefault(group[index], set()).add(user_id)

    if parsed.holders is None or parsed.again is None:
        holders = Holders(
            await batch.identifier_holders(identifier_rows(drafts)),  # type: ignore[arg-type]
            await batch.identity_holders(identity_rows(drafts)),  # type: ignore[arg-type]
            await batch.external_id_holders(external_id_rows(drafts)),  # type: ignore[arg-type]
        )
    else:
        again = parsed.again
        holders = Holders(
            parsed.holders.identifiers + await batch.identifier_holders(again.identifiers),
            parsed.holders.identities + await batch.identity_holders(again.identities),
            parsed.holders.external_ids + await batch.external_id_holders(again.external_ids),
        )
    for index, user_id in holders.identifiers:
        stored.touching.add(index)
        reaches(index, user_id)
    for index, kind, value, user_id in holders.identities:
        stored.owners.setdefault(index, set()).add(user_id)
        stored.held.setdefault(index, set()).add((kind, value))
        reaches(index, user_id)
    for index, user_id in holders.external_ids:
        stored.owners.setdefault(index, set()).add(user_id)
        reaches(index, user_id)
    named_users = [d for d in drafts if d.user_id is not None]
    if named_users:
        users = await batch.stored_users([d.user_id for d in named_users])  # type: ignore[misc]
        for draft in named_users:
            if draft.user_id in users:
                stored.touching.add(draft.index)
                reaches(draft.index, draft.user_id)  # type: ignore[arg-type]
    named_ids = [d for d in drafts if d.named_id]
    if named_ids:
        ids = await batch.stored_profiles([d.id for d in named_ids])
        stored.touching.update(d.index for d in named_ids if d.id in ids)
    return stored


async def insert_drafts(
    batch: BatchTransaction, limits: Limits, new: list[Draft], linked: list[tuple[Draft, int]],
    held: dict[int, set[tuple[str, str]]], now: int, *, named_above: int = 0,
) -> tuple[list[Refusal], dict[int, int]]:
    """Writes the records of lines that create a profile for a new user (`new`) or for the one
    stored user their identities match (`linked`); returns the linked lines that user's profile
    limit refuses, and the user of each line written, by its place in the batch. New users'
    ids are above every user id the batch names, so that none takes an id that a later line
    of the batch means for its own user."""
    account = batch.account_id
    refusals: list[Refusal] = []
    records = NewRecords()
    explicit = [d.user_id for d in new if d.user_id is not None]
    user_ids = iter(await batch.reserve_ids("users", len(new) - len(explicit), above=named_above))
    # Comprehensions rather than a loop of appends: the import runs this for every line, and
    # the writing process, which runs it, sets the import's pace.
    creating = [(d, d.user_id if d.user_id is not None else next(user_ids)) for d in new]
    records.users = [
        (account, user_id, d.name, d.external_id,
         None if d.external_id is None else external_id_key(d.external_id), now)
        for d, user_id in creating
    ]
    identities = [(user_id, *key) for d, user_id in creating for key in d.identity_keys]
    owners = await batch.users_to_link([user_id for _, user_id in linked]) if linked else {}
    for draft, user_id in linked:
        external_id, profile_count = owners[user_id]
        try:
            linking.check_profile_count(profile_count, limits)
        except ProfilesError as error:
            refusals.append(refusal_of(draft.number, error))
            continue
        kept = held.get(draft.index, ())
        identities.extend((user_id, *key) for key in draft.identity_keys if key not in kept)
        if external_id is None and draft.external_id is not None:
            records.external_ids.append((
                account, user_id, draft.external_id, external_id_key(draft.external_id), now,
            ))
        creating.append((draft, user_id))
    records.profiles = [
        (account, d.id, user_id, d.source, d.type, d.name, d.identifiers, d.attributes, d.created_at)
        for d, user_id in creating
    ]
    records.identifiers = [(account, *key, d.id) for d, _ in creating for key in d.identifier_keys]
    written = {d.index: user_id for d, user_id in creating}
    identity_ids = await batch.reserve_ids("user_identities", len(identities))
    records.identities = [
        (account, identity_id, user_id, kind, value, now)
        for identity_id, (user_id, kind, value) in zip(identity_ids, identities)
    ]
    await batch.insert(records)
    if explicit:
        await batch.keep_sequence_above("users", max(explicit))
    return refusals, written


async def _apply_one(
    batch: BatchTransaction, tx: Transaction, limits: Limits, line: Line
) -> profiles.Written:
    """The line through the service, as `PUT ?identifier=` (or `PUT /users/{id}/profiles` when
    the line names its user), creating a named user that does not exist yet."""
    query = line.query
    if line.user_id is None and line.profile_id is None:
        return await profiles.put_in(tx, limits, query, line.data)
    if await tx.find_profile(query.source, query.profile_type, query.identifier) is not None:
        # A replace, where ids are read-only as in the API.
        return await profiles.put_in(tx, limits, query, line.data)
    if line.profile_id is not None and await batch.profile_exists(line.profile_id):
        raise InvalidProfile(
            f"The id '{line.profile_id}' belongs to another profile.", code="ProfileIdInUse"
        )
    if line.user_id is not None and not await batch.user_exists(line.user_id):
        draft = rules.new_profile(
            line.data, profile_id=new_profile_id(), user_id=line.user_id,
            source=query.source, profile_type=query.profile_type, now=now_ms(),
        )
        await batch.insert_user_with_id(line.user_id, draft.name, draft.created_at)
    return await profiles.put_in(
        tx, limits, query, line.data, user_id=line.user_id, profile_id=line.profile_id
    )


async def apply_batch(
    tx: Transaction, limits: Limits, raw_lines: list[tuple[int, bytes]], parsed: Parsed,
) -> BatchResult:
    """Applies a checked batch in one unit of work; runs again from the start if the store
    retries. `raw_lines` is the batch as read, `parsed` what `parse_batch` made of it."""
    assert hasattr(tx, "driver"), "bulk writes need an SQL transaction"
    batch = BatchTransaction(tx)  # type: ignore[arg-type]
    result = BatchResult()
    now = now_ms()
    kinds = await batch.known_kinds()
    new_kinds = {(d.source, d.type) for d in parsed.drafts} - kinds
    # When every new (source, type) of the batch fits the account's limits, whichever lines
    # bring them and in whatever order, no line's outcome depends on the limits: a line
    # bringing one may be written in bulk, and its kind is registered once it is written.
    if new_kinds and not linking.kinds_fit(kinds, new_kinds, limits):
        new_kinds = set()
    settled = kinds | new_kinds
    stored = await stored_holders(batch, parsed)
    new: list[Draft] = []
    linked: list[tuple[Draft, int]] = []
    linked_users: set[int] = set()
    slow: list[Draft] = []
    # Lines written together go before the slow ones. A line that joins a stored user may go
    # with them only if no slow line before it may have changed that user (its profile count,
    # its external id), nor any other line joining it: not one whose keys lead to that user.
    changed: set[int] = set()
    for draft in parsed.drafts:
        # A new (source, type) that may not fit the account's limits: the service decides it.
        if draft.needs_service or draft.index in stored.touching \
                or (draft.source, draft.type) not in settled:
            slow.append(draft)
            changed |= stored.reached.get(draft.group, set())
            continue
        owners = stored.owners.get(draft.index)
        if not owners:
            if draft.refusal is not None:
                result.refusals.append(draft.refusal)
            else:
                new.append(draft)
            continue
        owner = next(iter(owners))
        if len(owners) > 1 or draft.user_id is not None or draft.named_id \
                or owner in changed or owner in linked_users:
            slow.append(draft)
            changed |= stored.reached.get(draft.group, set())
        elif draft.refusal is not None:
            result.refusals.append(draft.refusal)
        else:
            linked.append((draft, owner))
            linked_users.add(owner)
    # Lines written together share no key with any other line of the batch, and no slow line
    # before one that joins a stored user changes that user: writing them first gives the
    # outcome of applying every line in order.
    named = max((d.user_id for d in parsed.drafts if d.user_id is not None), default=0)
    refused, _ = await insert_drafts(batch, limits, new, linked, stored.held, now, named_above=named)
    if new_kinds:
        refused_lines = {refusal.line for refusal in refused}
        written = {(d.source, d.type) for d in new}
        written.update((d.source, d.type) for d, _ in linked if d.number not in refused_lines)
        for source, profile_type in sorted(written & new_kinds):
            await tx.add_kind(source, profile_type)
    result.refusals.extend(refused)
    result.created += len(new) + len(linked) - len(refused)
    for draft in slow:
        line = parse_line(draft.number, raw_lines[draft.index][1])
        await batch.savepoint("bulk_line")
        try:
            written = await _apply_one(batch, tx, limits, line)
        except ProfilesError as error:
            await batch.rollback_to("bulk_line")
            result.refusals.append(refusal_of(line.number, error))
            continue
        await batch.release("bulk_line")
        if written.created:
            result.created += 1
        else:
            result.replaced += 1
    result.refusals.sort(key=lambda refusal: refusal.line)
    return result
