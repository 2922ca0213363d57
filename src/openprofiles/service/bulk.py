"""Bulk import and export of profiles as NDJSON, one `{"profile": {...}}` a line (docs/bulk.md).

Each line is a `PUT /api/v2/user_profiles?identifier=` whose query is the line's first
identifier, under the same rules. Lines are applied a batch per transaction. Within a batch,
lines that create a profile and share no key (identifier, identity, external id, user or
profile id) with any other line of the batch or with a stored record are written together,
a few statements for the whole batch; these are exactly the creates whose outcome the
service would decide without reading anything but "not found". Every other line goes
through the service itself, in order, in a savepoint of its own, so that a refused line
leaves nothing behind and never stops the import.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
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
from ..store.batch import BatchTransaction, NewRecords, prepare_for_import, profiles_in_id_order
from ..store.sql import encode_identifiers
from . import profiles
from .clock import new_profile_id, now_ms

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


@dataclass(slots=True)
class _Draft:
    line: Line
    profile: Profile
    attributes: bytes


def _draft(line: Line, now: int) -> _Draft:
    """The profile the line creates if its query finds none, checked as the service checks it."""
    profile = rules.new_profile(
        line.data, profile_id=line.profile_id or new_profile_id(), user_id=0,
        source=line.query.source, profile_type=line.query.profile_type, now=now,
    )
    attributes = _encode(profile.attributes)
    rules.check_attributes_size(len(attributes))
    return _Draft(line, profile, attributes)


async def _insert_new(
    batch: BatchTransaction, drafts: list[_Draft], now: int, *, named_above: int
) -> None:
    """Writes the fast lines' records; new users' ids are above every user id the batch names,
    so that none takes an id that a later line of the batch means for its own user."""
    account = batch.account_id
    explicit = [d.line.user_id for d in drafts if d.line.user_id is not None]
    user_ids = iter(await batch.reserve_ids(
        "users", len(drafts) - len(explicit), above=named_above
    ))
    records = NewRecords()
    identity_count = 0
    for draft in drafts:
        profile = draft.profile
        user_id = draft.line.user_id if draft.line.user_id is not None else next(user_ids)
        profile.user_id = user_id
        line = draft.line
        records.users.append((
            account, user_id, profile.name,
            line.external_ids[0] if line.external_ids else None,
            line.external_keys[0] if line.external_keys else None, now,
        ))
        for kind, value in line.identity_keys:
            records.identities.append((account, None, user_id, kind, value, now))
        identity_count += len(line.identity_keys)
        records.profiles.append((
            account, profile.id, user_id, profile.source, profile.type, profile.name,
            encode_identifiers(profile.identifiers), draft.attributes.decode(), now,
        ))
        records.identifiers.extend((account, *key, profile.id) for key in line.identifier_keys)
    identity_ids = iter(await batch.reserve_ids("user_identities", identity_count))
    records.identities = [(r[0], next(identity_ids), *r[2:]) for r in records.identities]
    await batch.insert(records)
    if explicit:
        await batch.keep_sequence_above("users", max(explicit))


async def _touching_stored(batch: BatchTransaction, lines: list[Line]) -> set[int]:
    """The numbers of the lines that share a key with a stored record."""
    identifiers = await batch.stored_identifiers([k for line in lines for k in line.identifier_keys])
    identities = await batch.stored_identities([k for line in lines for k in line.identity_keys])
    external = await batch.stored_external_ids([k for line in lines for k in line.external_keys])
    users = await batch.stored_users([line.user_id for line in lines if line.user_id is not None])
    profile_ids = await batch.stored_profiles([line.profile_id for line in lines if line.profile_id])
    return {
        line.number for line in lines
        if any(k in identifiers for k in line.identifier_keys)
        or any(k in identities for k in line.identity_keys)
        or any(k in external for k in line.external_keys)
        or line.user_id in users or line.profile_id in profile_ids
    }


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
        draft = _draft(line, now_ms())
        await batch.insert_user_with_id(line.user_id, draft.profile.name, draft.profile.created_at)
    return await profiles.put_in(
        tx, limits, query, line.data, user_id=line.user_id, profile_id=line.profile_id
    )


async def apply_batch(
    tx: Transaction, limits: Limits, lines: list[Line], drafted: dict[int, Profile | Refusal],
) -> BatchResult:
    """Applies checked lines in one unit of work; runs again from the start if the store retries.
    `drafted` holds, by line number, the profile each line creates if it is new, or the
    refusal drafting it met, made ahead by `parse_batch`."""
    assert hasattr(tx, "driver"), "bulk writes need an SQL transaction"
    batch = BatchTransaction(tx)  # type: ignore[arg-type]
    result = BatchResult()
    now = now_ms()
    kinds = await batch.known_kinds()
    seen_identifiers: set[tuple[str, str, str, str]] = set()
    seen_identities: set[tuple[str, str]] = set()
    seen_external: set[str] = set()
    seen_ids: set[object] = set()
    candidates: list[Line] = []
    slow: list[Line] = []
    for line in lines:
        shared = (
            any(k in seen_identifiers for k in line.identifier_keys)
            or any(k in seen_identities for k in line.identity_keys)
            or any(k in seen_external for k in line.external_keys)
            or (line.user_id is not None and line.user_id in seen_ids)
            or (line.profile_id is not None and line.profile_id in seen_ids)
        )
        seen_identifiers.update(line.identifier_keys)
        seen_identities.update(line.identity_keys)
        seen_external.update(line.external_keys)
        seen_ids.update(i for i in (line.user_id, line.profile_id) if i is not None)
        # A new (source, type) counts against the account's limits: the service decides it.
        # A second external id is not kept on a new user, so only the service can tell it is
        # free of other users.
        if shared or (line.query.source, line.query.profile_type) not in kinds \
                or len(line.external_ids) > 1:
            slow.append(line)
        else:
            candidates.append(line)
    touching = await _touching_stored(batch, candidates) if candidates else set()
    fast: list[_Draft] = []
    for line in candidates:
        if line.number in touching:
            slow.append(line)
            continue
        made = drafted[line.number]
        if isinstance(made, Refusal):
            result.refusals.append(made)
        else:
            fast.append(_Draft(line, made, _encode(made.attributes)))
    slow.sort(key=lambda line: line.number)
    # Fast lines share no key with any stored record or other line, so applying them before
    # the slow ones gives the outcome of applying every line in order.
    named = max((line.user_id for line in lines if line.user_id is not None), default=0)
    await _insert_new(batch, fast, now, named_above=named)
    result.created += len(fast)
    for line in slow:
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


@dataclass(slots=True)
class Parsed:
    """A batch of lines checked, and the profile each would create, made ahead of the
    database work; in a form that crosses from the parsing process cheaply (MessagePack)."""

    lines: list[Line]
    drafted: list[Profile | None]  # aligned with `lines`; None where drafting refused the line
    draft_refusals: list[Refusal]
    refusals: list[Refusal]

    def drafts(self) -> dict[int, Profile | Refusal]:
        made: dict[int, Profile | Refusal] = {r.line: r for r in self.draft_refusals}
        for line, profile in zip(self.lines, self.drafted):
            if profile is not None:
                made[line.number] = profile
        return made


def parse_batch(raw_lines: list[tuple[int, bytes]]) -> Parsed:
    """Every check of `parse_line`, and `_draft`, for a batch: all that needs no database."""
    parsed = Parsed([], [], [], [])
    now = now_ms()
    for number, raw in raw_lines:
        try:
            line = parse_line(number, raw)
        except ProfilesError as error:
            parsed.refusals.append(_refusal(number, error))
            continue
        parsed.lines.append(line)
        try:
            parsed.drafted.append(_draft(line, now).profile)
        except ProfilesError as error:
            parsed.drafted.append(None)
            parsed.draft_refusals.append(_refusal(number, error))
    return parsed


_to_msgpack = msgspec.msgpack.Encoder().encode
_from_msgpack = msgspec.msgpack.Decoder(Parsed).decode
_to_json = msgspec.json.Encoder().encode
_from_json = msgspec.json.Decoder(Parsed).decode


def _pack(parsed: Parsed) -> bytes:
    try:
        return b"m" + _to_msgpack(parsed)
    except OverflowError:  # an integer beyond 64 bits in some attribute: JSON holds any
        return b"j" + _to_json(parsed)


def _unpack(packed: bytes) -> Parsed:
    body = memoryview(packed)[1:]
    return _from_msgpack(body) if packed[:1] == b"m" else _from_json(body)


def _parse_packed(raw_lines: list[tuple[int, bytes]]) -> bytes:
    """`parse_batch` in the parsing process."""
    return _pack(parse_batch(raw_lines))


def _parser_started() -> None:
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


# Batches parsed ahead of the one being written: enough to keep the parser busy, few enough
# that memory stays flat.
_AHEAD = 2


async def parsed_batches(
    batches: Iterable[tuple[list[tuple[int, bytes]], int]],
) -> AsyncIterator[tuple[Parsed, int]]:
    """The batches checked and drafted, in order, with the bytes read so far.

    Checking and drafting take about half of an import's processor time and need no database,
    so from the second batch on they run in a process of their own, a batch or two ahead of
    the writes. A single batch is parsed here: starting a process would cost more."""
    pending = iter(batches)
    first = next(pending, None)
    if first is None:
        return
    second = next(pending, None)
    if second is None:
        yield parse_batch(first[0]), first[1]
        return
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")  # nothing of this process's state is copied
    with ProcessPoolExecutor(1, mp_context=context, initializer=_parser_started) as parser:
        ahead: deque[tuple[asyncio.Future[bytes], int]] = deque()

        def submit(batch: tuple[list[tuple[int, bytes]], int]) -> None:
            ahead.append((loop.run_in_executor(parser, _parse_packed, batch[0]), batch[1]))

        submit(first)
        submit(second)
        for batch in pending:
            while len(ahead) >= _AHEAD:
                packed, consumed = ahead.popleft()
                yield _unpack(await packed), consumed
            submit(batch)
        while ahead:
            packed, consumed = ahead.popleft()
            yield _unpack(await packed), consumed


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
        return await _import(store, account_id, limits, batches, totals, on_refusal, on_progress)
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


async def _import(
    store: Store, account_id: int, limits: Limits,
    batches: Iterable[tuple[list[tuple[int, bytes]], int]], totals: ImportTotals,
    on_refusal: Callable[[Refusal], None], on_progress: Callable[[int], None],
) -> ImportTotals:
    async for parsed, consumed in parsed_batches(batches):
        async def unit(tx: Transaction, lines: list[Line] = parsed.lines,
                       drafted: dict[int, Profile | Refusal] = parsed.drafts()) -> BatchResult:
            return await apply_batch(tx, limits, lines, drafted)

        result = await store.write(account_id, unit) if parsed.lines else BatchResult()
        totals.created += result.created
        totals.replaced += result.replaced
        for refusal in sorted(parsed.refusals + result.refusals, key=lambda r: r.line):
            totals.refused += 1
            on_refusal(refusal)
        on_progress(consumed)
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
