"""The PostgreSQL store's pool hands connections back without a statement to reset them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from openprofiles.store import open_store
from openprofiles.store.migrate import upgrade
from openprofiles.store.sql import SqlTransaction
from openprofiles.store.urls import DatabaseUrl

from ..support import Database


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    database = Database.create("postgresql", tmp_path)
    upgrade(DatabaseUrl.parse(database.url))
    yield database.url
    database.drop()


def test_a_connection_back_in_the_pool_sends_nothing_more(url: str) -> None:
    """After a request's last statement, the connection sends no reset of its session: the
    server's last statement from it is the request's own, one round trip per request less."""

    async def last_statement() -> str:
        store = await open_store(DatabaseUrl.parse(url), pool_size=1)
        try:
            async def unit(tx: SqlTransaction) -> int:
                row = await tx.driver.fetchrow("SELECT pg_backend_pid()")
                return int(row[0])

            pid = await store.read(1, unit, single_statement=True)
            # Through the pool's only connection again: the first use gave it back.
            assert await store.read(1, unit, single_statement=True) == pid
            with psycopg.connect(url) as connection:
                row = connection.execute(
                    "SELECT state, query FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
            assert row is not None and row[0] == "idle"
            return str(row[1])
        finally:
            await store.close()

    assert asyncio.run(last_statement()) == "SELECT pg_backend_pid()"
