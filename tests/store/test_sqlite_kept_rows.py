"""The SQLite reading connection keeps a rarely changing row until anything commits to the file,
which its store learns before each read (`SharedSnapshot`) from the log index's header
(`CommitWatch`) or, failing that, from SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from openprofiles.store.migrate import upgrade
from openprofiles.store.sqlite import SqliteDriver, connect
from openprofiles.store.sqlite_snapshot import QUIET_SECONDS, SharedSnapshot
from openprofiles.store.urls import DatabaseUrl

SQL = "SELECT credentials_version FROM accounts WHERE id = $1"


def _reading(path: str, *, watched: bool = True, quiet: float = QUIET_SECONDS
             ) -> tuple[SqliteDriver, SharedSnapshot]:
    """A reading connection as the store has one: its driver and the looks before each read.
    `quiet=0` shares a snapshot between reads from the start."""
    driver = SqliteDriver(connect(path), keeps_rows=True)
    snapshot = SharedSnapshot(driver.connection, path if watched else None, driver.forget_kept,
                              quiet=quiet)
    return driver, snapshot


@pytest.mark.parametrize(("watched", "quiet"),
                         [(True, QUIET_SECONDS), (True, 0.0), (False, QUIET_SECONDS)],
                         ids=["watched", "sharing-snapshots", "asking-sqlite"])
def test_a_kept_row_is_read_again_once_another_connection_commits(
    tmp_path: Path, watched: bool, quiet: float
) -> None:
    path = str(tmp_path / "kept.db")
    upgrade(DatabaseUrl.parse(f"sqlite:///{path}"))
    reader, snapshot = _reading(path, watched=watched, quiet=quiet)
    other = sqlite3.connect(path, isolation_level=None)  # as another process would

    def bump() -> None:
        other.execute("UPDATE accounts SET credentials_version = credentials_version + 1")

    async def read() -> int:
        snapshot.enter()
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


def _bump_in_another_process(path: str, *, checkpoint: bool = False) -> None:
    script = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('PRAGMA journal_mode=WAL')\n"
        "if sys.argv[2] == 'checkpoint': c.execute('PRAGMA wal_checkpoint(TRUNCATE)')\n"
        "c.execute('UPDATE accounts SET credentials_version = credentials_version + 1')\n"
    )
    subprocess.run([sys.executable, "-c", script, path, "checkpoint" if checkpoint else "-"],
                   check=True, timeout=60)


def test_the_watched_row_follows_commits_of_other_processes_and_log_restarts(tmp_path: Path) -> None:
    path = str(tmp_path / "processes.db")
    upgrade(DatabaseUrl.parse(f"sqlite:///{path}"))
    reader, snapshot = _reading(path)

    async def read() -> int:
        snapshot.enter()
        return (await reader.fetchrow_kept(SQL, 1))[0]

    async def scenario() -> list[int]:
        seen = [await read(), await read()]
        _bump_in_another_process(path)
        seen.append(await read())
        # The log copied into the file and emptied: the next commit starts it over, from
        # the first frame again, and must still be seen.
        _bump_in_another_process(path, checkpoint=True)
        seen.append(await read())
        _bump_in_another_process(path, checkpoint=True)
        seen += [await read(), await read()]
        return seen

    assert asyncio.run(scenario()) == [0, 0, 1, 2, 3, 3]
    assert snapshot._watch is not None  # the rows above were kept through the watch
