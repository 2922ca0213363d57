"""How long the write-ahead log grows before a commit copies it into the database file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

from openprofiles.domain.limits import Limits
from openprofiles.service import profiles
from openprofiles.store.sqlite import CHECKPOINT_FRAMES, SqliteStore

from .writes import ACCOUNT, body, query

PAGE = 4096
FRAME = 24 + PAGE  # https://www.sqlite.org/walformat.html
SQLITE_DEFAULT = 1000


def _frames_now(path: str) -> int:
    """Frames in the log since it last started over, from its index's header."""
    with open(path + "-shm", "rb") as index:
        return int.from_bytes(index.read(20)[16:20], sys.byteorder)


def _frames_at_most(path: str) -> int:
    """The log file keeps its length when it starts over: the most frames it ever held."""
    return (os.path.getsize(path + "-wal") - 32) // FRAME


def test_the_log_grows_to_a_few_thousand_frames_then_starts_over(path: str) -> None:
    async def scenario() -> tuple[int, int]:
        store = SqliteStore(path)
        try:
            # One write a batch, each a commit of several pages, until the log has started
            # over at least once.
            for i in range(2000):
                await profiles.put_by_query(store, ACCOUNT, Limits(), query(f"c{i}@example.com"), body())
                most = _frames_at_most(path)
                if most > CHECKPOINT_FRAMES and _frames_now(path) < most:
                    break
            return _frames_now(path), _frames_at_most(path)
        finally:
            await store.close()

    now, most = asyncio.run(scenario())
    assert SQLITE_DEFAULT * 2 < CHECKPOINT_FRAMES < most <= CHECKPOINT_FRAMES + 50
    assert now < most  # copied into the database file and started over


def _written_elsewhere(path: str, rows: int) -> sqlite3.Connection:
    """A writing connection that never copies its log itself, with `rows` rows committed."""
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE IF NOT EXISTS filler (n INTEGER PRIMARY KEY, text TEXT)")
    for start in range(0, rows, 100):
        writer.execute("BEGIN")
        writer.executemany("INSERT INTO filler (text) VALUES (?)",
                           [("x" * 500,) for _ in range(start, min(start + 100, rows))])
        writer.execute("COMMIT")
    return writer


def test_a_copier_in_another_connection_copies_every_committed_page(tmp_path: Path) -> None:
    from openprofiles.store.batch import LogCopier

    path = str(tmp_path / "copied.db")
    writer = _written_elsewhere(path, 2000)
    before = os.path.getsize(path)
    busy, log, copied = LogCopier(path, every=1).copy()
    assert busy == 0 and log == copied == _frames_now(path) > 100
    assert os.path.getsize(path) > before + 2000 * 500
    # The log starts over at the writer's next commit, since nothing in it is left to copy.
    _ = writer.execute("INSERT INTO filler (text) VALUES ('y')")
    assert _frames_now(path) < log
    writer.close()


def test_a_copier_copies_once_every_few_batches_beside_the_writes(tmp_path: Path) -> None:
    from openprofiles.store.batch import LogCopier

    path = str(tmp_path / "batches.db")
    writer = _written_elsewhere(path, 100)
    copier = LogCopier(path, every=3)
    for batch in range(7):
        writer.executemany("INSERT INTO filler (text) VALUES (?)", [("z" * 500,)] * 50)
        copier.batch_parsed()
        copier.wait()
    assert copier.copies == 2  # after the 3rd and the 6th batch
    writer.close()
