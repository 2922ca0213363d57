"""Each connection of an SQLite store keeps the pages its kind of work reuses: the reading one
more than the writing one, whose cache every commit of another process empties."""

from __future__ import annotations

import asyncio
from pathlib import Path

from openprofiles.store.migrate import upgrade
from openprofiles.store.sqlite import READ_CACHE_MIB, WRITE_CACHE_MIB, SqliteStore
from openprofiles.store.urls import DatabaseUrl


def test_the_reading_connection_keeps_more_pages_than_the_writing_one(tmp_path: Path) -> None:
    path = str(tmp_path / "caches.db")
    upgrade(DatabaseUrl.parse(f"sqlite:///{path}"))

    async def sizes() -> tuple[int, int]:
        store = SqliteStore(path)
        try:
            return (store.reader.execute("PRAGMA cache_size").fetchone()[0],
                    store.connection.execute("PRAGMA cache_size").fetchone()[0])
        finally:
            await store.close()

    reading, writing = asyncio.run(sizes())
    # Negative: a size in KiB rather than in pages.
    assert (reading, writing) == (-READ_CACHE_MIB * 1024, -WRITE_CACHE_MIB * 1024)
    assert READ_CACHE_MIB > WRITE_CACHE_MIB
