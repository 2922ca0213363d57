"""Tells whether anything may have been committed to an SQLite file, without a system call.

In WAL mode every connection to a file shares its write-ahead log's index, the `-shm` file,
which begins with a 48-byte header that each commit rewrites: a change counter, the number of
frames in the log and their checksums (https://www.sqlite.org/walformat.html, "The WAL-Index
File Format"). SQLite itself compares that header to learn whether its cache is still good.
Reading it from a memory map costs a fraction of a microsecond, where asking SQLite
(`PRAGMA data_version`) opens a read transaction: file locks and a `stat` each time.

The header may only be compared, never trusted for what it holds: a header seen while a
writer is rewriting it differs from the last one seen, which only makes the caller read
afresh, as any other change would.
"""

from __future__ import annotations

import mmap
import os

_HEADER_BYTES = 48
# SQLite grows the file in pieces of 32 KiB; mapped before it holds a header, a read past its
# end would stop the process.
_MAPPED_BYTES = 4096


class CommitWatch:
    """Closed only after every SQLite connection of the process to the file: see `close`."""

    def __init__(self, shm_path: str) -> None:
        # Sized before it is opened, since once opened it may not be closed early (`close`),
        # not even when the map fails. While this process uses the index it only grows.
        if os.stat(shm_path).st_size < _MAPPED_BYTES:
            raise OSError(f"{shm_path} holds no index yet")
        self._descriptor = os.open(shm_path, os.O_RDONLY | os.O_CLOEXEC)
        self._map = mmap.mmap(self._descriptor, _MAPPED_BYTES, access=mmap.ACCESS_READ)
        self._seen = b""

    @classmethod
    def open(cls, database_path: str) -> CommitWatch | None:
        """None where there is no index to watch (not in WAL mode, or not opened yet): the
        caller then asks SQLite every time."""
        try:
            return cls(database_path + "-shm")
        except (OSError, ValueError):
            return None

    def changed(self) -> bool:
        """Whether the header moved since the last call (true on the first): anything
        committed since then, by any connection of any process, moves it."""
        header = self._map[:_HEADER_BYTES]
        if header == self._seen:
            return False
        self._seen = header
        return True

    def close(self) -> None:
        """Call once the process's SQLite connections to the file are closed. POSIX record
        locks belong to a process and a file, not to a descriptor: closing any descriptor of
        the index releases every lock the process holds on it, SQLite's included. Another
        process could then write while one of these connections does, or find the index unused
        and start it over (truncating the file under the processes that map it)."""
        self._map.close()
        os.close(self._descriptor)
