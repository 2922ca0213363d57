"""The SQLite reading connection keeps a rarely changing row until anything commits to the file."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from openprofiles.store.migrate import upgrade
from openprofiles.store.sqlite import SqliteDriver, connect
from openprofiles.store.urls import DatabaseUrl

SQL = "SELECT credentials_version FROM accounts WHERE id = $1"


def test_a_kept_row_is_read_again_once_another_connection_commits(tmp_path: Path) -> None:
    path = str(tmp_path / "kept.db")
    upgrade(DatabaseUrl.parse(f"sqlite:///{path}"))
    reader = SqliteDriver(connect(path), keeps_rows=True)
    other = sqlite3.connect(path, isolation_level=None)  # as another process would

    def bump() -> None:
        other.execute("UPDATE accounts SET credentials_version = credentials_version + 1")

    async def read() -> int:
        return (await reader.fetchrow_kept(SQL, 1))[0]

    async def scenario() -> list[int]:
        seen = [await read()]
        other.execute("BEGIN IMMEDIATE")
        bump()
        seen.append(await read())  # not committed yet: still the kept row
        other.execute("COMMIT")
        seen.append(await read())
        bump()
        seen.append(await read())
        seen.append(await read())
        return seen

    assert asyncio.run(scenario()) == [0, 0, 1, 2, 2]


def test_a_writing_connection_never_keeps_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "writer.db")
    upgrade(DatabaseUrl.parse(f"sqlite:///{path}"))
    writer = SqliteDriver(connect(path))

    async def scenario() -> list[int]:
        writer.connection.execute("BEGIN IMMEDIATE")
        before = (await writer.fetchrow_kept(SQL, 1))[0]
        await writer.execute("UPDATE accounts SET credentials_version = 5 WHERE id = $1", 1)
        after = (await writer.fetchrow_kept(SQL, 1))[0]  # its own change, uncommitted
        writer.connection.execute("ROLLBACK")
        return [before, after]

    assert asyncio.run(scenario()) == [0, 5]
