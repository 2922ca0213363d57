"""`bench/run.py` pools the latencies of a scenario's rounds into one distribution, read from
what bench/lua/common.lua prints after each wrk run."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _bench_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


run = _bench_run()


def _round(requests: int, latency_ms: float) -> Any:
    """A round whose every request took `latency_ms`."""
    points = [q / 10 for q in range(1, 1000)] + [99.91, 99.95, 99.99]
    return run.Measure(1.0, latency_ms, latency_ms, 0, requests, [(q, latency_ms) for q in points])


def _spread(requests: int, start_ms: float) -> Any:
    """A round whose latencies rise evenly from `start_ms`, one millisecond a percent."""
    points = [q / 10 for q in range(1, 1000)]
    return run.Measure(1.0, 0, 0, 0, requests, [(q, start_ms + q) for q in points])


def test_one_round_gives_its_own_percentiles() -> None:
    measure = _spread(10_000, 0.0)
    assert run.pooled_percentile([measure], 50) == pytest.approx(50.0)
    assert run.pooled_percentile([measure], 99) == pytest.approx(99.0)


def test_rounds_weigh_as_many_requests_as_they_made() -> None:
    # 98.5% of the requests at 1 ms and 1.5% at 30 ms: the pooled p99 is 30 ms, where the
    # worst round's p99 would say 30 ms and the median round's 1 ms whatever their sizes.
    fast, slow = _round(98_500, 1.0), _round(1_500, 30.0)
    assert run.pooled_percentile([fast, slow], 99) == 30.0
    assert run.pooled_percentile([fast, slow], 50) == 1.0
    # 99.5% at 1 ms: one slow round of few requests no longer decides the p99.
    fast, slow = _round(99_500, 1.0), _round(500, 30.0)
    assert run.pooled_percentile([fast, slow], 99) == 1.0


def test_combined_pools_rounds_and_averages_rates() -> None:
    first, second = _spread(1_000, 0.0), _spread(1_000, 100.0)
    first.rate, second.rate = 1_000.0, 3_000.0
    combined = run._combined([first, second])
    assert combined.rate == 2_000.0
    assert combined.requests == 2_000
    assert combined.p50_ms == pytest.approx(99.9)  # the slowest of the first round
    assert combined.p99_ms == pytest.approx(198.0)


def test_rounds_without_a_distribution_take_the_median_p50_and_worst_p99() -> None:
    rounds = [run.Measure(1.0, p50, p99, 0, 100) for p50, p99 in ((1.0, 5.0), (2.0, 9.0), (3.0, 4.0))]
    combined = run._combined(rounds)
    assert (combined.p50_ms, combined.p99_ms) == (2.0, 9.0)


class _Profile(BaseHTTPRequestHandler):
    """Answers every request with a profile, and keeps the paths it was asked for."""

    paths: list[str] = []

    def _answer(self, status: int) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.paths.append(self.path)
        body = b'{"profile": {}}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(200)

    def do_PUT(self) -> None:
        self._answer(201)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # wrk closes its connections at the end of the run, mid-answer


def _drive(script: str, keys: str, tmp_path: Path, *, connections: int) -> Any:
    """One second of wrk running `script` with one thread against `_Profile`."""
    _Profile.paths = []
    server = _Server(("127.0.0.1", 0), _Profile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = tmp_path / "keys.txt"
    path.write_text(keys)
    try:
        target = run.Server(args=[])
        target.port = server.server_address[1]
        args = type("Args", (), {"threads": 1, "connections": connections})()
        return run.wrk(target, script, path, "Basic x", args, 1)
    finally:
        server.shutdown()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk (Debian's package) is not installed")
def test_wrk_prints_the_distribution_that_is_pooled(tmp_path: Path) -> None:
    measure = _drive("get_id.lua", "01ARZ3NDEKTSV4RRFFQ69G5FAV\n", tmp_path, connections=2)
    assert measure.requests > 0 and measure.errors == 0
    assert len(measure.quantiles) == 1008
    assert [q for q, _ in measure.quantiles] == sorted(q for q, _ in measure.quantiles)
    assert [ms for _, ms in measure.quantiles] == sorted(ms for _, ms in measure.quantiles)
    # Pooled alone, the run's own distribution gives back what wrk reports, to its rounding.
    assert run.pooled_percentile([measure], 99) == pytest.approx(measure.p99_ms, rel=0.05, abs=0.02)


def test_errors_tell_timeouts_from_other_answers() -> None:
    rounds = [run.Measure(1.0, 1.0, 1.0, errors, 100, timeouts=timeouts)
              for errors, timeouts in ((2, 1), (1, 0))]
    combined = run._combined(rounds)
    assert (combined.errors, combined.timeouts) == (3, 1)
    assert run._errors(combined) == "3 (1 timed out)"
    assert run._errors(rounds[1]) == "1"


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk (Debian's package) is not installed")
def test_put_create_asks_for_new_keys_in_random_order(tmp_path: Path) -> None:
    """Every create is for a key not asked before, and the keys do not come in index order:
    new keys that follow one another would all land at one end of each index, which real
    ones do not."""
    _drive("put_create.lua", "unused\n", tmp_path, connections=1)
    emails = [path.rsplit(":", 1)[1] for path in _Profile.paths]
    assert len(emails) > 50
    assert all(path.startswith("/api/v2/user_profiles?identifier=benchnew:customer:email:")
               for path in _Profile.paths)
    assert len(set(emails)) == len(emails)
    # One connection's keys, in the order asked: a count alone would make them ascend.
    ascending = sum(a < b for a, b in zip(emails, emails[1:]))
    assert 0.25 < ascending / (len(emails) - 1) < 0.75


def _resident_bytes(path: Path) -> int:
    output = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                            check=True, capture_output=True, text=True).stdout
    return int(output.split()[0])


@pytest.mark.skipif(shutil.which("fincore") is None, reason="needs util-linux's fincore")
def test_page_in_reads_a_database_and_its_log_into_the_cache(tmp_path: Path) -> None:
    database = tmp_path / "big.db"
    database.write_bytes(os.urandom(8 << 20))
    log = tmp_path / "big.db-wal"
    log.write_bytes(os.urandom(1 << 20))
    for path in (database, log):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)  # only clean pages can be dropped
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)
    assert _resident_bytes(database) < 8 << 20
    built = run.Built(f"sqlite:///{database}", 1, 1.0, 1.0, 1.0, "", tmp_path, tmp_path)
    elsewhere = run.Built("postgresql://postgres@127.0.0.1:1/none", 1, 1.0, 1.0, 1.0, "",
                          tmp_path, tmp_path)
    run.page_in(built, elsewhere)
    assert _resident_bytes(database) == 8 << 20
    assert _resident_bytes(log) == 1 << 20


def test_page_in_needs_no_log(tmp_path: Path) -> None:
    database = tmp_path / "small.db"
    database.write_bytes(b"\0" * 4096)
    run.page_in(run.Built(f"sqlite:///{database}", 1, 1.0, 1.0, 1.0, "", tmp_path, tmp_path))


def test_a_loop_of_additions_is_timed() -> None:
    assert 0 < run.loop_seconds(200_000) < run.loop_seconds(2_000_000)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk (Debian's package) is not installed")
def test_the_machine_line_gives_the_loop_before_and_after_the_runs() -> None:
    line = run.machine([3.214, 3.3])
    assert f"{os.cpu_count()} cores" in line
    assert line.endswith("a loop of 20 million additions in 3.21 s, then 3.30 s")
