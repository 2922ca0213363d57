"""A batch of lines checked and drafted: all of it that needs no write.

It runs in the parsing process (`parsing_process`), or in the importing one for an import of
a single batch. Each line is checked, the lines that share keys are grouped, the records a new
profile would write are drafted and, given the committed state of an SQLite file, the stored
holders of the batch's keys are looked up.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec

from ...domain import profile as rules
from ...domain.errors import ProfilesError
from ...domain.profile import Profile
from ...domain.users import external_id_key
from ...store.batch import CommittedKeys
from ...store.sql import encode_identifiers
from ..clock import new_profile_id, now_ms
from .lines import Line, Refusal, parse_line, refusal_of
from .seen_keys import SeenKeys

_encode = msgspec.json.Encoder().encode


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


# How many keys the database may hold at the start of an import for `Lookahead` to read them
# all (a few tenths of a second) and then look up only the keys it may have met.
_PRELOADED_KEYS = 100_000


class Lookahead:
    """The lookups of a parsing process, batch after batch, in order: what committed records
    hold of each batch's keys, and which of its keys the `unwritten` batches parsed before it
    have too. Those batches may not be committed yet when this one is looked up
    (`parsing_process.parsed_batches`), so those keys are looked up again when this batch is
    written."""

    def __init__(self, committed: CommittedKeys, unwritten: int = 1) -> None:
        self.committed = committed
        # The keys of each of the last `unwritten` batches: identifiers, identities, external ids.
        self.recent: deque[tuple[set[Any], set[Any], set[Any]]] = deque(maxlen=unwritten)
        # Every key the database held when the import began and every key of the batches
        # since, when the former are few: a key it has never met is in no record, unless
        # another process wrote it meanwhile (see `importing.batch_unit`), and needs no lookup.
        self.seen: SeenKeys | None = None
        held = committed.every_key(_PRELOADED_KEYS)
        if held is not None:
            self.seen = SeenKeys()
            self.seen.add(held)

    def look_up(self, drafts: list[Draft]) -> tuple[Holders, Lookups]:
        # One pass over the batch's keys: each key is hashed once, for the filter and for the
        # batch's own set, and only the keys to look up are made into rows.
        seen = self.seen
        recent = [tuple(keys[kind] for keys in self.recent) for kind in range(3)]
        met = seen.met if seen is not None else None
        batch: tuple[set[Any], set[Any], set[Any]] = (set(), set(), set())
        rows: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        again: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        for d in drafts:
            external_keys = () if d.external_id is None else (external_id_key(d.external_id),)
            for kind, keys in enumerate((d.identifier_keys, d.identity_keys, external_keys)):
                for key in keys:
                    batch[kind].add(key)
                    if met is None or met(key):
                        row = (*key, d.index) if kind < 2 else (key, d.index)
                        rows[kind].append(row)
                        if any(key in earlier for earlier in recent[kind]):
                            again[kind].append(row)
        self.recent.append(batch)
        if seen is not None:
            for keys in batch:
                seen.add(keys)
        holders = Holders(
            self.committed.identifier_holders(rows[0]),
            self.committed.identity_holders(rows[1]),
            self.committed.external_id_holders(rows[2]),
        )
        return holders, Lookups(*again)


# Lookup rows: each key of a batch with the place of its line.


def identifier_rows(drafts: list[Draft]) -> list[tuple[Any, ...]]:
    return [(*key, d.index) for d in drafts for key in d.identifier_keys]


def identity_rows(drafts: list[Draft]) -> list[tuple[Any, ...]]:
    return [(*key, d.index) for d in drafts for key in d.identity_keys]


def external_id_rows(drafts: list[Draft]) -> list[tuple[Any, ...]]:
    return [(external_id_key(d.external_id), d.index) for d in drafts if d.external_id is not None]


def _drafted(index: int, line: Line, now: int, needs_service: bool) -> tuple[Draft, Profile | None]:
    """The line, and the profile it creates if its query finds none, checked as the service
    checks it (None when the checks refuse it)."""
    query = line.query
    refusal: Refusal | None = None
    identifiers = attributes = name = ""
    profile_id = line.profile_id or new_profile_id()
    profile: Profile | None = None
    try:
        profile = rules.new_profile(
            line.data, profile_id=profile_id, user_id=0,
            source=query.source, profile_type=query.profile_type, now=now,
        )
        encoded = _encode(profile.attributes)
        rules.check_attributes_size(len(encoded))
        identifiers, attributes, name = encode_identifiers(profile.identifiers), encoded.decode(), profile.name
    except ProfilesError as error:
        refusal, profile = refusal_of(line.number, error), None
    draft = Draft(
        index, line.number, needs_service, query.source, query.profile_type, profile_id,
        line.profile_id is not None, line.user_id, name, identifiers, attributes, now,
        line.external_ids[0] if line.external_ids else None,
        line.identifier_keys, line.identity_keys, refusal,
    )
    return draft, profile


def parse_batch(
    raw_lines: list[tuple[int, bytes]], lookahead: Lookahead | None = None
) -> Parsed:
    """Every check of `parse_line` for a batch, and the drafts: all that needs no database;
    and, given the committed state of the database, which of its identifiers it holds."""
    parsed = Parsed([], [])
    lines: list[tuple[int, Line]] = []
    for index, (number, raw) in enumerate(raw_lines):
        try:
            lines.append((index, parse_line(number, raw)))
        except ProfilesError as error:
            parsed.refusals.append(refusal_of(number, error))
    parsed.drafts = [draft for draft, _ in draft_lines(lines, now_ms())]
    if lookahead is not None:
        parsed.holders, parsed.again = lookahead.look_up(parsed.drafts)
    return parsed


def draft_lines(lines: list[tuple[int, Line]], now: int) -> list[tuple[Draft, Profile | None]]:
    """The drafts of checked lines, each with its place in its batch, and the profile each
    creates if its query finds none.

    Lines that share a key are put in one group: whatever a line does to a stored user, it
    does through keys, so a group can only change the stored users its own keys lead to."""
    drafts: list[tuple[Draft, Profile | None]] = []
    group = {index: index for index, _ in lines}  # by line: a line of the same group, or itself

    def root(index: int) -> int:
        while group[index] != index:
            group[index] = group[group[index]]
            index = group[index]
        return index

    holders: tuple[dict[Any, int], ...] = ({}, {}, {}, {}, {})
    for index, line in lines:
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
        drafts.append(_drafted(index, line, now, shared or len(line.external_ids) > 1))
    for draft, _ in drafts:
        draft.group = root(draft.index)
    return drafts
