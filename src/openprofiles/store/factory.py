"""Opens the backend that a database URL names."""

from __future__ import annotations

from .base import Store
from .urls import DatabaseUrl


async def open_store(url: DatabaseUrl, *, pool_size: int = 10,
                     read_url: DatabaseUrl | None = None,
                     busy_timeout_ms: int | None = None) -> Store:
    if read_url is not None and read_url.engine != url.engine:
        raise ValueError("the read database must be of the same engine as the database")
    if url.engine == "sqlite":
        from .sqlite import SqliteStore

        if busy_timeout_ms is None:
            return SqliteStore(url.sqlite_path)
        return SqliteStore(url.sqlite_path, busy_timeout_ms=busy_timeout_ms)
    from .postgres import PostgresStore

    return await PostgresStore.open(
        url.asyncpg, pool_size=pool_size, replica_dsn=read_url.asyncpg if read_url else None
    )
