"""How long the write-ahead log grows before a commit copies it into the database file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from openprofiles.domain.limits import Limits
from openprofiles.service import profiles
from openprofiles.store.batch import LogCopier, log_state
from openprofiles.store.sqlite import CHECKPOINT_FRAMES, SqliteStore

from .writes import ACCOUNT, body, query

PAGE = 4096
FRAME = 24 + PAGE  # https://www.sqlite.org/walformat.html
SQLITE_DEFAULT = 1000


def _frames(path: str) -> int:
    """Frames in the log since it last started over, from its index's header."""
    return log_state(path)[1]


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
                if most > CHECKPOINT_FRAMES and _frames(path) < most:
                    break
            return _frames(path), _frames_at_most(path)
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
    path = str(tmp_path / "copied.db")
    writer = _written_elsewhere(path, 2000)
    before = os.path.getsize(path)
    busy, log, copied = LogCopier(path, frames=1).copy()
    assert busy == 0 and log == copied == _frames(path) > 100
    assert os.path.getsize(path) > before + 2000 * 500
    # The log starts over at the writer's next commit, since nothing in it is left to copy.
    _ = writer.execute("INSERT INTO filler (text) VALUES ('y')")
    assert _frames(path) < log
    writer.close()


def test_a_copier_copies_each_time_the_log_has_grown_by_its_pages(tmp_path: Path) -> None:
    # About 50 pages a batch; each copy takes every committed page, so the writer's next
    # commit starts the log over, and the next copy comes 300 pages later.
    path = str(tmp_path / "batches.db")
    writer = _written_elsewhere(path, 10)
    copier = LogCopier(path, frames=300)
    restarts = 0
    for batch in range(20):
        before = _frames(path)
        writer.execute("BEGIN")
        writer.executemany("INSERT INTO filler (text) VALUES (?)", [("z" * 500,)] * 400)
        writer.execute("COMMIT")
        frames, copies = _frames(path), copier.copies
        restarts += frames < before
        copier.batch_parsed()
        copier.wait()
        assert copier.copies == copies + (frames >= 300)
    assert copier.copies >= 3 and restarts == copier.copies


def test_a_copier_counts_the_pages_of_a_log_that_started_over_from_its_start(tmp_path: Path) -> None:
    # The log restarted by the writer's own copy reaches as many pages as when the copier
    # last copied: it is another log, and a copy is due.
    path = str(tmp_path / "again.db")
    writer = _written_elsewhere(path, 10)
    copier = LogCopier(path, frames=100)
    salts = set()
    for round_ in range(3):
        writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        writer.execute("BEGIN")
        writer.executemany("INSERT INTO filler (text) VALUES (?)", [("w" * 500,)] * 1200)
        writer.execute("COMMIT")
        salts.add(log_state(path)[0])
        copier.batch_parsed()
        copier.wait()
        assert copier.copies == round_ + 1
    assert len(salts) == 3


def test_no_log_reads_as_empty(tmp_path: Path) -> None:
    assert _frames(str(tmp_path / "none.db")) == 0
