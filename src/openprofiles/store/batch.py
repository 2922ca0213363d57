"""Statements for bulk import and export: many records per statement, inside one transaction.

The import looks up which of a batch's keys are stored, a few hundred keys a statement, then
writes the batch's new records with one statement per table: run once a row on SQLite, where
a statement costs no round trip, and once for all of them on PostgreSQL.
"""

from __future__ import annotations

import functools
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..domain.profile import Profile
from .sql import _PROFILE_COLUMNS, SqlTransaction, profile_from_row
from .postgres import PostgresStore
from .sqlite import CHECKPOINT_FRAMES, SqliteStore

# Keys per lookup statement: well under both engines' limits on parameters.
_KEYS_PER_QUERY = 512


def _chunks(rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """`rows` a statement's worth at a time, the last one padded with its own last row to a
    power of two: a few statement texts serve every import, rather than one a batch for
    the caches of the driver and of `_qmark` to keep."""
    for start in range(0, len(rows), _KEYS_PER_QUERY):
        chunk = rows[start:start + _KEYS_PER_QUERY]
        size = 1 << (len(chunk) - 1).bit_length()
        yield [*chunk, *[chunk[-1]] * (size - len(chunk))] if size > len(chunk) else chunk


@functools.lru_cache(maxsize=64)
def _placeholders(width: int, count: int) -> str:
    """`($2, $3), ($4, $5)...`: `count` rows of `width` parameters after the account's."""
    if width == 1:
        return ", ".join(f"${2 + i}" for i in range(count))
    return ", ".join(
        "(" + ", ".join(f"${2 + i * width + j}" for j in range(width)) + ")" for i in range(count)
    )


@functools.lru_cache(maxsize=64)
def _indexed_placeholders(width: int, count: int) -> str:
    """As `_placeholders`, where the last of each row is an integer (a line's place in its
    batch), cast so that PostgreSQL knows its type."""
    def row(i: int) -> str:
        first = 2 + i * width
        keys = [f"${first + j}" for j in range(width - 1)]
        return "(" + ", ".join([*keys, f"CAST(${first + width - 1} AS INTEGER)"]) + ")"

    return ", ".join(row(i) for i in range(count))


# Page cache of an importing SQLite connection. Each batch inserts into indexes keyed by
# identifier values, all over each index; once the indexes outgrow the cache, nearly every
# insert reads a page back from the file. A fixed size keeps memory flat whatever the file's.
IMPORT_CACHE_MIB = 64


# Pages the write-ahead log may hold before the importing connection copies it into the
# database file. A batch changes a few thousand pages, mostly index pages scattered over the
# file that the next batches change again: copying them every few batches writes each page
# many times over. The parsing process copies the log shortly before (`LogCopier`), beside the
# writes; this copy then finds little left, and lets the log start over from its beginning.
IMPORT_CHECKPOINT_PAGES = 65536  # 256 MiB of log at 4 KiB a page


def prepare_for_import(store: object) -> None:
    """Settings of the store's own connection for the length of an import.

    On SQLite, a commit does not wait for the disk: a batch's commit would otherwise wait for
    a sync of the write-ahead log, as long as the batch's own work. A crash loses at most the
    last batches; `finish_import` makes every one durable at once."""
    if isinstance(store, SqliteStore):
        store.connection.execute(f"PRAGMA cache_size=-{IMPORT_CACHE_MIB * 1024}")
        store.connection.execute(f"PRAGMA wal_autocheckpoint={IMPORT_CHECKPOINT_PAGES}")
        store.defer_syncs()


def finish_import(store: object) -> None:
    """Puts every batch the import committed on disk, and the connection back as it was."""
    if not isinstance(store, SqliteStore):
        return
    store.connection.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_FRAMES}")
    # Readers would otherwise search the long log until the next write copies it over.
    store.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    # The commits wrote the log through the file cache: one sync of the log holds them all.
    # A checkpoint may have emptied the log into the database file meanwhile, which it syncs.
    store.sync()


# The tables an import writes to.
_IMPORTED_TABLES = ("users", "user_identities", "profiles", "profile_identifiers")


async def refresh_statistics(store: object) -> None:
    """On PostgreSQL, has the planner count the imported tables again.

    How it looks up a batch's keys rests on how many rows it believes each table holds. Still
    believing a table that grew from empty to be small, it reads all of it for every batch, and
    the import slows down as it goes; the autovacuum daemon samples the tables again only
    about once a minute. SQLite's planner keeps no such counts: it goes by its indexes."""
    if isinstance(store, PostgresStore):
        await store.analyze(_IMPORTED_TABLES)


@dataclass
class NewRecords:
    """Rows of profiles, and of the users they create, that no existing record shares a key with."""

    profiles: list[tuple[Any, ...]] = field(default_factory=list)
    identifiers: list[tuple[Any, ...]] = field(default_factory=list)
    users: list[tuple[Any, ...]] = field(default_factory=list)
    identities: list[tuple[Any, ...]] = field(default_factory=list)
    # (account, user, external id, its key, time) of stored users who gain their external id.
    external_ids: list[tuple[Any, ...]] = field(default_factory=list)


# A join rather than a row-value IN, which SQLite answers by reading the account's whole key
# range.
_IDENTIFIER_HOLDERS = (
    "SELECT k.column5, r.user_id FROM (VALUES {values}) AS k"
    " JOIN profile_identifiers p ON p.account_id = $1 AND p.source = k.column1"
    " AND p.profile_type = k.column2 AND p.type = k.column3 AND p.value = k.column4"
    " JOIN profiles r ON r.account_id = $1 AND r.id = p.profile_id"
)


# The profile's columns as `profile_from_row` reads them, after the line's place.
_PROFILES_HOLDING = (
    "SELECT k.column5, " + ", ".join(f"r.{column}" for column in _PROFILE_COLUMNS.split(", "))
    + " FROM (VALUES {values}) AS k"
    " JOIN profile_identifiers p ON p.account_id = $1 AND p.source = k.column1"
    " AND p.profile_type = k.column2 AND p.type = k.column3 AND p.value = k.column4"
    " JOIN profiles r ON r.account_id = $1 AND r.id = p.profile_id"
)


_IDENTITY_HOLDERS = (
    "SELECT k.column3, i.match_type, i.match_value, i.user_id FROM (VALUES {values}) AS k"
    " JOIN user_identities i ON i.account_id = $1 AND i.match_type = k.column1"
    " AND i.match_value = k.column2"
)
_EXTERNAL_ID_HOLDERS = (
    "SELECT k.column2, u.id FROM (VALUES {values}) AS k"
    " JOIN users u ON u.account_id = $1 AND u.external_id_key = k.column1"
)


# The keys of `CommittedKeys.every_key`, table by table.
_EVERY_KEY = [
    "SELECT source, profile_type, type, value FROM profile_identifiers WHERE account_id = ?"
    " LIMIT ?",
    "SELECT match_type, match_value FROM user_identities WHERE account_id = ? LIMIT ?",
    "SELECT external_id_key FROM users WHERE account_id = ? AND external_id_key IS NOT NULL"
    " LIMIT ?",
]


_USER_INSERT = (
    "INSERT INTO users (account_id, id, name, email, role, people_access, external_id,"
    " external_id_key, active, suspended, password_hash, created_at, updated_at)"
)
_IDENTITY_INSERT = (
    "INSERT INTO user_identities (account_id, id, user_id, type, value, match_type,"
    " match_value, is_primary, created_at, updated_at)"
)
_PROFILE_INSERT = f"INSERT INTO profiles (account_id, {_PROFILE_COLUMNS})"
_IDENTIFIER_INSERT = (
    "INSERT INTO profile_identifiers (account_id, source, profile_type, type, value, profile_id)"
)

# The statements of `BatchTransaction.insert`, table by table in the order of `NewRecords`'
# fields: on SQLite run once a row; on PostgreSQL once, with an array of each column's values.
_SQLITE_INSERTS = [
    _USER_INSERT + " VALUES ($1, $2, $3, NULL, 'end-user', 'full', $4, $5, TRUE, FALSE, NULL,"
    " $6, $6)",
    _IDENTITY_INSERT + " VALUES ($1, $2, $3, $4, $5, $4, $5, FALSE, $6, $6)",
    "UPDATE users SET external_id = $3, external_id_key = $4, updated_at = $5"
    " WHERE account_id = $1 AND id = $2",
    _PROFILE_INSERT + " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    _IDENTIFIER_INSERT + " VALUES ($1, $2, $3, $4, $5, $6)",
]
_POSTGRES_INSERTS = [
    _USER_INSERT + " SELECT $1, r.id, r.name, NULL, 'end-user', 'full', r.external_id,"
    " r.external_id_key, TRUE, FALSE, NULL, r.now, r.now"
    " FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[])"
    " AS r(id, name, external_id, external_id_key, now)",
    _IDENTITY_INSERT + " SELECT $1, r.id, r.user_id, r.type, r.value, r.type, r.value, FALSE,"
    " r.now, r.now FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::bigint[])"
    " AS r(id, user_id, type, value, now)",
    "UPDATE users u SET external_id = r.external_id, external_id_key = r.external_id_key,"
    " updated_at = r.now FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[])"
    " AS r(id, external_id, external_id_key, now) WHERE u.account_id = $1 AND u.id = r.id",
    _PROFILE_INSERT + " SELECT $1, r.id, r.user_id, r.source, r.type, r.name, r.identifiers,"
    " r.attributes, r.created_at, r.created_at FROM unnest($2::text[], $3::bigint[], $4::text[],"
    " $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[])"
    " AS r(id, user_id, source, type, name, identifiers, attributes, created_at)",
    _IDENTIFIER_INSERT + " SELECT $1, r.source, r.profile_type, r.type, r.value, r.profile_id"
    " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])"
    " AS r(source, profile_type, type, value, profile_id)",
]


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows of (account, values...) as one list of each value column's values."""
    return [list(column) for column in zip(*rows)][1:]


class LogCopier:
    """Copies the write-ahead log of an SQLite file into the file, in a thread, from a process
    that does not write to it, shortly before the writing connection would copy it itself.

    The parsing process of an import has processor time to spare while the writing one sets
    the pace. Once the log holds nearly `IMPORT_CHECKPOINT_PAGES`, it copies what has been
    committed by then, with the disk syncs around it, without waiting for the writes; the
    writing connection's own copy then finds only the pages of the last few batches, and lets
    the log start over (bench/RESULTS.md, "The import's log copied by its parsing process").
    Copying more often would copy the same index pages over and over."""

    def __init__(self, path: str, frames: int) -> None:
        self.path = path
        self.frames = frames  # pages in the log since the copier's last copy before it copies
        self.copies = 0
        self._copied_in = -1  # the log's salt when the copier last copied: which log it was
        self._copied_at = 0  # and the pages that log held then
        self._thread: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None

    def batch_parsed(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        salt, now = log_state(self.path)
        since = now - self._copied_at if salt == self._copied_in else now
        if since < self.frames:
            return
        self._copied_in, self._copied_at = salt, now
        # Not a daemon: the process waits for a copy under way before it exits.
        self._thread = threading.Thread(target=self._copy_quietly, name="log-copier")
        self._thread.start()

    def copy(self) -> tuple[int, int, int]:
        """One passive copy: (1 if it could not run, pages in the log, pages copied so far)."""
        if self._connection is None:
            self._connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            # The log synced before the copy and the file after it, as the writing
            # connection's own copies do during an import: a crash loses no copied page.
            self._connection.execute("PRAGMA synchronous=NORMAL")
        busy, log, copied = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.copies += 1
        return busy, log, copied

    def _copy_quietly(self) -> None:
        try:
            self.copy()
        except sqlite3.Error:
            pass  # the writing connection's own copies still come

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()


def log_state(path: str) -> tuple[int, int]:
    """Of an SQLite file's write-ahead log: a value that changes each time the log starts over
    (its first salt), and the pages it holds since; (0, 0) if there is none. Read from the
    header of the log's index (https://www.sqlite.org/walformat.html), as no statement tells
    them without copying the log; only a hint of when to copy."""
    try:
        with open(path + "-shm", "rb") as index:
            header = index.read(36)
    except OSError:
        return 0, 0
    if len(header) < 36:
        return 0, 0
    return (int.from_bytes(header[32:36], sys.byteorder),
            int.from_bytes(header[16:20], sys.byteorder))


class CommittedKeys:
    """The lookups of `BatchTransaction` on a reading connection of an SQLite file of its own,
    for another process than the importing one: they see what is committed."""

    def __init__(self, path: str, account_id: int) -> None:
        self.account_id = account_id
        self.connection = sqlite3.connect(
            f"file:{quote(path)}?mode=ro", uri=True, isolation_level=None
        )
        self.connection.execute(f"PRAGMA cache_size=-{IMPORT_CACHE_MIB * 1024}")

    def _lookup(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        found: list[Any] = []
        for chunk in _chunks(rows):
            text = sql.format(values=_indexed_placeholders(len(chunk[0]), len(chunk)))
            args = [self.account_id, *(value for row in chunk for value in row)]
            found.extend(tuple(row) for row in self.connection.execute(text.replace("$", "?"), args))
        return found

    def every_key(self, at_most: int) -> list[tuple[str, ...] | str] | None:
        """Every key the account's records hold, in the forms the lookups take: identifiers
        (source, type, identifier type, value), identities (type, value) and external ids;
        None if there are more than `at_most`."""
        keys: list[tuple[str, ...] | str] = []
        for sql in _EVERY_KEY:
            left = at_most - len(keys)
            rows = self.connection.execute(sql, (self.account_id, left + 1)).fetchall()
            if len(rows) > left:
                return None
            keys.extend(tuple(row) if len(row) > 1 else row[0] for row in rows)
        return keys

    def identifier_holders(self, rows: Sequence[tuple[str, str, str, str, int]]) -> list[tuple[int, int]]:
        return self._lookup(_IDENTIFIER_HOLDERS, rows)

    def identity_holders(self, rows: Sequence[tuple[str, str, int]]) -> list[tuple[int, str, str, int]]:
        return self._lookup(_IDENTITY_HOLDERS, rows)

    def external_id_holders(self, rows: Sequence[tuple[str, int]]) -> list[tuple[int, int]]:
        return self._lookup(_EXTERNAL_ID_HOLDERS, rows)


class BatchTransaction:
    """Bulk statements on the connection of one unit of work."""

    def __init__(self, tx: SqlTransaction) -> None:
        self.tx = tx
        self.driver = tx.driver
        self.account_id = tx.account_id
        self.engine = tx.driver.engine

    async def savepoint(self, name: str) -> None:
        await self.driver.execute(f"SAVEPOINT {name}")

    async def release(self, name: str) -> None:
        await self.driver.execute(f"RELEASE SAVEPOINT {name}")

    async def rollback_to(self, name: str) -> None:
        await self.driver.execute(f"ROLLBACK TO SAVEPOINT {name}")
        await self.release(name)

    async def known_kinds(self) -> set[tuple[str, str]]:
        rows = await self.driver.fetch(
            "SELECT source, type FROM profile_kinds WHERE account_id = $1", self.account_id
        )
        return {(row[0], row[1]) for row in rows}

    async def stored_kinds(self, kinds: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (source, type) pairs the account has used."""
        found = await self._stored(
            "SELECT k.column1, k.column2 FROM (VALUES {values}) AS k JOIN profile_kinds p"
            " ON p.account_id = $1 AND p.source = k.column1 AND p.type = k.column2",
            2, sorted(kinds),
        )
        return {(row[0], row[1]) for row in found}

    async def reserve_ids(self, table: str, count: int, *, above: int = 0) -> list[int]:
        """`count` fresh ids of `users` or `user_identities`, all greater than `above`."""
        if count == 0:
            return []
        if self.engine == "postgresql":
            if above:
                await self.keep_sequence_above(table, above)
            rows = await self.driver.fetch(
                f"SELECT nextval('{table}_id_seq') FROM generate_series(1, $1)", count
            )
            return [int(row[0]) for row in rows]
        # The first id the driver would give a single insert (the highest plus one).
        row = await self.driver.fetchrow(f"SELECT {self.driver.new_id(table)}")
        first = max(int(row[0]), above + 1)
        self.driver.forget_ids()  # the caller inserts under these ids
        return list(range(first, first + count))

    async def keep_sequence_above(self, table: str, value: int) -> None:
        """After rows with ids chosen by the caller, the sequence must not hand them out again."""
        if self.engine == "postgresql":
            await self.driver.fetchrow(
                f"SELECT setval('{table}_id_seq', GREATEST($1, (SELECT last_value FROM {table}_id_seq)))",
                value,
            )

    async def insert(self, records: NewRecords) -> None:
        # Users first: the order of a create through the service, so the same keys decide.
        postgresql = self.engine == "postgresql"
        for sql, rows in zip(
            _POSTGRES_INSERTS if postgresql else _SQLITE_INSERTS,
            (records.users, records.identities, records.external_ids, records.profiles,
             records.identifiers),
        ):
            if not rows:
                continue
            if postgresql:
                # One statement for all the rows: row by row, PostgreSQL would run the
                # statement once each, a round of its protocol and of its executor.
                await self.driver.execute(sql, self.account_id, *_columns(rows))
            else:
                await self.driver.executemany(sql, rows)

    # Which keys of a batch's lines stored records hold. Each key travels with the place of its
    # line in the batch (the last of its values), and comes back with it.

    async def _lookup(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        if not rows:
            return []
        width = len(rows[0])
        found: list[Any] = []
        for chunk in _chunks(rows):
            args = [value for row in chunk for value in row]
            found.extend(await self.driver.fetch(
                sql.format(values=_indexed_placeholders(width, len(chunk))), self.account_id, *args
            ))
        return found

    async def identifier_holders(
        self, rows: Sequence[tuple[str, str, str, str, int]]
    ) -> list[tuple[int, int]]:
        """Of (source, profile type, identifier type, value, line) rows, (line, user) for each
        identifier a profile holds, with the profile's user."""
        found = await self._lookup(_IDENTIFIER_HOLDERS, rows)
        return [(row[0], row[1]) for row in found]

    async def profiles_holding(
        self, rows: Sequence[tuple[str, str, str, str, int]]
    ) -> dict[int, Profile]:
        """Of (source, profile type, identifier type, value, line) rows, the profile that holds
        each line's identifier, for the lines whose identifier a profile holds."""
        found = await self._lookup(_PROFILES_HOLDING, rows)
        return {row[0]: profile_from_row(row[1:]) for row in found}

    async def identity_holders(
        self, rows: Sequence[tuple[str, str, int]]
    ) -> list[tuple[int, str, str, int]]:
        """Of (identity type, value, line) rows, (line, type, value, user) for each identity
        a user holds."""
        found = await self._lookup(_IDENTITY_HOLDERS, rows)
        return [(row[0], row[1], row[2], row[3]) for row in found]

    async def external_id_holders(self, rows: Sequence[tuple[str, int]]) -> list[tuple[int, int]]:
        """Of (external id key, line) rows, (line, user) for each key a user holds."""
        found = await self._lookup(_EXTERNAL_ID_HOLDERS, rows)
        return [(row[0], row[1]) for row in found]

    async def users_to_link(self, ids: Sequence[int]) -> dict[int, tuple[str | None, int]]:
        """The external id and the number of profiles of each user."""
        found = await self._stored(
            "SELECT u.id, u.external_id,"
            " (SELECT COUNT(*) FROM profiles p WHERE p.account_id = $1 AND p.user_id = u.id)"
            " FROM users u WHERE u.account_id = $1 AND u.id IN ({values})",
            1, [(i,) for i in ids],
        )
        return {row[0]: (row[1], int(row[2])) for row in found}

    async def _stored(self, sql: str, width: int, keys: Sequence[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        found: set[tuple[Any, ...]] = set()
        unique = list(dict.fromkeys(keys))
        for chunk in _chunks(unique):
            args = [value for key in chunk for value in key]
            rows = await self.driver.fetch(
                sql.format(values=_placeholders(width, len(chunk))), self.account_id, *args
            )
            found.update(tuple(row) for row in rows)
        return found

    async def stored_users(self, ids: Sequence[int]) -> set[int]:
        found = await self._stored(
            "SELECT id FROM users WHERE account_id = $1 AND id IN ({values})",
            1, [(i,) for i in ids],
        )
        return {row[0] for row in found}

    async def stored_profiles(self, ids: Sequence[str]) -> set[str]:
        found = await self._stored(
            "SELECT id FROM profiles WHERE account_id = $1 AND id IN ({values})",
            1, [(i,) for i in ids],
        )
        return {row[0] for row in found}

    async def user_exists(self, user_id: int) -> bool:
        return bool(await self.stored_users([user_id]))

    async def profile_exists(self, profile_id: str) -> bool:
        return bool(await self.stored_profiles([profile_id]))

    async def insert_user_with_id(self, user_id: int, name: str, now: int) -> None:
        await self.driver.execute(
            "INSERT INTO users (account_id, id, name, email, role, people_access, external_id,"
            " external_id_key, active, suspended, password_hash, created_at, updated_at)"
            " VALUES ($1, $2, $3, NULL, 'end-user', 'full', NULL, NULL, TRUE, FALSE, NULL, $4, $4)",
            self.account_id, user_id, name, now,
        )
        self.driver.forget_ids()
        await self.keep_sequence_above("users", user_id)


async def profiles_in_id_order(
    tx: SqlTransaction, *, page: int = 2000
) -> AsyncIterator[Sequence[Profile]]:
    """Every profile of the account, a page at a time, each page read after the last id seen, so
    that memory stays flat and every page is one range read of the primary key."""
    after = ""
    while True:
        rows = await tx.driver.fetch(
            f"SELECT {_PROFILE_COLUMNS} FROM profiles WHERE account_id = $1 AND id > $2"
            " ORDER BY id LIMIT $3",
            tx.account_id, after, page,
        )
        if not rows:
            return
        yield [profile_from_row(row) for row in rows]
        after = rows[-1][0]
