"""Reads on SQLite share one snapshot while the file is quiet, and never miss a commit."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3

from openprofiles.domain.limits import Limits
from openprofiles.service import profiles
from openprofiles.store.sqlite import SqliteStore
from openprofiles.store.sqlite_snapshot import IDLE_SECONDS, QUIET_SECONDS

from .writes import ACCOUNT, body, query


async def _attributes(store: SqliteStore, email: str) -> dict[str, object]:
    found = await profiles.get_by_query(store, ACCOUNT, query(email))
    return json.loads(found.attributes_json)  # type: ignore[no-any-return]


async def _put(store: SqliteStore, email: str, plan: str) -> None:
    await profiles.put_by_query(store, ACCOUNT, Limits(), query(email), body(plan))


def test_reads_share_a_snapshot_once_the_file_is_quiet(path: str) -> None:
    """Quiet: no commit seen for a while, counted from the read that saw the last one."""
    async def scenario() -> list[bool]:
        store = SqliteStore(path)
        try:
            await _put(store, "a@example.com", "gold")
            await _attributes(store, "a@example.com")
            shared = [store.reader.in_transaction]  # a commit was just seen
            await asyncio.sleep(QUIET_SECONDS * 1.5)
            for _ in range(3):
                assert await _attributes(store, "a@example.com") == {"plan": "gold"}
                shared.append(store.reader.in_transaction)
            return shared
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [False, True, True, True]


def test_a_commit_of_another_process_ends_the_shared_snapshot_before_the_next_read(
    path: str,
) -> None:
    async def scenario() -> list[object]:
        reading, writing = SqliteStore(path), SqliteStore(path)  # two workers of one file
        try:
            await _put(writing, "b@example.com", "gold")
            seen: list[object] = [await _attributes(reading, "b@example.com")]
            await asyncio.sleep(QUIET_SECONDS * 1.5)
            seen.append(await _attributes(reading, "b@example.com"))
            seen.append(reading.reader.in_transaction)
            await _put(writing, "b@example.com", "silver")
            seen.append(await _attributes(reading, "b@example.com"))
            seen.append(reading.reader.in_transaction)
            return seen
        finally:
            await reading.close()
            await writing.close()

    assert asyncio.run(scenario()) == [
        {"plan": "gold"}, {"plan": "gold"}, True, {"plan": "silver"}, False,
    ]


def test_the_shared_snapshot_ends_once_reads_stop_and_the_log_can_start_over(path: str) -> None:
    async def scenario() -> tuple[bool, bool]:
        store = SqliteStore(path)
        try:
            await _put(store, "c@example.com", "gold")
            await _attributes(store, "c@example.com")
            await asyncio.sleep(QUIET_SECONDS * 1.5)
            await _attributes(store, "c@example.com")
            held = store.reader.in_transaction
            await asyncio.sleep(IDLE_SECONDS * 3)
            return held, store.reader.in_transaction
        finally:
            await store.close()

    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        assert asyncio.run(scenario()) == (True, False)
        # Nothing pins the log any more: another connection copies all of it into the file
        # and empties it, without waiting for a reader.
        assert other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        assert os.path.getsize(path + "-wal") == 0
    finally:
        other.close()


def test_while_the_file_is_written_each_read_has_a_transaction_of_its_own(path: str) -> None:
    async def scenario() -> list[bool]:
        store = SqliteStore(path)
        shared = []
        try:
            for i in range(30):
                await _put(store, f"d{i}@example.com", "gold")
                await _attributes(store, f"d{i}@example.com")
                await _attributes(store, f"d{i}@example.com")
                shared.append(store.reader.in_transaction)
                await asyncio.sleep(QUIET_SECONDS / 10)
            return shared
        finally:
            await store.close()

    assert not any(asyncio.run(scenario()))
