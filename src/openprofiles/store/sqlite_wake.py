"""Tells the processes waiting for an SQLite file's write lock that it was just released.

SQLite has no way to wait for its lock other than sleeping and asking again. A worker that
finds the lock taken would ask every fraction of a millisecond, and under a write load those
attempts take processor time from the worker that holds the lock, on a machine whose cores
the server shares. Instead, each process that releases the lock writes a byte to a named pipe
beside the database file (`<file>-wake`), and a waiting process watches the pipe from its
event loop: it sleeps until a release, and then asks SQLite for the lock again.

A byte says only "ask again": the lock may have been taken again by then, by anyone, and the
waiter then goes back to watching. Bytes written while nobody waits stay in the pipe and wake
the next waiter once for nothing, which costs one attempt; a full pipe drops the byte, since
one already waiting there does the same. A process that writes to the file without this pipe
(the `sqlite3` shell, say) never signals, so a waiter also asks again after a short pause.
"""

from __future__ import annotations

import os
import stat

_SUFFIX = "-wake"
_DRAIN = 4096


class LockWake:
    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor

    @classmethod
    def open(cls, database_path: str) -> LockWake | None:
        """The pipe beside `database_path`, made if missing; None where there can be none (a
        read-only directory, a file system without named pipes, a file of that name that is not
        a pipe): the caller then polls."""
        path = database_path + _SUFFIX
        try:
            try:
                os.mkfifo(path, 0o600)
            except FileExistsError:
                pass
            # Opened for reading and writing, a pipe never blocks the open nor reports an end
            # of file, whoever else has it open.
            descriptor = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        if not stat.S_ISFIFO(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            return None
        return cls(descriptor)

    def fileno(self) -> int:
        return self._descriptor

    def released(self) -> None:
        """Wakes a process waiting for the lock, if any."""
        try:
            os.write(self._descriptor, b"\0")
        except BlockingIOError:  # full: enough wake-ups are already waiting to be read
            pass

    def drain(self) -> None:
        """Reads the wake-ups so far, before asking for the lock, so that a release after the
        attempt leaves a byte behind rather than being read along with the older ones."""
        try:
            while len(os.read(self._descriptor, _DRAIN)) == _DRAIN:
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self._descriptor)
