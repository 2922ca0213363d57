"""The PostgreSQL backend: asyncpg with a connection pool; writes are serialisable.

Every write runs at SERIALIZABLE isolation, so a unit of work that reads, decides and writes
behaves as if it ran alone: a profile-count limit or an identity check cannot be passed by two
concurrent writers at once, whatever rows they read. When PostgreSQL detects that two
transactions raced (a serialisation failure, a deadlock, or a unique key taken by a concurrent
commit), the unit is run again from the start and then sees the winner's rows. Retries back
off exponentially with jitter, within a time budget, so that even dozens of writers piling onto
one new identifier all end up succeeding rather than seeing a conflict.

A database that cannot be reached is `StoreUnavailable` (the API answers 503), never a hang:
connecting and acquiring a connection have timeouts. The pool reconnects by itself once the
database is back.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from .base import Together
from .errors import RetryableConflict, StoreUnavailable
from .sql import SqlTransaction

T = TypeVar("T")

_RETRYABLE = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.UniqueViolationError,
)
# The database is down, restarting, refusing connections, or out of connection slots.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.ObjectNotInPrerequisiteStateError,
    asyncpg.InvalidAuthorizationSpecificationError,
)
# A pooled connection whose server side has gone (a restart, a terminated backend): nothing
# it was sent can have committed, and a fresh connection may well work. The driver reports
# a session ended while idle either as a closed connection or, when the notice of the end
# arrives as a statement starts, as an internal protocol state error; the pool discards
# such a connection when it comes back.
_CONNECTION_LOST = (
    asyncpg.ConnectionDoesNotExistError, ConnectionResetError, asyncpg.InternalClientError,
)

RETRY_BUDGET_SECONDS = 10.0
_FIRST_BACKOFF = 0.002
_MAX_BACKOFF = 0.25
CONNECT_TIMEOUT_SECONDS = 5.0
ACQUIRE_TIMEOUT_SECONDS = 10.0


class PostgresDriver:
    engine = "postgresql"

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self.connection.fetchrow(sql, *args)

    async def fetchrow_kept(self, sql: str, *args: Any) -> Any:
        # The server cannot tell cheaply that nothing changed: always asked.
        return await self.connection.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return await self.connection.fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        status = await self.connection.execute(sql, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.connection.executemany(sql, rows)

    def new_id(self, table: str) -> str:
        return f"nextval('{table}_id_seq')"

    def take_id(self, table: str) -> int | None:
        return None  # the sequence, within the statement that inserts

    def forget_ids(self) -> None:
        pass


class _Backoff:
    """Exponential backoff with full jitter, until the time budget is spent."""

    def __init__(self, budget: float) -> None:
        self.deadline = time.monotonic() + budget
        self.ceiling = _FIRST_BACKOFF

    async def wait(self) -> bool:
        """Sleeps before the next attempt; False when the budget does not allow one."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(remaining, random.uniform(0, self.ceiling)))
        self.ceiling = min(self.ceiling * 2, _MAX_BACKOFF)
        return True


async def _keep_session(connection: asyncpg.Connection) -> None:
    """A connection back in the pool has nothing of its session to undo: the store takes no
    advisory locks, listens for nothing, opens no cursors and sets nothing for the session
    (the driver itself still rolls back a transaction left open). The driver's default reset
    is one more statement and round trip for every request."""


async def _open_pool(dsn: str, pool_size: int) -> asyncpg.Pool:
    # min_size=0: a worker starts, and keeps serving 503s, while the database is away.
    return await asyncpg.create_pool(
        dsn, min_size=0, max_size=pool_size, timeout=CONNECT_TIMEOUT_SECONDS,
        reset=_keep_session,
    )


class PostgresStore:
    engine = "postgresql"

    def __init__(self, pool: asyncpg.Pool, replica: asyncpg.Pool | None = None) -> None:
        self.pool = pool
        self.replica = replica

    @classmethod
    async def open(cls, dsn: str, *, pool_size: int = 10,
                   replica_dsn: str | None = None) -> PostgresStore:
        pool = await _open_pool(dsn, pool_size)
        replica = await _open_pool(replica_dsn, pool_size) if replica_dsn else None
        return cls(pool, replica)

    async def _read_on(self, pool: asyncpg.Pool, account_id: int,
                       unit: Callable[[SqlTransaction], Awaitable[T]],
                       single_statement: bool) -> T:
        for attempt in range(2):
            try:
                async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                    if single_statement:
                        return await unit(SqlTransaction(PostgresDriver(connection), account_id))
                    async with connection.transaction(isolation="repeatable_read", readonly=True):
                        return await unit(SqlTransaction(PostgresDriver(connection), account_id))
            except _CONNECTION_LOST as error:
                if attempt == 1:
                    raise StoreUnavailable(str(error)) from error
            except _UNAVAILABLE as error:
                raise StoreUnavailable(str(error) or type(error).__name__) from error
        raise AssertionError("unreachable")

    async def read(
        self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]], *,
        single_statement: bool = False,
    ) -> T:
        return await self._read_on(self.pool, account_id, unit, single_statement)

    async def read_stale(
        self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]], *,
        single_statement: bool = False,
    ) -> T:
        """A read that may lag the latest commits: served by the read replica when one is set."""
        return await self._read_on(self.replica or self.pool, account_id, unit, single_statement)

    async def write(
        self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]], *,
        together: Together[Any, T] | None = None,
    ) -> T:
        """Each write in a transaction of its own; `together` is not needed (see `Together`)."""
        backoff = _Backoff(RETRY_BUDGET_SECONDS)
        while True:
            committing = False
            try:
                async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                    transaction = connection.transaction(isolation="serializable")
                    await transaction.start()
                    try:
                        result = await unit(SqlTransaction(PostgresDriver(connection), account_id))
                    except BaseException:
                        if not connection.is_closed():
                            await transaction.rollback()
                        raise
                    committing = True
                    await transaction.commit()
                    return result
            except _RETRYABLE as error:
                if not await backoff.wait():
                    raise RetryableConflict(str(error)) from error
            except _CONNECTION_LOST as error:
                # Lost before COMMIT was sent: nothing was written and a fresh connection may
                # work. Lost during COMMIT: whether it committed is unknown, so no retry.
                if committing or not await backoff.wait():
                    raise StoreUnavailable(str(error)) from error
            except _UNAVAILABLE as error:
                raise StoreUnavailable(str(error) or type(error).__name__) from error

    async def analyze(self, tables: Sequence[str]) -> None:
        """Has the planner sample `tables` again, rather than wait for the autovacuum daemon."""
        try:
            async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                await connection.execute(f"ANALYZE {', '.join(tables)}")
        except _UNAVAILABLE as error:
            raise StoreUnavailable(str(error) or type(error).__name__) from error

    async def close(self) -> None:
        await self.pool.close()
        if self.replica is not None:
            await self.replica.close()
