"""A worker that dies of a signal leaves its stack in the server's log and is replaced.

Run on SQLite only: what is tested is the server's processes, the same for either engine."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from ..support import Server, served, unique
from .profile_support import PROFILES, query


def _workers(server: Server) -> list[int]:
    """The worker processes: the server's children that run the application."""
    assert server.process is not None
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    pids = [int(pid) for pid in children.read_text().split()]
    return [pid for pid in pids
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]


def _wait_for(server: Server, text: str, times: int = 1) -> str:
    deadline = time.monotonic() + 20
    while (log := server.log()).count(text) < times:
        assert time.monotonic() < deadline, log
        time.sleep(0.1)
    return log


def test_a_worker_killed_by_a_fault_logs_its_stack_and_another_takes_its_place(
    work_dir: Path,
) -> None:
    with served("sqlite", work_dir, workers=2) as api:
        _wait_for(api.server, "Application startup complete", times=2)  # both handle faults
        workers = _workers(api.server)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGBUS)
        log = _wait_for(api.server, f"Child process [{workers[0]}] died")
        assert "Fatal Python error: Bus error" in log
        deadline = time.monotonic() + 20
        while len(_workers(api.server)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # Each request on a new connection, which either worker may take.
        with api.client(headers={"Connection": "close"}) as client:
            for n in range(8):
                identifier = query("shop", "customer", "external_id", unique(f"w{n}"))
                response = client.put(PROFILES, params={"identifier": identifier},
                                      json={"profile": {"attributes": {"n": n}}})
                assert response.status_code == 201, response.text
