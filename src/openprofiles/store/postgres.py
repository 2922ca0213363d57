"""The PostgreSQL backend: asyncpg with a connection pool; writes are serialisable.

Every write runs at SERIALIZABLE isolation, so a unit of work that reads, decides and writes
behaves as if it ran alone. When PostgreSQL detects that two transactions raced (a
serialisation failure, a deadlock, or a unique key taken by a concurrent commit), the unit
is run again from the start and then sees the winner's rows.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from .errors import RetryableConflict
from .sql import SqlTransaction

T = TypeVar("T")

_MAX_ATTEMPTS = 10
_RETRYABLE = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.UniqueViolationError,
)


class PostgresDriver:
    engine = "postgresql"

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self.connection.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return await self.connection.fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        status = await self.connection.execute(sql, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.connection.executemany(sql, rows)

    async def next_id(self, table: str) -> int:
        return int(await self.connection.fetchval(f"SELECT nextval('{table}_id_seq')"))


class PostgresStore:
    engine = "postgresql"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, dsn: str, *, pool_size: int = 10) -> PostgresStore:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size)
        return cls(pool)

    async def read(
        self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]], *,
        single_statement: bool = False,
    ) -> T:
        async with self.pool.acquire() as connection:
            if single_statement:
                return await unit(SqlTransaction(PostgresDriver(connection), account_id))
            async with connection.transaction(isolation="repeatable_read", readonly=True):
                return await unit(SqlTransaction(PostgresDriver(connection), account_id))

    async def write(self, account_id: int, unit: Callable[[SqlTransaction], Awaitable[T]]) -> T:
        for attempt in range(_MAX_ATTEMPTS):
            try:
                async with self.pool.acquire() as connection:
                    async with connection.transaction(isolation="serializable"):
                        return await unit(SqlTransaction(PostgresDriver(connection), account_id))
            except _RETRYABLE as error:
                if attempt == _MAX_ATTEMPTS - 1:
                    raise RetryableConflict(str(error)) from error
                await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.pool.close()
