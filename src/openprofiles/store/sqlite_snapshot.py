"""The reading connection's transactions: one snapshot shared by the reads that follow each
other while nothing is committed to the file.

A read in a transaction of its own costs SQLite its file locks (two `fcntl` calls) and a look
at the log's index each time, a fifth of a lookup by key on a large file (bench/RESULTS.md).
While nothing commits, a snapshot taken earlier is still the latest one, so reads may share it:
the log index's header (`CommitWatch`) tells without a system call whether anything was
committed, by any connection of any process. When something was, the shared snapshot ends
before the read, which then sees the commit as it would have on its own.

A snapshot held open pins the log: a checkpoint copies no frame committed after it, and the
log cannot start over from its first frame while it is held. So one is shared only once the
file has been quiet for `quiet` seconds (a file being written to is read one transaction at
a time, as without sharing), and it ends once no read has come for `idle` seconds.

The rows the reading connection keeps (`SqliteDriver.fetchrow_kept`) follow the same looks:
they are dropped whenever a commit is seen, before the read that would otherwise use them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable

from .sqlite_commits import CommitWatch

QUIET_SECONDS = 0.05
IDLE_SECONDS = 0.05


class SharedSnapshot:
    """`path`: the database file, whose log index is watched; None to ask SQLite each time."""

    def __init__(
        self, connection: sqlite3.Connection, path: str | None, on_commit: Callable[[], None], *,
        quiet: float = QUIET_SECONDS, idle: float = IDLE_SECONDS,
    ) -> None:
        self._connection = connection
        self._path: str | None = path
        self._on_commit = on_commit
        self._quiet = quiet
        self._idle = idle
        self._watch: CommitWatch | None = None
        self._version: int | None = None  # `data_version`, asked until the watch opens
        self._last_commit = time.monotonic()
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def enter(self) -> bool:
        """Called before each read, in the event loop: whether the read runs in the shared
        snapshot (else it runs on its own, in a transaction of its own if it needs one)."""
        now = time.monotonic()
        if self._committed():
            self._last_commit = now
            self._on_commit()
            self.end()
            return False
        self._last_read = now
        if self._connection.in_transaction:
            return True
        if self._watch is None or now - self._last_commit < self._quiet:
            return False
        self._connection.execute("BEGIN")
        self._timer = asyncio.get_running_loop().call_later(self._idle, self._end_if_idle)
        return True

    def end(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._connection.in_transaction:
            self._connection.execute("COMMIT")

    def close(self) -> None:
        """After `end`, once the process's connections to the file are closed: see
        `CommitWatch.close`."""
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def _end_if_idle(self) -> None:
        self._timer = None
        waited = time.monotonic() - self._last_read
        if waited >= self._idle:
            self.end()
        else:
            self._timer = asyncio.get_running_loop().call_later(
                self._idle - waited, self._end_if_idle
            )

    def _committed(self) -> bool:
        """Whether anything was committed since the last look (true on the first)."""
        if self._watch is not None:
            return self._watch.changed()
        # Before the log's index exists there is nothing to watch: SQLite is asked, in a
        # transaction of its own (no snapshot is shared without a watch).
        version = self._connection.execute("PRAGMA data_version").fetchone()[0]
        changed = version != self._version
        self._version = version
        if self._path is not None:
            # Opened once: a file with no index then (not in WAL mode) is asked every time.
            self._watch = CommitWatch.open(self._path)
            self._path = None
            if self._watch is not None:
                # Its first look reports a change, whatever happened: taken as one (a commit
                # since the version was read would be), and not seen again at the next read.
                self._watch.changed()
                return True
        return changed
