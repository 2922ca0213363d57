"""How long the write-ahead log grows before a commit copies it into the database file."""

from __future__ import annotations

import asyncio
import os
import sys

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
