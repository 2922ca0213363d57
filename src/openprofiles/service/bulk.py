"""Bulk import and export of profiles as NDJSON, one `{"profile": {...}}` a line (docs/bulk.md).

Each line is a `PUT /api/v2/user_profiles?identifier=` whose query is the line's first
identifier, under the same rules. Lines are applied a batch per transaction. Within a batch,
lines that create a profile and share no key (identifier, identity, external id, user or
profile id) with any other line of the batch are written together, a few statements for the
whole batch, when the stored records decide their outcome at a glance: none of their keys is
stored (a new user), or only identities and the external id of one user, whom they join.
Every other line goes through the service itself, in order, in a savepoint of its own, so
that a refused line leaves nothing behind and never stops the import.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

import msgspec

from ..domain import profile as rules
from ..domain.errors import InvalidProfile, ProfilesError
from ..domain.identifiers import IdentifierQuery
from ..domain.limits import Limits
from ..domain.profile import Profile, ProfileInput, is_profile_id, parse_profile_input
from ..domain.users import external_id_key, external_ids_of, identity_keys_of
from ..store.base import Store, Transaction
from ..store.batch import (
    BatchTransaction,
    CommittedKeys,
    NewRecords,
    finish_import,
    prepare_for_import,
    profiles_in_id_order,
    refresh_statistics,
)
from ..store.sql import encode_identifiers
from . import linking, profiles
from .clock import new_profile_id, now_ms
from .seen_keys import SeenKeys

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode

DEFAULT_BATCH_SIZE = 2000
_MAX_USER_ID_DIGITS = 18


@dataclass(frozen=True, slots=True)
class Line:
    """One checked line: the PUT it stands for, and the ids an export gave it."""

    number: int
    query: IdentifierQuery
    data: ProfileInput
    profile_id: str | None
    user_id: int | None
    # The keys by which this line's outcome could depend on another line's or a stored record.
    identifier_keys: list[tuple[str, str, str, str]]
    identity_keys: list[tuple[str, str]]
    external_ids: list[str]
    external_keys: list[str]


@dataclass(frozen=True, slots=True)
class Refusal:
    line: int
    code: str
    detail: str


@dataclass
class BatchResult:
    created: int = 0
    replaced: int = 0
    refusals: list[Refusal] = field(default_factory=list)


def _refusal(number: int, error: ProfilesError) -> Refusal:
    return Refusal(number, error.code, error.detail)


def _invalid_json(detail: str) -> ProfilesError:
    return ProfilesError(detail, code="InvalidJson", title="Invalid JSON")


def _user_id(raw: Any) -> int | None:
    if raw is None:
        return None
    text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()) \
            or len(text) > _MAX_USER_ID_DIGITS or int(text) == 0:
        raise InvalidProfile("'user_id' must be a user id: a positive integer or its decimal string.")
    return int(text)


def parse_line(number: int, raw: bytes) -> Line:
    """Checks one line as the API checks a PUT: body, source and type, identifiers."""
    try:
        document = _decode(raw)
    except msgspec.DecodeError as error:
        raise _invalid_json(f"The line is not valid JSON: {error}.") from None
    except RecursionError:
        raise _invalid_json("The line nests too deeply.") from None
    if not isinstance(document, dict) or not isinstance(document.get("profile"), dict):
        raise InvalidProfile("A line must be a JSON object {\"profile\": {...}}.")
    body = document["profile"]
    data = parse_profile_input(body)
    if not data.source or not data.type:
        rules.check_source(data.source or "")
        rules.check_type(data.type or "")
    if not data.identifiers:
        raise InvalidProfile("A profile needs at least one identifier.")
    query = IdentifierQuery(data.source or "", data.type or "", data.identifiers[0])
    profiles.check_query_for_write(query, data)
    profile_id = body.get("id")
    if profile_id is not None and (not isinstance(profile_id, str) or not is_profile_id(profile_id)):
        raise InvalidProfile("'id' must be a profile id: a ULID of 26 characters.")
    source, profile_type = query.source, query.profile_type
    external_ids = external_ids_of(data.identifiers)
    return Line(
        number, query, data, profile_id, _user_id(body.get("user_id")),
        [(source, profile_type, i.type, i.value) for i in data.identifiers],
        [(k.type, k.value) for k in identity_keys_of(data.identifiers)],
        external_ids, [external_id_key(e) for e in external_ids],
    )


class Draft(msgspec.Struct, array_like=True, gc=False):
    """A checked line, with the records it writes if it creates a profile of its own: what the
    writing process needs of it, in a form that crosses from the parsing process cheaply."""

    index: int  # its place in its batch
    number: int
    # It shares a key with an earlier line of the batch, or holds more than one external id:
    # only the service, applying the lines in order, can tell what it does.
    needs_service: bool
    source: str
    type: str
    id: str
    named_id: bool  # the line gave the profile's id
    user_id: int | None  # the line named its user
    name: str
    identifiers: str  # as stored
    attributes: str  # as stored
    created_at: int
    external_id: str | None
    identifier_keys: list[tuple[str, str, str, str]]
    identity_keys: list[tuple[str, str]]
    refusal: Refusal | None  # what drafting the new profile met, if the line creates one
    group: int = 0  # lines that share keys, directly or through other lines, share a group


class Holders(msgspec.Struct, array_like=True, gc=False):
    """Which keys of a batch stored records hold, by the place of each line in the batch."""

    identifiers: list[tuple[int, int]]  # (line, user of the profile holding it)
    identities: list[tuple[int, str, str, int]]  # (line, type, value, user holding it)
    external_ids: list[tuple[int, int]]  # (line, user holding it)


class Lookups(msgspec.Struct, array_like=True, gc=False):
    """Keys of a batch to look up, each with the place of its line in the batch."""

    identifiers: list[tuple[str, str, str, str, int]]
    identities: list[tuple[str, str, int]]
    external_ids: list[tuple[str, int]]


class Parsed(msgspec.Struct, array_like=True, gc=False):
    drafts: list[Draft]
    refusals: list[Refusal]
    # Looked up by the parsing process when it can read the database (SQLite), from what was
    # committed then, and the keys to look up again when the batch is written; None when it
    # did not look up.
    holders: Holders | None = None
    again: Lookups | None = None


# How many keys the database may hold at the start of an import for `_Lookahead` to read them
# all (a few tenths of a second) and then look up only the keys it may have met.
_PRELOADED_KEYS = 100_000


class _Lookahead:
    """The lookups of a parsing process, batch after batch, in order: what committed records
    hold of each batch's keys, and which of its keys the batch parsed before it has too. That
    batch may not be committed yet when this one is looked up (see `parsed_batches`), so
    those keys are looked up again when this batch is written."""

    def __init__(self, committed: CommittedKeys) -> None:
        self.committed = committed
        self.last: tuple[set[Any], set[Any], set[Any]] = (set(), set(), set())
        # Every key the database held when the import began and every key of the batches
        # since, when the former are few: a key it has never met is in no record, unless
        # another process wrote it meanwhile (see `batch_unit`), and needs no lookup.
        self.seen: SeenKeys | None = None
        held = committed.every_key(_PRELOADED_KEYS)
        if held is not None:
            self.seen = SeenKeys()
            self.seen.add(held)

    def look_up(self, drafts: list[Draft]) -> tuple[Holders, Lookups]:
        identifiers, identities = _identifier_rows(drafts), _identity_rows(drafts)
        external_ids = _external_id_rows(drafts)
        keys = ({row[:4] for row in identifiers}, {row[:2] for row in identities},
                {row[0] for row in external_ids})
        last, self.last = self.last, keys
        seen = self.seen
        if seen is not None:
            identifiers = [row for row in identifiers if row[:4] in seen]
            identities = [row for row in identities if row[:2] in seen]
            external_ids = [row for row in external_ids if row[0] in seen]
            for batch_keys in keys:
                seen.add(batch_keys)
        holders = Holders(
            self.committed.identifier_holders(identifiers),  # type: ignore[arg-type]
            self.committed.identity_holders(identities),  # type: ignore[arg-type]
            self.committed.external_id_holders(external_ids),  # type: ignore[arg-type]
        )
        again = Lookups(
            [row for row in identifiers if row[:4] in last[0]],
            [row for row in identities if row[:2] in last[1]],
            [row for row in external_ids if row[0] in last[2]],
        )
        return holders, again


# Lookup rows: each key of a batch with the place of its line.


def _identifier_rows(drafts: list[Draft]) -> list[tuple[Any, ...]]:
    return [(*key, d.index) for d in drafts for key in d.identifier_keys]


def _identity_rows(drafts: list[Draft]) -> list[tuple[Any, ...]]:
    return [(*key, d.index) for d in drafts for key in d.identity_keys]


def _external_id_rows(drafts: list[Draft]) -> list[tuple[Any, ...]]:
    return [(external_id_key(d.external_id), d.index) for d in drafts if d.external_id is not None]


def _drafted(index: int, line: Line, now: int, needs_service: bool) -> Draft:
    """The line, and the profile it creates if its query finds none, checked as the service
    checks it."""
    query = line.query
    refusal: Refusal | None = None
    identifiers = attributes = name = ""
    profile_id = line.profile_id or new_profile_id()
    try:
        profile = rules.new_profile(
            line.data, profile_id=profile_id, user_id=0,
            source=query.source, profile_type=query.profile_type, now=now,
        )
        encoded = _encode(profile.attributes)
        rules.check_attributes_size(len(encoded))
        identifiers, attributes, name = encode_identifiers(profile.identifiers), encoded.decode(), profile.name
    except ProfilesError as error:
        refusal = _refusal(line.number, error)
    return Draft(
        index, line.number, needs_service, query.source, query.profile_type, profile_id,
        line.profile_id is not None, line.user_id, name, identifiers, attributes, now,
        line.external_ids[0] if line.external_ids else None,
        line.identifier_keys, line.identity_keys, refusal,
    )


def parse_batch(
    raw_lines: list[tuple[int, bytes]], lookahead: _Lookahead | None = None
) -> Parsed:
    """Every check of `parse_line` for a batch, and the drafts: all that needs no database;
    and, given the committed state of the database, which of its identifiers it holds.

    Lines that share a key are put in one group: whatever a line does to a stored user, it
    does through keys, so a group can only change the stored users its own keys lead to."""
    parsed = Parsed([], [])
    now = now_ms()
    group = list(range(len(raw_lines)))  # by line: a line of the same group, or itself

    def root(index: int) -> int:
        while group[index] != index:
            group[index] = group[group[index]]
            index = group[index]
        return index

    holders: tuple[dict[Any, int], ...] = ({}, {}, {}, {}, {})
    for index, (number, raw) in enumerate(raw_lines):
        try:
            line = parse_line(number, raw)
        except ProfilesError as error:
            parsed.refusals.append(_refusal(number, error))
            continue
        shared = False
        for keys, seen in zip((
            line.identifier_keys, line.identity_keys, line.external_keys,
            () if line.user_id is None else (line.user_id,),
            () if line.profile_id is None else (line.profile_id,),
        ), holders):
            for key in keys:
                other = seen.get(key)
                if other is None:
                    seen[key] = index
                elif (joined := root(other)) != index:
                    group[joined] = index
                    shared = True
        parsed.drafts.append(_drafted(index, line, now, shared or len(line.external_ids) > 1))
    for draft in parsed.drafts:
        draft.group = root(draft.index)
    if lookahead is not None:
        parsed.holders, parsed.again = lookahead.look_up(parsed.drafts)
    return parsed


@dataclass(slots=True)
class _Stored:
    """What stored records hold of a batch's keys, by the place of each line in the batch."""

    touching: set[int]  # lines one of whose identifiers, or whose named user or id, is stored
    owners: dict[int, set[int]]  # the users holding a line's identities or external id
    held: dict[int, set[tuple[str, str]]]  # the identities of a line that some user holds
    reached: dict[int, set[int]]  # the stored users a line's keys lead to, by group


async def _stored(batch: BatchTransaction, parsed: Parsed) -> _Stored:
    drafts = parsed.drafts
    stored = _Stored(set(), {}, {}, {})
    group = {d.index: d.group for d in drafts}

    def reaches(index: int, user_id: int) -> None:
        stored.reached.setdefault(group[index], set()).add(user_id)

    if parsed.holders is None or parsed.again is None:
        holders = Holders(
            await batch.identifier_holders(_identifier_rows(drafts)),  # type: ignore[arg-type]
            await batch.identity_holders(_identity_rows(drafts)),  # type: ignore[arg-type]
            await batch.external_id_holders(_external_id_rows(drafts)),  # type: ignore[arg-type]
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


async def _insert(
    batch: BatchTransaction, limits: Limits, new: list[Draft], linked: list[tuple[Draft, int]],
    held: dict[int, set[tuple[str, str]]], now: int, *, named_above: int,
) -> list[Refusal]:
    """Writes the records of lines that create a profile for a new user (`new`) or for the one
    stored user their identities match (`linked`); returns the linked lines that user's profile
    limit refuses. New users' ids are above every user id the batch names, so that none takes
    an id that a later line of the batch means for its own user."""
    account = batch.account_id
    refusals: list[Refusal] = []
    records = NewRecords()
    identities: list[tuple[int, str, str]] = []
    explicit = [d.user_id for d in new if d.user_id is not None]
    user_ids = iter(await batch.reserve_ids("users", len(new) - len(explicit), above=named_above))

    def profile(draft: Draft, user_id: int) -> None:
        records.profiles.append((
            account, draft.id, user_id, draft.source, draft.type, draft.name,
            draft.identifiers, draft.attributes, draft.created_at,
        ))
        records.identifiers.extend((account, *key, draft.id) for key in draft.identifier_keys)

    for draft in new:
        user_id = draft.user_id if draft.user_id is not None else next(user_ids)
        external_id = draft.external_id
        records.users.append((
            account, user_id, draft.name, external_id,
            external_id_key(external_id) if external_id is not None else None, now,
        ))
        identities.extend((user_id, *key) for key in draft.identity_keys)
        profile(draft, user_id)
    owners = await batch.users_to_link([user_id for _, user_id in linked]) if linked else {}
    for draft, user_id in linked:
        external_id, profile_count = owners[user_id]
        try:
            linking.check_profile_count(profile_count, limits)
        except ProfilesError as error:
            refusals.append(_refusal(draft.number, error))
            continue
        kept = held.get(draft.index, ())
        identities.extend((user_id, *key) for key in draft.identity_keys if key not in kept)
        if external_id is None and draft.external_id is not None:
            records.external_ids.append((
                account, user_id, draft.external_id, external_id_key(draft.external_id), now,
            ))
        profile(draft, user_id)
    identity_ids = await batch.reserve_ids("user_identities", len(identities))
    records.identities = [
        (account, identity_id, user_id, kind, value, now)
        for identity_id, (user_id, kind, value) in zip(identity_ids, identities)
    ]
    await batch.insert(records)
    if explicit:
        await batch.keep_sequence_above("users", max(explicit))
    return refusals


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
    stored = await _stored(batch, parsed)
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
    refused = await _insert(batch, limits, new, linked, stored.held, now, named_above=named)
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
            result.refusals.append(_refusal(line.number, error))
            continue
        await batch.release("bulk_line")
        if written.created:
            result.created += 1
        else:
            result.replaced += 1
    result.refusals.sort(key=lambda refusal: refusal.line)
    return result


_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(Parsed).decode


_lookaheads: dict[tuple[str, int], _Lookahead] = {}


def _parse_packed(raw_lines: list[tuple[int, bytes]], database: tuple[str, int] | None) -> bytes:
    """`parse_batch` in the parsing process, which reads the SQLite file at `database` (path,
    account) on a connection of its own."""
    lookahead = None
    if database is not None:
        lookahead = _lookaheads.get(database)
        if lookahead is None:
            lookahead = _lookaheads[database] = _Lookahead(CommittedKeys(*database))
    return _pack(parse_batch(raw_lines, lookahead))


def _parser_started() -> None:
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """An import that is killed cannot stop its parser, which would wait for work forever
    (it holds its own queue's both ends) and keep the import's output open."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


# Batches parsed ahead of the one being written: enough to keep the parser busy, few enough
# that memory stays flat. With two, only the batch parsed just before can be missing from a
# batch's lookups, which is what `_Lookahead` looks up again.
_AHEAD = 2

RawBatch = tuple[list[tuple[int, bytes]], int]


async def parsed_batches(
    batches: Iterable[RawBatch], database: tuple[str, int] | None = None,
) -> AsyncIterator[tuple[list[tuple[int, bytes]], Parsed, int]]:
    """The batches as read and as checked and drafted, in order, with the bytes read so far.

    Checking and drafting take about half of an import's processor time and need no database,
    so from the second batch on they run in a process of their own, a batch or two ahead of
    the writes; given an SQLite file (`database`: path and account), that process also looks
    up which identifiers committed profiles hold. A single batch is parsed here: starting a
    process would cost more.

    A batch is handed to the parsing process once the one `_AHEAD` before it is written: its
    lookups see every batch but the last `_AHEAD - 1` (and, for the second batch, the first)."""
    pending = iter(batches)
    first = next(pending, None)
    if first is None:
        return
    second = next(pending, None)
    if second is None:
        yield first[0], parse_batch(first[0]), first[1]
        return
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")  # nothing of this process's state is copied
    with ProcessPoolExecutor(1, mp_context=context, initializer=_parser_started) as parser:
        ahead: deque[tuple[asyncio.Future[bytes], RawBatch]] = deque()

        def submit(batch: RawBatch) -> None:
            ahead.append((loop.run_in_executor(parser, _parse_packed, batch[0], database), batch))

        submit(first)
        submit(second)
        for batch in pending:
            while len(ahead) >= _AHEAD:
                packed, (raw, consumed) = ahead.popleft()
                yield raw, _unpack(await packed), consumed
            submit(batch)
        while ahead:
            packed, (raw, consumed) = ahead.popleft()
            yield raw, _unpack(await packed), consumed


def read_batches(stream: IO[bytes], size: int) -> Iterator[tuple[list[tuple[int, bytes]], int]]:
    """Numbered non-blank lines, `size` at a time, with the bytes read so far."""
    batch: list[tuple[int, bytes]] = []
    consumed = 0
    for number, raw in enumerate(stream, start=1):
        consumed += len(raw)
        if raw.strip():
            batch.append((number, raw))
        if len(batch) >= size:
            yield batch, consumed
            batch = []
    if batch:
        yield batch, consumed


@dataclass
class ImportTotals:
    created: int = 0
    replaced: int = 0
    refused: int = 0


async def import_lines(
    store: Store, account_id: int, limits: Limits, batches: Iterable[tuple[list[tuple[int, bytes]], int]],
    *, on_refusal: Callable[[Refusal], None], on_progress: Callable[[int], None],
) -> ImportTotals:
    """Applies every batch in its own transaction; reports refusals once a batch is committed."""
    totals = ImportTotals()
    prepare_for_import(store)
    # Each line makes dozens of short-lived objects, which by default sets the collector off
    # every few lines, and its full passes walk every module loaded at start. Setting those
    # objects aside and collecting less often takes a quarter off the import's CPU time; cycles
    # are still collected, so memory stays flat.
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        await _import(store, account_id, limits, batches, totals, on_refusal, on_progress)
    finally:
        finish_import(store)
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    return totals


def batch_unit(
    limits: Limits, raw: list[tuple[int, bytes]], parsed: Parsed
) -> Callable[[Transaction], Awaitable[BatchResult]]:
    """The unit of work that applies a batch. What the parsing process looked up is from
    before the batch is written: a server writing to the same database meanwhile may have
    taken a key it found free, and the batch's inserts then meet that key. The store runs the
    unit again, and it then looks every key up itself."""
    attempts = 0

    async def unit(tx: Transaction) -> BatchResult:
        nonlocal attempts
        attempts += 1
        looked_up = parsed if attempts == 1 else msgspec.structs.replace(
            parsed, holders=None, again=None
        )
        return await apply_batch(tx, limits, raw, looked_up)

    return unit


async def _import(
    store: Store, account_id: int, limits: Limits,
    batches: Iterable[tuple[list[tuple[int, bytes]], int]], totals: ImportTotals,
    on_refusal: Callable[[Refusal], None], on_progress: Callable[[int], None],
) -> ImportTotals:
    path = getattr(store, "path", None)
    database = (path, account_id) if getattr(store, "engine", None) == "sqlite" and path else None
    written = 0
    async for raw, parsed, consumed in parsed_batches(batches, database):
        unit = batch_unit(limits, raw, parsed)
        result = await store.write(account_id, unit) if parsed.drafts else BatchResult()
        written += bool(parsed.drafts)
        if parsed.drafts and written & (written - 1) == 0:
            # After the 1st, 2nd, 4th, 8th... batch: each time, at most what the import had
            # written before is new to the planner.
            await refresh_statistics(store)
        totals.created += result.created
        totals.replaced += result.replaced
        for refusal in sorted(parsed.refusals + result.refusals, key=lambda r: r.line):
            totals.refused += 1
            on_refusal(refusal)
        on_progress(consumed)
    if written & (written - 1):  # what the last batches wrote, for the server's plans too
        await refresh_statistics(store)
    return totals


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
