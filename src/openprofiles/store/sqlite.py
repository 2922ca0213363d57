"""The SQLite backend: one file, WAL, foreign keys on, a writing and a reading connection per process.

Each unit of work runs on the event loop without yielding: the driver's calls are
synchronous, so no two units of one process interleave, and `BEGIN IMMEDIATE` takes the
file's write lock up front so that units of other processes wait rather than fail midway.
Writes commit in groups (see `SqliteStore.write`): one commit and one disk sync serve every
write that was ready in the same turn of the event loop.
Lookups by key take microseconds, so blocking the loop for them costs less than a thread hop.

`synchronous=FULL`: a write is on disk before its 2xx leaves, so a crash or a power loss
keeps it. A file that stays locked past the busy timeout, or cannot be read or written, is
`StoreUnavailable` (the API answers 503).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from .errors import RetryableConflict, StoreUnavailable
from .sql import SqlTransaction

T = TypeVar("T")

_PARAM = re.compile(r"\$(\d+)")
_MAX_ATTEMPTS = 5
BUSY_TIMEOUT_MS = 10000


def _qmark(sql: str, cache: dict[str, str] = {}) -> str:  # noqa: B006 - a deliberate memo
    converted = cache.get(sql)
    if converted is None:
        converted = cache[sql] = _PARAM.sub(r"?\1", sql)
    return converted


def connect(path: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    # 16 MiB of pages per connection, two connections per worker: the operating system's file
    # cache holds the rest of a large database, shared by every worker instead of copied.
    connection.execute("PRAGMA cache_size=-16384")
    return connection


class SqliteDriver:
    engine = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return self.connection.execute(_qmark(sql), args).fetchone()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return self.connection.execute(_qmark(sql), args).fetchall()

    async def execute(self, sql: str, *args: Any) -> int:
        return self.connection.execute(_qmark(sql), args).rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.connection.executemany(_qmark(sql), rows)

    async def next_id(self, table: str) -> int:
        # Safe without a sequence: the write lock is held for the whole transaction. Ids are
        # unique across accounts; the maximum is taken per account, one step down each
        # (account_id, id) key, as a plain MAX(id) reads the whole key.
        row = self.connection.execute(
            f"SELECT COALESCE(MAX((SELECT MAX(id) FROM {table} WHERE account_id = a.id)), 0) + 1"
            " FROM accounts a"
        ).fetchone()
        return int(row[0])


class _Batch:
    """The write transaction a process has open: the units that ran in it, and the commit
    they all wait for before answering."""

    __slots__ = ("committed", "active", "closing", "sealed")

    def __init__(self, committed: asyncio.Future[None]) -> None:
        self.committed = committed
        self.active = 0
        self.sealed = False
        self.closing = False


class SqliteStore:
    engine = "sqlite"

    def __init__(self, path: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = path
        # Writes and reads on separate connections, so that a read never sees the rows of a
        # batch that has not committed yet.
        # The writer never waits inside SQLite for the file's lock: it asks again from the event
        # loop (`_begin`), which meanwhile goes on serving reads.
        self.connection = connect(path, busy_timeout_ms=0)
        self.busy_timeout = busy_timeout_ms / 1000
        self.driver = SqliteDriver(self.connection)
        self.reader = connect(path, busy_timeout_ms)
        self.read_driver = SqliteDriver(self.reader)
        self._batch: _Batch | None = None
        self._committing: asyncio.Future[None] | None = None
        self._opening: asyncio.Future[None] | None = None

    async def read(
        self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]], *,
        single_statement: bool = False,
    ) -> T:
        if single_statement:
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

    async def write(self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]]) -> T:
        """Group commit: the units that are ready to run in one turn of the event loop share one
        transaction, each inside its own savepoint, and one commit (one fsync) at the end of
        the turn. A unit's caller hears of its result only after that commit, so a 2xx still
        means the write is on disk; a refused unit rolls back to its savepoint alone."""
        while self._batch is None:
            if self._committing is not None:  # the writing connection is busy syncing
                await asyncio.shield(self._committing)
            elif self._opening is not None:  # another write is taking the lock: join it
                await asyncio.shield(self._opening)
            else:
                await self._begin()
        batch = self._batch
        batch.active += 1
        try:
            result = await self._run(account_id, unit)
        finally:
            batch.active -= 1
            if batch.closing and batch.active == 0:
                self._commit(batch)
        await asyncio.shield(batch.committed)
        return result

    async def _begin(self) -> None:
        """Takes the file's write lock, waiting for other processes' batches without blocking
        the loop, and opens the batch that the writes arriving meanwhile will join."""
        loop = asyncio.get_running_loop()
        opened = self._opening = loop.create_future()
        deadline = loop.time() + self.busy_timeout
        pause = 0.0002
        try:
            while True:
                try:
                    self.connection.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as error:
                    if "lock" not in str(error) or loop.time() >= deadline:
                        raise StoreUnavailable(str(error)) from error
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.002)
            batch = self._batch = _Batch(loop.create_future())
            # Runs after every task that is ready now: they join this batch first.
            loop.call_soon(self._close, batch)
        finally:
            self._opening = None
            opened.set_result(None)

    def _close(self, batch: _Batch) -> None:
        batch.closing = True
        if batch.active == 0:
            self._commit(batch)

    def _commit(self, batch: _Batch) -> None:
        """Commits in a worker thread: the disk sync takes longer than most requests, and the
        loop meanwhile answers reads and prepares the writes of the next batch."""
        if self._batch is batch:
            self._batch = None  # later writes start the next batch
        if batch.sealed:  # already committing, by `close`
            return
        batch.sealed = True
        loop = asyncio.get_running_loop()
        free = self._committing = loop.create_future()
        syncing = loop.run_in_executor(None, self.connection.execute, "COMMIT")
        syncing.add_done_callback(lambda done: self._committed(batch, free, done.exception()))

    def _committed(self, batch: _Batch, free: asyncio.Future[None],
                   error: BaseException | None) -> None:
        if error is None:
            batch.committed.set_result(None)
        else:
            self._rollback()
            batch.committed.set_exception(StoreUnavailable(str(error)))
            batch.committed.exception()  # retrieved: units that failed earlier never await it
        self._committing = None
        free.set_result(None)

    async def _run(self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]]) -> T:
        for attempt in range(_MAX_ATTEMPTS):
            self.connection.execute("SAVEPOINT unit")
            try:
                result = await unit(SqlTransaction(self.driver, account_id))
            except sqlite3.IntegrityError as error:
                self._undo()
                if attempt == _MAX_ATTEMPTS - 1:
                    raise RetryableConflict(str(error)) from error
                continue
            except sqlite3.OperationalError as error:
                self._undo()
                raise StoreUnavailable(str(error)) from error
            except BaseException:
                self._undo()
                raise
            self.connection.execute("RELEASE unit")
            return result
        raise AssertionError("unreachable")

    def _undo(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK TO unit")
            self.connection.execute("RELEASE unit")

    def _rollback(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    async def close(self) -> None:
        if self._batch is not None:  # what a refused last unit left open: nothing to lose
            self._commit(self._batch)
        if self._committing is not None:
            await asyncio.shield(self._committing)
        self.connection.close()
        self.reader.close()
