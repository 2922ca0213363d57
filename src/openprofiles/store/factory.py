"""Opens the backend that a database URL names."""

from __future__ import annotations

from .base import Store
from .urls import DatabaseUrl


async def open_store(url: DatabaseUrl, *, pool_size: int = 10) -> Store:
    if url.engine == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(url.sqlite_path)
    from .postgres import PostgresStore

    return await PostgresStore.open(url.asyncpg, pool_size=pool_size)
