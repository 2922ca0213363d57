"""Group commit on SQLite: writes that share a transaction still succeed or fail alone, and
nobody reads or hears of a write before it is committed."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable

from openprofiles.domain.errors import InvalidProfile, ProfileNotFound, UserNotFound
from openprofiles.domain.limits import Limits
from openprofiles.service import profiles
from openprofiles.store.base import Transaction
from openprofiles.store.sqlite import SqliteStore

from .writes import ACCOUNT, body, in_one_group, query


def _committed_emails(path: str) -> set[str]:
    with sqlite3.connect(path) as other_process:
        rows = other_process.execute(
            "SELECT value FROM profile_identifiers WHERE type = 'email'").fetchall()
    return {row[0] for row in rows}


def _create(email: str, *, user_id: int | None = None
            ) -> Callable[[SqliteStore], Awaitable[profiles.Written]]:
    """A PUT by identifier creating a profile for `email`, for `user_id` if given."""
    return lambda store: profiles.put_by_query(
        store, ACCOUNT, Limits(), query(email), body(), user_id=user_id)


def _counted(runs: list[str], email: str, fail_after_writing: bool = False
             ) -> Callable[[SqliteStore], Awaitable[profiles.Written]]:
    """A create that notes each time it runs, and may fail once it has written its rows."""
    async def unit(tx: Transaction) -> profiles.Written:
        runs.append(email)
        written = await profiles.put_in(tx, Limits(), query(email), body())
        if fail_after_writing:
            raise InvalidProfile("refused after writing")
        return written

    return lambda store: store.write(ACCOUNT, unit)


def test_writes_of_one_turn_share_a_commit_and_fail_alone(path: str) -> None:
    writes = [_create(f"u{i}@example.com") for i in range(20)]
    # One write in the middle is refused inside its transaction: no such user.
    writes.insert(10, _create("bad@example.com", user_id=999_999))
    results = in_one_group(path, *writes)
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], UserNotFound)
    assert all(isinstance(r, profiles.Written) and r.created for r in results if r not in refused)
    emails = _committed_emails(path)
    assert emails == {f"u{i}@example.com" for i in range(20)}


def test_a_write_is_answered_only_once_another_connection_sees_it(path: str) -> None:
    seen_on_answer: list[bool] = []

    async def scenario() -> None:
        store = SqliteStore(path)
        try:
            async def write_then_look(i: int) -> None:
                email = f"seen{i}@example.com"
                await profiles.put_by_query(store, ACCOUNT, Limits(), query(email), body())
                seen_on_answer.append(email in _committed_emails(path))

            await asyncio.gather(*(write_then_look(i) for i in range(10)))
        finally:
            await store.close()

    asyncio.run(scenario())
    assert seen_on_answer == [True] * 10


def test_reads_do_not_see_a_batch_before_it_commits(path: str) -> None:
    pending = query("pending@example.com")

    async def scenario() -> tuple[bool, bool, bool]:
        store = SqliteStore(path)
        try:
            async def write_and_look(tx: Transaction) -> tuple[bool, bool]:
                await profiles.put_in(tx, Limits(), pending, body())
                # Inside the batch: the row is written but not committed.
                try:
                    await profiles.get_by_query(store, ACCOUNT, pending)
                    through_store = True
                except ProfileNotFound:
                    through_store = False
                return through_store, "pending@example.com" in _committed_emails(path)

            through_store, elsewhere = await store.write(ACCOUNT, write_and_look)
            after = (await profiles.get_by_query(store, ACCOUNT, pending)) is not None
            return through_store, elsewhere, after
        finally:
            await store.close()

    assert asyncio.run(scenario()) == (False, False, True)


def test_a_unit_that_waits_for_anything_else_is_refused_alone(path: str) -> None:
    async def waits(tx: Transaction) -> None:
        await profiles.put_in(tx, Limits(), query("waits@example.com"), body())
        await asyncio.sleep(0)

    before, waited, after = in_one_group(
        path,
        _create("before@example.com"),
        lambda store: store.write(ACCOUNT, waits),
        _create("after@example.com"),
    )
    assert isinstance(waited, RuntimeError)
    assert isinstance(before, profiles.Written) and isinstance(after, profiles.Written)
    assert _committed_emails(path) == {"before@example.com", "after@example.com"}


def test_a_batch_waits_for_another_process_holding_the_lock(path: str) -> None:
    async def scenario() -> float:
        store = SqliteStore(path)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, other.execute, "COMMIT")
        started = loop.time()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.ensure_future(ticker())
        try:
            await profiles.put_by_query(store, ACCOUNT, Limits(), query("late@example.com"), body())
            waited = loop.time() - started
        finally:
            beat.cancel()
            await store.close()
            other.close()
        # The loop kept turning while the write waited for the lock.
        assert ticks >= 10
        return waited

    assert asyncio.run(scenario()) >= 0.25
    assert "late@example.com" in _committed_emails(path)


def test_a_write_refused_before_writing_leaves_the_others_to_run_once(path: str) -> None:
    runs: list[str] = []
    first, refused, last = in_one_group(
        path,
        _counted(runs, "first@example.com"),
        _create("nobody@example.com", user_id=999_999),
        _counted(runs, "last@example.com"),
    )
    assert isinstance(refused, UserNotFound)
    assert isinstance(first, profiles.Written) and isinstance(last, profiles.Written)
    assert runs == ["first@example.com", "last@example.com"]
    assert _committed_emails(path) == {"first@example.com", "last@example.com"}


def test_a_write_failing_after_writing_is_undone_alone_and_the_batch_runs_again(path: str) -> None:
    runs: list[str] = []
    first, failing, last = in_one_group(
        path,
        _counted(runs, "first@example.com"),
        _counted(runs, "failing@example.com", fail_after_writing=True),
        _counted(runs, "last@example.com"),
    )
    assert isinstance(failing, InvalidProfile)
    assert isinstance(first, profiles.Written) and isinstance(last, profiles.Written)
    # The first pass stops at the failing write; the second runs every write in a savepoint.
    assert runs == ["first@example.com", "failing@example.com",
                    "first@example.com", "failing@example.com", "last@example.com"]
    assert _committed_emails(path) == {"first@example.com", "last@example.com"}
    with sqlite3.connect(path) as other_process:
        users = other_process.execute("SELECT COUNT(*) FROM users WHERE role = 'end-user'").fetchone()
        profiles_count = other_process.execute("SELECT COUNT(*) FROM profiles").fetchone()
    assert users[0] == 2 and profiles_count[0] == 2
