"""Fresh ids on SQLite: read once a group of writes and counted on from there, never handed
out twice, whoever else inserts between or within groups."""

from __future__ import annotations

import asyncio
import sqlite3

from openprofiles.domain.errors import UserNotFound
from openprofiles.domain.limits import Limits
from openprofiles.service import profiles
from openprofiles.store.batch import BatchTransaction
from openprofiles.store.sql import SqlTransaction
from openprofiles.store.sqlite import SqliteStore

from .writes import ACCOUNT, body, query


def _user_ids(path: str) -> list[int]:
    with sqlite3.connect(path) as other_process:
        return [row[0] for row in other_process.execute("SELECT id FROM users ORDER BY id")]


def _create(store: SqliteStore, email: str, **kwargs: object) -> object:
    return profiles.put_by_query(store, ACCOUNT, Limits(), query(email), body(), **kwargs)  # type: ignore[arg-type]


def _statements(path: str, scenario: object) -> list[str]:
    """The statements the store's writing connection ran during `scenario(store)`."""
    ran: list[str] = []

    async def run() -> None:
        store = SqliteStore(path)
        store.connection.set_trace_callback(ran.append)
        try:
            await scenario(store)  # type: ignore[operator]
        finally:
            await store.close()

    asyncio.run(run())
    return ran


def test_a_group_reads_the_highest_id_once_and_counts_on(path: str) -> None:
    before = set(_user_ids(path))

    async def scenario(store: SqliteStore) -> None:
        await asyncio.gather(*(_create(store, f"g{i}@example.com") for i in range(10)))

    ran = _statements(path, scenario)
    new = sorted(set(_user_ids(path)) - before)
    assert len(new) == 10
    assert new == list(range(new[0], new[0] + 10))
    assert new[0] == max(before, default=0) + 1
    # One read of the highest user id and one of the highest identity id, for ten writes.
    maxima = [s for s in ran if "SELECT MAX(id) FROM" in s]
    assert len([s for s in maxima if "FROM users " in s]) == 1
    assert len([s for s in maxima if "FROM user_identities " in s]) == 1
    assert not [s for s in ran if "RETURNING" in s]


def test_ids_inserted_by_another_process_between_groups_are_not_handed_out_again(path: str) -> None:
    async def scenario(store: SqliteStore) -> None:
        await _create(store, "first@example.com")
        highest = max(_user_ids(path))
        with sqlite3.connect(path) as other_process:
            for offset in (1, 2):
                other_process.execute(
                    "INSERT INTO users (account_id, id, name, role, people_access, active,"
                    " suspended, created_at, updated_at)"
                    " VALUES (?, ?, 'other', 'end-user', 'full', 1, 0, 0, 0)",
                    (ACCOUNT, highest + offset),
                )
        await asyncio.gather(*(_create(store, f"after{i}@example.com") for i in range(3)))

    ran = _statements(path, scenario)
    ids = _user_ids(path)
    assert len(ids) == len(set(ids))
    with sqlite3.connect(path) as db:
        owners = [row[0] for row in db.execute(
            "SELECT user_id FROM profiles WHERE id IN (SELECT profile_id FROM profile_identifiers"
            " WHERE value LIKE 'after%')")]
    assert sorted(owners) == ids[-3:]
    # Read afresh for the second group: no write met a taken id and had to run again.
    assert not [s for s in ran if s.startswith("ROLLBACK")]


def test_a_refused_write_leaves_the_count_usable(path: str) -> None:
    async def scenario() -> list[object]:
        store = SqliteStore(path)
        try:
            writes = [_create(store, f"r{i}@example.com") for i in range(6)]
            writes.insert(3, _create(store, "nobody@example.com", user_id=999_999))
            return await asyncio.gather(*writes, return_exceptions=True)
        finally:
            await store.close()

    results = asyncio.run(scenario())
    assert sum(isinstance(r, UserNotFound) for r in results) == 1
    assert sum(isinstance(r, profiles.Written) for r in results) == 6
    ids = _user_ids(path)
    assert len(ids) == len(set(ids))


def test_ids_chosen_by_the_bulk_import_within_a_write_are_not_handed_out_again(path: str) -> None:
    """A write that creates a user, then inserts one under an id of its own choosing (as the
    import does for a line that names its user), then creates another."""

    async def unit(tx: SqlTransaction) -> tuple[int, int, int]:
        first = await profiles.put_in(tx, Limits(), query("one@example.com"), body())
        chosen = first.profile.user_id + 1
        await BatchTransaction(tx).insert_user_with_id(chosen, "chosen", 0)
        second = await profiles.put_in(tx, Limits(), query("two@example.com"), body())
        return first.profile.user_id, chosen, second.profile.user_id

    async def scenario() -> tuple[int, int, int]:
        store = SqliteStore(path)
        try:
            return await store.write(ACCOUNT, unit)
        finally:
            await store.close()

    first, chosen, second = asyncio.run(scenario())
    assert second == chosen + 1 and first == chosen - 1
    assert sorted(_user_ids(path))[-3:] == [first, chosen, second]
