"""The SQLite backend: one file, WAL, foreign keys on, a writing and a reading connection per process.

Each unit of work runs on the event loop without yielding: the driver's calls are
synchronous, so no two units of one process interleave, and `BEGIN IMMEDIATE` takes the
file's write lock up front so that units of other processes wait rather than fail midway.
Writes commit in groups (see `SqliteStore.write`): one commit and one disk sync serve every
write that arrived in the same turn of the event loop, and the lock is held only while their
statements run and commit.
Lookups by key take microseconds, so blocking the loop for them costs less than a thread hop.
Reads that follow each other while nothing commits share one snapshot (`sqlite_snapshot`).

A write is on disk before its 2xx leaves, so a crash or a power loss keeps it. In WAL mode the
worker syncs the log itself, once the commit has released the lock (`_make_durable`); in any
other mode SQLite syncs within the commit (`synchronous=FULL`). A file that stays locked past
the busy timeout, or cannot be read or written, is `StoreUnavailable` (the API answers 503).
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from .base import Together
from .errors import RetryableConflict, StoreUnavailable
from .sql import SqlTransaction
from .sqlite_snapshot import SharedSnapshot
from .sqlite_wake import LockWake

T = TypeVar("T")

_PARAM = re.compile(r"\$(\d+)")
_MAX_ATTEMPTS = 5
# How long to wait before asking again for the file's lock while another process holds it,
# where the file has no wake-up pipe (`sqlite_wake`): another worker holds it for a batch's
# statements and commit, a millisecond or two, and waiting longer than this left it unused
# between batches. With the pipe, a waiter sleeps until a release, and asks again after
# `_WAKE_FALLBACK` only in case the holder is a process that does not signal.
_PAUSE = 0.0001
_WAKE_FALLBACK = 0.002
# Frames (pages) the write-ahead log may hold before a commit copies it into the database file:
# 32 MiB, eight times SQLite's default. The copy runs within the committing worker's `COMMIT`,
# after the lock is released but before the others can hear so, and ends with a sync of the
# database file; it also writes a page that several commits changed only once. Measured on a
# million profiles (bench/RESULTS.md): 4,000 frames instead of 1,000 made PUT create 7-11%
# faster, PUT replace and PATCH 10-15%; 8,000 instead of 4,000, on a machine whose disk syncs
# slowly, PUT create 4-7% and PATCH 11%. The price is the pause of the writes that wait for a
# copy: the p99 of PUT replace and PATCH rose from about 18 to 33 ms at 4,000 on a fast disk,
# and that of PUT create from 57-73 to 78-85 ms at 8,000 on the slow one.
CHECKPOINT_FRAMES = 8000
BUSY_TIMEOUT_MS = 10000


def _qmark(sql: str, cache: dict[str, str] = {}) -> str:  # noqa: B006 - a deliberate memo
    converted = cache.get(sql)
    if converted is None:
        converted = cache[sql] = _PARAM.sub(r"?\1", sql)
    return converted


# Pages each connection of a worker keeps, in MiB; the operating system's file cache holds the
# rest of a large database, shared by every worker instead of copied. Every commit of another
# process empties the writing connection's cache, so a larger one would rarely fill. The
# reading connection's is kept until something commits: on a million profiles, 40 MiB instead
# of 16 holds most of the inner pages of the tables a lookup walks, and GET by identifier ran
# 8.8% faster over HTTP (bench/RESULTS.md, 2026-11-30 18:45), at 25 MB more a worker.
WRITE_CACHE_MIB = 16
READ_CACHE_MIB = 40


def connect(
    path: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS, *, cache_mib: int = WRITE_CACHE_MIB
) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    connection.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")
    # A batch runs in a savepoint, and SQLite copies each page a savepoint changes into a
    # sub-journal first: in memory, not in a temporary file.
    connection.execute("PRAGMA temp_store=MEMORY")
    return connection


class SqliteDriver:
    engine = "sqlite"

    def __init__(self, connection: sqlite3.Connection, *, keeps_rows: bool = False) -> None:
        self.connection = connection
        # Only a connection that never writes may keep rows, and only while nothing commits
        # to the file: its store drops them when a commit is seen (`SharedSnapshot`).
        self._keeps_rows = keeps_rows
        self._kept: dict[tuple[str, tuple[Any, ...]], Any] = {}
        # The next fresh id of each table, within the current write transaction (`take_id`).
        self._next_ids: dict[str, int] = {}

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return self.connection.execute(_qmark(sql), args).fetchone()

    async def fetchrow_kept(self, sql: str, *args: Any) -> Any:
        if not self._keeps_rows:
            return await self.fetchrow(sql, *args)
        key = (sql, args)
        if key in self._kept:
            return self._kept[key]
        row = self.connection.execute(_qmark(sql), args).fetchone()
        if len(self._kept) < 1024:
            self._kept[key] = row
        return row

    def forget_kept(self) -> None:
        self._kept.clear()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return self.connection.execute(_qmark(sql), args).fetchall()

    async def execute(self, sql: str, *args: Any) -> int:
        return self.connection.execute(_qmark(sql), args).rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.connection.executemany(_qmark(sql), rows)

    def new_id(self, table: str) -> str:
        # Safe without a sequence: the write lock is held for the whole transaction. Ids are
        # unique across accounts; the maximum is taken per account, one step down each
        # (account_id, id) key, as a plain MAX(id) reads the whole key.
        return (
            f"(SELECT COALESCE(MAX((SELECT MAX(id) FROM {table} WHERE account_id = a.id)), 0) + 1"
            " FROM accounts a)"
        )

    def take_id(self, table: str) -> int | None:
        # Within a write transaction no other connection inserts, so after the first fresh id
        # of a table the next is one more: the maximum is read once a transaction, not once a
        # row, and the row needs no RETURNING. An id handed out by a write rolled back to its
        # savepoint is not handed out again, as a sequence would not.
        if not self.connection.in_transaction:
            return None
        taken = self._next_ids.get(table)
        if taken is None:
            taken = int(self.connection.execute(f"SELECT {self.new_id(table)}").fetchone()[0])
        self._next_ids[table] = taken + 1
        return taken

    def forget_ids(self) -> None:
        self._next_ids.clear()


def _run_to_end(step: Awaitable[T]) -> T:
    """Runs a unit's coroutine to its end in one go. The driver's calls never suspend, so
    neither does a unit; one that waits for anything else is a mistake that would hold the
    file's lock across turns of the loop, and is refused."""
    coroutine = step.__await__()
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a unit of work on SQLite waited for something other than the database")


class _Pending:
    """A write waiting for the next batch: its unit, how it may run with others of its kind,
    and where its caller hears the outcome."""

    __slots__ = ("account_id", "unit", "together", "outcome")

    def __init__(self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[Any]],
                 together: Together[Any, Any] | None, outcome: asyncio.Future[Any]) -> None:
        self.account_id = account_id
        self.unit = unit
        self.together = together
        self.outcome = outcome


class SqliteStore:
    engine = "sqlite"

    def __init__(self, path: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = path
        # Writes and reads on separate connections, so that a read never sees the rows of a
        # batch that has not committed yet.
        # The writer never waits inside SQLite for the file's lock: it asks again from the event
        # loop (`_flush`), which meanwhile goes on serving reads.
        self.connection = connect(path, busy_timeout_ms)
        self.busy_timeout = busy_timeout_ms / 1000
        # In WAL mode a commit appends to the log and releases the lock; with
        # `synchronous=NORMAL` it does so without waiting for the disk, and the worker syncs the
        # log right after (`_make_durable`), before answering. The sync, a fifth of a
        # millisecond or more, then no longer keeps every other process waiting for the lock.
        # What it makes durable is the same: every frame appended to the log before it,
        # this batch's included. Frames copied into the database file by a checkpoint were
        # synced by it first, whatever the mode, and the log restarts only after a checkpoint.
        # Asked while the connection still waits for the file's locks: a process that opens
        # the file first after a crash rebuilds the log's index, and holds it meanwhile.
        journal = self.connection.execute("PRAGMA journal_mode").fetchone()[0]
        self._syncs_log = journal == "wal"
        if self._syncs_log:
            self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("PRAGMA busy_timeout=0")
        self.connection.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_FRAMES}")
        self._log: int | None = None
        self._sync_each_commit = True
        self._wake = LockWake.open(path)
        self._wake_timer: asyncio.TimerHandle | None = None
        self.driver = SqliteDriver(self.connection)
        self.reader = connect(path, busy_timeout_ms, cache_mib=READ_CACHE_MIB)
        self.read_driver = SqliteDriver(self.reader, keeps_rows=True)
        self._snapshot = SharedSnapshot(self.reader, path, self.read_driver.forget_kept)
        self._pending: list[_Pending] = []
        # Set from the moment a batch is due until its commit is done: the writing connection
        # serves one batch at a time.
        self._flushing: asyncio.Future[None] | None = None
        self._waiting_since = 0.0

    async def read(
        self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]], *,
        single_statement: bool = False,
    ) -> T:
        if self._snapshot.enter() or single_statement:
            return await unit(SqlTransaction(self.read_driver, account_id))
        self.reader.execute("BEGIN")
        try:
            return await unit(SqlTransaction(self.read_driver, account_id))
        finally:
            self.reader.execute("COMMIT")

    async def read_stale(
        self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]], *,
        single_statement: bool = False,
    ) -> T:
        return await self.read(account_id, unit, single_statement=single_statement)

    async def write(
        self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]], *,
        together: Together[Any, T] | None = None,
    ) -> T:
        """Group commit: the writes that arrive in one turn of the event loop run together at
        its end, in one transaction, and share one commit (one disk sync). A write's caller
        hears of its outcome only after that commit, so a 2xx still means the write is on
        disk; a refused write is undone alone (`_run_batch`). Writes of a batch that may run
        in one go (`together`) do so first.

        The file's write lock is taken only once every write of the batch is ready, and held
        only while their statements run and commit: requests being parsed or answered never
        keep the other processes waiting."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Pending(account_id, unit, together, outcome))
        if self._flushing is None:
            self._flushing = loop.create_future()
            self._waiting_since = loop.time()
            loop.call_soon(self._flush)
        # Not shielded: a caller that goes away before its batch runs takes its write along.
        return await outcome

    def _flush(self) -> None:
        """Takes the lock without blocking the loop (another process may hold it: ask again
        shortly), runs every pending write, and commits."""
        loop = asyncio.get_running_loop()
        try:
            self.connection.execute("BEGIN IMMEDIATE")
            # Other processes may have inserted since this connection last held the lock.
            self.driver.forget_ids()
        except sqlite3.OperationalError as error:
            if "lock" in str(error) and loop.time() - self._waiting_since < self.busy_timeout:
                self._wait_for_lock(loop)
                return
            batch = self._take_pending()
            self._answer(batch, [(False, StoreUnavailable(str(error))) for _ in batch])
            return
        batch = [write for write in self._take_pending() if not write.outcome.cancelled()]
        try:
            outcomes = self._run_batch(batch)
        except sqlite3.Error as error:  # the savepoints themselves failed: nothing is kept
            self._rollback()
            self._released()
            self._answer(batch, [(False, StoreUnavailable(str(error))) for _ in batch])
            return
        # The commit, and the disk sync after it, run right here rather than in a worker
        # thread: a thread must first win the interpreter's lock from a busy loop, which can
        # take milliseconds, and measured slower.
        try:
            self.connection.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback()
            self._released()
            self._committed(batch, outcomes, error)
            return
        self._released()
        self._committed(batch, outcomes, self._make_durable())

    def _wait_for_lock(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._wake is None:
            loop.call_later(_PAUSE, self._flush)
            return
        loop.add_reader(self._wake.fileno(), self._lock_released)
        self._wake_timer = loop.call_later(_WAKE_FALLBACK, self._lock_released)

    def _lock_released(self) -> None:
        """Another process released the lock, or the fallback pause is over: ask again."""
        assert self._wake is not None
        asyncio.get_running_loop().remove_reader(self._wake.fileno())
        if self._wake_timer is not None:
            self._wake_timer.cancel()
            self._wake_timer = None
        self._wake.drain()
        self._flush()

    def _released(self) -> None:
        if self._wake is not None:
            self._wake.released()

    def _make_durable(self) -> OSError | None:
        """Syncs the log after a commit (see `__init__`); the error, if the disk failed."""
        if not self._syncs_log or not self._sync_each_commit:
            return None
        try:
            if self._log is None:
                # The log exists from the first commit on, and stays while this connection
                # is open: SQLite removes it only when the last connection to the file closes.
                self._log = os.open(self.path + "-wal", os.O_RDONLY | os.O_CLOEXEC)
            os.fdatasync(self._log)
        except OSError as error:
            return error
        return None

    def defer_syncs(self) -> None:
        """From now until `sync`, a commit does not wait for the disk: for a bulk import, whose
        batches are made durable all at once at its end."""
        self._sync_each_commit = False
        if not self._syncs_log:
            self.connection.execute("PRAGMA synchronous=NORMAL")

    def sync(self) -> None:
        """Puts every commit so far on disk, and each commit from now on again before it is
        answered."""
        self._sync_each_commit = True
        if not self._syncs_log:
            self.connection.execute("PRAGMA synchronous=FULL")
            return
        error = self._make_durable()
        if error is not None:
            raise StoreUnavailable(str(error))

    def _take_pending(self) -> list[_Pending]:
        batch, self._pending = self._pending, []
        return batch

    def _committed(self, batch: list[_Pending], outcomes: list[tuple[bool, Any]],
                   error: BaseException | None) -> None:
        if error is not None:  # the batch is not known to be kept: every write fails alike
            outcomes = [(False, StoreUnavailable(str(error))) for _ in batch]
        self._answer(batch, outcomes)

    def _answer(self, batch: list[_Pending], outcomes: list[tuple[bool, Any]]) -> None:
        for write, (ok, value) in zip(batch, outcomes):
            if write.outcome.cancelled():
                continue
            if ok:
                write.outcome.set_result(value)
            else:
                write.outcome.set_exception(value)
        loop = asyncio.get_running_loop()
        if self._pending:  # arrived while this batch was committing: the next batch
            self._waiting_since = loop.time()
            loop.call_soon(self._flush)
            return
        flushing, self._flushing = self._flushing, None
        if flushing is not None:
            flushing.set_result(None)

    def _run_batch(self, batch: list[_Pending]) -> list[tuple[bool, Any]]:
        """Runs every write of a batch, each succeeding or failing as if it ran alone.

        First without a savepoint per write: each costs two statements, and while one is open
        SQLite copies every page a write changes into a journal first, once per write for the
        pages the batch's writes share (the last page of each table they append to). A write
        refused before it changed a row leaves nothing to undo. Only when one fails after
        changing rows does the batch go back to where it began and run again, every write in a
        savepoint of its own (`_run`), so that the failed write's rows are undone alone."""
        connection = self.connection
        connection.execute("SAVEPOINT batch")
        outcomes = self._run_writes(batch, bare=True)
        if outcomes is None:
            connection.execute("ROLLBACK TO batch")
            self.driver.forget_ids()
            outcomes = self._run_writes(batch, bare=False)
        connection.execute("RELEASE batch")
        return outcomes  # type: ignore[return-value]

    def _run_writes(self, batch: list[_Pending], *, bare: bool) -> list[tuple[bool, Any]] | None:
        """The writes that may run together first, group by group, then every other one by its
        unit, in order. Bare: None as soon as one fails after changing rows."""
        outcomes: list[tuple[bool, Any] | None] = [None] * len(batch)
        groups: dict[tuple[int, Any], list[int]] = {}
        for place, write in enumerate(batch):
            if write.together is not None:
                groups.setdefault((write.account_id, write.together.run), []).append(place)
        for (account_id, run), places in groups.items():
            items = [batch[place].together.item for place in places]  # type: ignore[union-attr]
            results = self._run_together(account_id, run, items, bare=bare)
            if results is None:
                if bare:
                    return None
                continue  # undone: each write runs by its unit
            for place, result in zip(places, results):
                if result is not None:
                    outcomes[place] = (True, result)
        run_alone = self._run_bare if bare else self._run
        for place, write in enumerate(batch):
            if outcomes[place] is None:
                outcome = run_alone(write.account_id, write.unit)
                if outcome is None:
                    return None
                outcomes[place] = outcome
        return outcomes  # type: ignore[return-value]

    def _run_together(self, account_id: int, run: Callable[[SqlTransaction, list[Any]], Awaitable[list[Any]]],
                      items: list[Any], *, bare: bool) -> list[Any] | None:
        """A group's results, or None if it failed: bare, only when it failed after changing
        rows (otherwise it settled nothing); in a savepoint, whenever it failed, undone."""
        connection = self.connection
        changes = connection.total_changes
        if not bare:
            connection.execute("SAVEPOINT together")
        try:
            results = _run_to_end(run(SqlTransaction(self.driver, account_id), items))
        except Exception:
            if bare:
                if connection.total_changes != changes or not connection.in_transaction:
                    return None
                return [None] * len(items)
            self.driver.forget_ids()
            if connection.in_transaction:
                connection.execute("ROLLBACK TO together")
                connection.execute("RELEASE together")
            return None
        if not bare:
            connection.execute("RELEASE together")
        return results

    def _run_bare(self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]]
                  ) -> tuple[bool, Any] | None:
        """Runs one unit without a savepoint: as `_run`, or None if it failed after changing
        rows, which only a savepoint can undo. A statement that fails changes nothing: SQLite
        undoes its own partial work, and counts only the rows of statements that succeed."""
        connection = self.connection
        for attempt in range(_MAX_ATTEMPTS):
            changes = connection.total_changes
            try:
                return True, _run_to_end(unit(SqlTransaction(self.driver, account_id)))
            except Exception as error:
                if connection.total_changes != changes or not connection.in_transaction:
                    return None
                if not isinstance(error, sqlite3.IntegrityError):
                    return False, self._failure(error)
                if attempt == _MAX_ATTEMPTS - 1:
                    return False, RetryableConflict(str(error))
        raise AssertionError("unreachable")

    @staticmethod
    def _failure(error: Exception) -> Exception:
        """What the caller of a write that failed with `error` hears."""
        if isinstance(error, sqlite3.OperationalError):
            return StoreUnavailable(str(error))
        return error

    def _run(self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]]) -> tuple[bool, Any]:
        """Runs one unit in its savepoint: (True, result) or (False, the exception)."""
        for attempt in range(_MAX_ATTEMPTS):
            self.connection.execute("SAVEPOINT unit")
            try:
                result = _run_to_end(unit(SqlTransaction(self.driver, account_id)))
            except sqlite3.IntegrityError as error:
                self._undo()
                if attempt == _MAX_ATTEMPTS - 1:
                    return False, RetryableConflict(str(error))
                continue
            except Exception as error:
                self._undo()
                return False, self._failure(error)
            self.connection.execute("RELEASE unit")
            return True, result
        raise AssertionError("unreachable")

    def _undo(self) -> None:
        # A write that failed may have inserted rows with ids of its own choosing first.
        self.driver.forget_ids()
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK TO unit")
            self.connection.execute("RELEASE unit")

    def _rollback(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    async def close(self) -> None:
        while self._flushing is not None:  # the writes already accepted are answered first
            await asyncio.shield(self._flushing)
        self._snapshot.end()
        self.connection.close()
        self.reader.close()
        self._snapshot.close()
        if self._wake is not None:
            self._wake.close()
        if self._log is not None:
            os.close(self._log)
