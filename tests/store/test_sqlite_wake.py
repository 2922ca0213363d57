"""Waiting for another process's write lock without asking SQLite over and over, and the log
synced after the lock is released: both halves of a commit seen from outside."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from openprofiles.domain.limits import Limits
from openprofiles.service import profiles
from openprofiles.store import sqlite as sqlite_store
from openprofiles.store.errors import StoreUnavailable
from openprofiles.store.sqlite import SqliteStore
from openprofiles.store.sqlite_wake import LockWake

from .writes import ACCOUNT, body, query


def _pending_bytes(wake: LockWake) -> int:
    count = 0
    try:
        while chunk := os.read(wake.fileno(), 4096):
            count += len(chunk)
    except BlockingIOError:
        pass
    return count


# The pipe


def test_the_pipe_beside_the_file_is_shared_by_every_process(path: str) -> None:
    first, second = LockWake.open(path), LockWake.open(path)
    assert first is not None and second is not None
    try:
        assert stat.S_ISFIFO(os.stat(path + "-wake").st_mode)
        assert stat.S_IMODE(os.stat(path + "-wake").st_mode) == 0o600
        first.released()
        first.released()
        assert _pending_bytes(second) == 2
        second.drain()  # nothing to read: returns at once
        assert _pending_bytes(first) == 0
    finally:
        first.close()
        second.close()


def test_a_full_pipe_drops_wake_ups_without_blocking(path: str) -> None:
    wake = LockWake.open(path)
    assert wake is not None
    try:
        for _ in range(200_000):  # far beyond a pipe's buffer
            wake.released()
        wake.drain()
        assert _pending_bytes(wake) == 0
    finally:
        wake.close()


def test_no_pipe_where_a_file_of_its_name_is_not_one(path: str) -> None:
    Path(path + "-wake").write_text("not a pipe")
    assert LockWake.open(path) is None
    assert Path(path + "-wake").read_text() == "not a pipe"


def test_without_a_pipe_a_store_still_waits_for_the_lock_by_asking_again(path: str) -> None:
    Path(path + "-wake").write_text("not a pipe")

    async def scenario() -> None:
        store = SqliteStore(path)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.05, other.execute, "COMMIT")
        try:
            await profiles.put_by_query(store, ACCOUNT, Limits(), query("poll@example.com"), body())
        finally:
            await store.close()
            other.close()

    asyncio.run(scenario())


# Waiting for the lock


class _Attempts:
    """Counts a store's attempts at the lock."""

    def __init__(self, store: SqliteStore) -> None:
        self.count = 0
        flush = store._flush

        def counted() -> None:
            self.count += 1
            flush()

        store._flush = counted  # type: ignore[method-assign]


def test_a_waiting_store_sleeps_until_the_holder_signals_its_release(path: str) -> None:
    async def scenario() -> tuple[int, float, float]:
        store = SqliteStore(path)
        attempts = _Attempts(store)
        holder = SqliteStore(path)  # another process's store: same file, same pipe
        other = holder.connection
        other.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        released_at = 0.0

        def release() -> None:
            nonlocal released_at
            other.execute("COMMIT")
            holder._released()
            released_at = loop.time()

        loop.call_later(0.2, release)

        async def busy() -> None:  # a loop with other work turns all the time
            while True:
                await asyncio.sleep(0)

        other_work = asyncio.ensure_future(busy())
        try:
            await profiles.put_by_query(store, ACCOUNT, Limits(), query("woken@example.com"), body())
            return attempts.count, released_at, loop.time()
        finally:
            other_work.cancel()
            await store.close()
            await holder.close()

    count, released_at, done = asyncio.run(scenario())
    assert released_at > 0
    # Asked on the fallback pause (every 2 ms) rather than at every turn of the busy loop
    # after 0.1 ms: at most about a hundred attempts in 0.2 s, where polling made thousands.
    assert count <= 110
    # Woken by the signal, not by a later pause.
    assert done - released_at < 0.1
    with sqlite3.connect(path) as check:
        assert check.execute(
            "SELECT COUNT(*) FROM profile_identifiers WHERE value = 'woken@example.com'"
        ).fetchone()[0] == 1


def test_a_holder_that_does_not_signal_is_noticed_after_a_pause(path: str) -> None:
    async def scenario() -> None:
        store = SqliteStore(path)
        other = sqlite3.connect(path, isolation_level=None)  # the sqlite3 shell, say
        other.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.05, other.execute, "COMMIT")
        try:
            await asyncio.wait_for(
                profiles.put_by_query(store, ACCOUNT, Limits(), query("quiet@example.com"), body()),
                timeout=2,
            )
        finally:
            await store.close()
            other.close()

    asyncio.run(scenario())


def test_two_stores_writing_at_once_wake_each_other(path: str) -> None:
    async def scenario() -> list[object]:
        first, second = SqliteStore(path), SqliteStore(path)
        try:
            writes = [
                profiles.put_by_query(store, ACCOUNT, Limits(), query(f"p{i}@example.com"), body())
                for i in range(200) for store in (first, second)
            ]
            return await asyncio.wait_for(asyncio.gather(*writes), timeout=60)
        finally:
            await first.close()
            await second.close()

    results = asyncio.run(scenario())
    assert sum(1 for r in results if isinstance(r, profiles.Written) and r.created) == 200


# The log synced after the commit


class _Syncs:
    """Records each sync a store asks of the system: which file, and what another connection
    saw committed at that moment."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: str, fail: bool = False) -> None:
        self.calls: list[tuple[str, int]] = []
        real = os.fdatasync

        def fdatasync(descriptor: int) -> None:
            with sqlite3.connect(path) as other:
                committed = other.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
            self.calls.append((os.readlink(f"/proc/self/fd/{descriptor}"), committed))
            if fail:
                raise OSError(5, "Input/output error")
            real(descriptor)

        monkeypatch.setattr(sqlite_store.os, "fdatasync", fdatasync)


def test_a_batch_is_answered_after_its_commit_and_a_sync_of_the_log(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = _Syncs(monkeypatch, path)
    answered: list[int] = []

    async def scenario() -> None:
        store = SqliteStore(path)
        assert store.connection.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL

        async def write(i: int) -> None:
            await profiles.put_by_query(store, ACCOUNT, Limits(), query(f"s{i}@example.com"), body())
            answered.append(len(syncs.calls))

        try:
            await asyncio.gather(*(write(i) for i in range(10)))
        finally:
            await store.close()

    asyncio.run(scenario())
    assert len(syncs.calls) == 1  # one batch, one sync
    log, committed = syncs.calls[0]
    assert log == os.path.realpath(path) + "-wal"
    assert committed == 10  # the commit came first, and the lock was free for others to read
    assert answered == [1] * 10  # nobody heard before the sync


def test_a_failed_sync_answers_every_write_of_its_batch_with_unavailable(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Syncs(monkeypatch, path, fail=True)

    async def scenario() -> list[object]:
        store = SqliteStore(path)
        try:
            return await asyncio.gather(*(
                profiles.put_by_query(store, ACCOUNT, Limits(), query(f"f{i}@example.com"), body())
                for i in range(3)
            ), return_exceptions=True)
        finally:
            await store.close()

    results = asyncio.run(scenario())
    assert len(results) == 3 and all(isinstance(r, StoreUnavailable) for r in results)


def test_deferred_syncs_are_made_up_for_at_once(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    syncs = _Syncs(monkeypatch, path)

    async def scenario() -> None:
        store = SqliteStore(path)
        try:
            store.defer_syncs()
            for i in range(5):  # five batches, one after another
                await profiles.put_by_query(store, ACCOUNT, Limits(), query(f"d{i}@example.com"), body())
            assert syncs.calls == []
            store.sync()
            assert [committed for _, committed in syncs.calls] == [5]
            await profiles.put_by_query(store, ACCOUNT, Limits(), query("after@example.com"), body())
            assert [committed for _, committed in syncs.calls] == [5, 6]
        finally:
            await store.close()

    asyncio.run(scenario())
