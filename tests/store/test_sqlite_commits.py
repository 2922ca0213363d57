"""The header of an SQLite file's log index tells of each commit; watching it never takes
away the locks SQLite holds on the index.

POSIX record locks belong to a process and a file, not to a descriptor: closing any descriptor
of the `-shm` file releases every lock the process holds on it, SQLite's included. Without
them, another process may write while this one does, or find the index unused and start it
over under the processes that map it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openprofiles.domain.limits import Limits
from openprofiles.service import profiles
from openprofiles.store.sqlite import SqliteStore
from openprofiles.store.sqlite_commits import CommitWatch
from openprofiles.store.sqlite_snapshot import QUIET_SECONDS

from .writes import ACCOUNT, body, query

# The byte of the index a process holds a shared lock on while it uses the index, and the one
# a writer locks (https://www.sqlite.org/walformat.html, "Locks": DMS and WAL_WRITE_LOCK).
_IN_USE_BYTE = 128

_PROBE = """
import fcntl, os, struct, sys
descriptor = os.open(sys.argv[1], os.O_RDONLY)
flock = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, int(sys.argv[2]), 1, 0)
kind = struct.unpack("hhqqi4x", fcntl.fcntl(descriptor, fcntl.F_GETLK, flock))[0]
print("unlocked" if kind == fcntl.F_UNLCK else "locked")
"""

_WRITE = """
import sqlite3, sys
try:
    with sqlite3.connect(sys.argv[1], timeout=0) as connection:
        connection.execute(sys.argv[2])
    print("written")
except sqlite3.OperationalError as error:
    print(error)
"""


def _in_another_process(script: str, *args: str) -> str:
    return subprocess.run([sys.executable, "-c", script, *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def _index_in_use(path: str) -> str:
    """"locked" while some process uses the file's log index, as another process sees it."""
    return _in_another_process(_PROBE, path + "-shm", str(_IN_USE_BYTE))


@pytest.fixture
def connection(path: str) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (n INTEGER)")
    connection.execute("INSERT INTO t VALUES (1)")
    yield connection
    connection.close()


def test_the_index_stays_in_use_while_watched(path: str, connection: sqlite3.Connection) -> None:
    assert _index_in_use(path) == "locked"
    watch = CommitWatch.open(path)
    assert watch is not None
    try:
        assert watch.changed()
        assert _index_in_use(path) == "locked"
    finally:
        watch.close()


def test_a_store_keeps_the_index_in_use_through_its_reads_and_writes(path: str) -> None:
    """The same, through everything a worker's store opens beside SQLite (the watch, the wake
    pipe, the log it syncs), once it has read, shared a snapshot and written."""
    async def scenario() -> list[str]:
        store = SqliteStore(path)
        try:
            seen = []
            for plan in ("gold", "silver"):
                await profiles.put_by_query(store, ACCOUNT, Limits(), query("a@example.com"), body(plan))
                await profiles.get_by_query(store, ACCOUNT, query("a@example.com"))
                await asyncio.sleep(QUIET_SECONDS * 1.5)
                await profiles.get_by_query(store, ACCOUNT, query("a@example.com"))
                seen.append(_index_in_use(path))
            return seen
        finally:
            await store.close()

    assert asyncio.run(scenario()) == ["locked", "locked"]


def test_no_other_process_writes_while_a_watching_one_holds_the_write_lock(
    path: str, connection: sqlite3.Connection,
) -> None:
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO t VALUES (3)")
    watch = CommitWatch.open(path)
    assert watch is not None
    try:
        assert _in_another_process(_WRITE, path, "INSERT INTO t VALUES (2)") == "database is locked"
        connection.execute("COMMIT")
        assert _in_another_process(_WRITE, path, "INSERT INTO t VALUES (2)") == "written"
    finally:
        watch.close()
    assert [n for (n,) in connection.execute("SELECT n FROM t ORDER BY n")] == [1, 2, 3]


def test_the_watch_moves_with_each_commit_and_only_then(path: str) -> None:
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("SELECT 1 FROM accounts").fetchall()  # the index exists once a reader came
    watch = CommitWatch.open(path)
    assert watch is not None
    try:
        assert watch.changed()  # the first look
        assert not watch.changed()
        writer.execute("SELECT * FROM accounts").fetchall()
        assert not watch.changed()  # reading commits nothing
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE accounts SET credentials_version = 7")
        assert not watch.changed()  # not committed yet
        writer.execute("COMMIT")
        assert watch.changed()
        assert not watch.changed()
        _in_another_process(_WRITE, path, "UPDATE accounts SET credentials_version = 8")
        assert watch.changed()  # a commit of another process
    finally:
        writer.close()
        watch.close()


def test_no_watch_without_a_log_index(tmp_path: Path) -> None:
    path = tmp_path / "rollback-journal.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)")
    assert CommitWatch.open(str(path)) is None
