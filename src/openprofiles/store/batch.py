"""Statements for bulk import and export: many records per statement, inside one transaction.

The import writes new records with one `executemany` per table and relies on the store's
unique keys to tell it when a record it assumed new already exists: the statements then fail
as a whole, the caller rolls back to a savepoint and looks the keys up one by one.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..domain.profile import Profile
from .sql import _PROFILE_COLUMNS, SqlTransaction, profile_from_row

# Keys per lookup statement: well under both engines' limits on parameters.
_KEYS_PER_QUERY = 500


@functools.lru_cache(maxsize=64)
def _placeholders(width: int, count: int) -> str:
    """`($2, $3), ($4, $5)...`: `count` rows of `width` parameters after the account's."""
    if width == 1:
        return ", ".join(f"${2 + i}" for i in range(count))
    return ", ".join(
        "(" + ", ".join(f"${2 + i * width + j}" for j in range(width)) + ")" for i in range(count)
    )


# Page cache of an importing SQLite connection. Each batch inserts into indexes keyed by
# identifier values, all over each index; once the indexes outgrow the cache, nearly every
# insert reads a page back from the file. A fixed size keeps memory flat whatever the file's.
IMPORT_CACHE_MIB = 64


def prepare_for_import(store: object) -> None:
    """Settings of the store's own connection for the length of an import."""
    connection = getattr(store, "connection", None)
    if getattr(store, "engine", None) == "sqlite" and connection is not None:
        connection.execute(f"PRAGMA cache_size=-{IMPORT_CACHE_MIB * 1024}")


def conflict_errors() -> tuple[type[BaseException], ...]:
    """What a driver raises when an insert meets a unique key."""
    errors: list[type[BaseException]] = [sqlite3.IntegrityError]
    try:
        import asyncpg

        errors.append(asyncpg.UniqueViolationError)
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        pass
    return tuple(errors)


@dataclass
class NewRecords:
    """Rows of profiles, and of the users they create, that no existing record shares a key with."""

    profiles: list[tuple[Any, ...]] = field(default_factory=list)
    identifiers: list[tuple[Any, ...]] = field(default_factory=list)
    users: list[tuple[Any, ...]] = field(default_factory=list)
    identities: list[tuple[Any, ...]] = field(default_factory=list)


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
        # Ids are unique across accounts; the maximum is read per account so that each read
        # is one step down the (account_id, id) key rather than a scan of the table.
        row = await self.driver.fetchrow(
            f"SELECT COALESCE(MAX((SELECT MAX(id) FROM {table} WHERE account_id = a.id)), 0)"
            " FROM accounts a"
        )
        first = max(int(row[0]), above) + 1
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
        if records.users:
            await self.driver.executemany(
                "INSERT INTO users (account_id, id, name, email, role, people_access, external_id,"
                " external_id_key, active, suspended, password_hash, created_at, updated_at)"
                " VALUES ($1, $2, $3, NULL, 'end-user', 'full', $4, $5, TRUE, FALSE, NULL, $6, $6)",
                records.users,
            )
        if records.identities:
            await self.driver.executemany(
                "INSERT INTO user_identities (account_id, id, user_id, type, value, match_type,"
                " match_value, is_primary, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $4, $5, FALSE, $6, $6)",
                records.identities,
            )
        if records.profiles:
            await self.driver.executemany(
                f"INSERT INTO profiles (account_id, {_PROFILE_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                records.profiles,
            )
        if records.identifiers:
            await self.driver.executemany(
                "INSERT INTO profile_identifiers"
                " (account_id, source, profile_type, type, value, profile_id)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                records.identifiers,
            )

    # Lookups for a batch whose new records met a stored key: which of its keys are taken.

    async def _stored(self, sql: str, width: int, keys: Sequence[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        found: set[tuple[Any, ...]] = set()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _KEYS_PER_QUERY):
            chunk = unique[start:start + _KEYS_PER_QUERY]
            args = [value for key in chunk for value in key]
            rows = await self.driver.fetch(
                sql.format(values=_placeholders(width, len(chunk))), self.account_id, *args
            )
            found.update(tuple(row) for row in rows)
        return found

    async def stored_identifiers(
        self, keys: Sequence[tuple[str, str, str, str]]
    ) -> set[tuple[Any, ...]]:
        """Of (source, profile type, identifier type, value) keys, those a profile holds."""
        return await self._stored(
            # A join rather than a row-value IN, which SQLite answers by reading the account's
            # whole key range.
            "SELECT p.source, p.profile_type, p.type, p.value FROM (VALUES {values}) AS k"
            " JOIN profile_identifiers p ON p.account_id = $1 AND p.source = k.column1"
            " AND p.profile_type = k.column2 AND p.type = k.column3 AND p.value = k.column4",
            4, keys,
        )

    async def stored_identities(self, keys: Sequence[tuple[str, str]]) -> set[tuple[Any, ...]]:
        return await self._stored(
            "SELECT i.match_type, i.match_value FROM (VALUES {values}) AS k"
            " JOIN user_identities i ON i.account_id = $1 AND i.match_type = k.column1"
            " AND i.match_value = k.column2",
            2, keys,
        )

    async def stored_external_ids(self, keys: Sequence[str]) -> set[str]:
        found = await self._stored(
            "SELECT external_id_key FROM users WHERE account_id = $1"
            " AND external_id_key IN ({values})",
            1, [(key,) for key in keys],
        )
        return {row[0] for row in found}

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
