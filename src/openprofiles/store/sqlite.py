"""The SQLite backend: one file, WAL, foreign keys on, one connection per process.

Each unit of work runs on the event loop without yielding: the driver's calls are
synchronous, so no two units of one process interleave, and `BEGIN IMMEDIATE` takes the
file's write lock up front so that units of other processes wait rather than fail midway.
Lookups by key take microseconds, so blocking the loop for them costs less than a thread hop.

`synchronous=FULL`: a write is on disk before its 2xx leaves, so a crash or a power loss
keeps it. A file that stays locked past the busy timeout, or cannot be read or written, is
`StoreUnavailable` (the API answers 503).
"""

from __future__ import annotations

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
    connection.execute("PRAGMA cache_size=-65536")
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
        # Safe without a sequence: the write lock is held for the whole transaction.
        row = self.connection.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()
        return int(row[0])


class SqliteStore:
    engine = "sqlite"

    def __init__(self, path: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self.connection = connect(path, busy_timeout_ms)
        self.driver = SqliteDriver(self.connection)

    async def read(
        self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]], *,
        single_statement: bool = False,
    ) -> T:
        if single_statement:
            return await unit(SqlTransaction(self.driver, account_id))
        self.connection.execute("BEGIN")
        try:
            return await unit(SqlTransaction(self.driver, account_id))
        finally:
            self.connection.execute("COMMIT")

    async def read_stale(
        self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]], *,
        single_statement: bool = False,
    ) -> T:
        return await self.read(account_id, unit, single_statement=single_statement)

    async def write(self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]]) -> T:
        for attempt in range(_MAX_ATTEMPTS):
            try:
                self.connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise StoreUnavailable(str(error)) from error
            try:
                result = await unit(SqlTransaction(self.driver, account_id))
                self.connection.execute("COMMIT")
                return result
            except sqlite3.IntegrityError as error:
                self._rollback()
                if attempt == _MAX_ATTEMPTS - 1:
                    raise RetryableConflict(str(error)) from error
            except sqlite3.OperationalError as error:
                self._rollback()
                raise StoreUnavailable(str(error)) from error
            except BaseException:
                self._rollback()
                raise
        raise AssertionError("unreachable")

    def _rollback(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    async def close(self) -> None:
        self.connection.close()
