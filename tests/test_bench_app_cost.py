"""`bench/app_cost.py`, the in-process measure of the application's cost per request, runs
from a fresh database and answers every request it times with a success."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not Path("/usr/bin/time").exists(), reason="the benchmark's build times the "
                    "import with /usr/bin/time (Debian's package `time`)")
def test_app_cost_times_each_scenario_on_a_database_it_builds(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "app_cost.py"), "--profiles", "300",
         "--requests", "200", "--rounds", "2", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["GET by id", "GET by identifier", "PUT create"]
    for line in lines:
        cost = re.search(r": ([\d.]+) µs a request \(best of 2 rounds of 200; statuses \{(\d+): 400\}\)",
                         line)
        assert cost is not None, line
        assert float(cost.group(1)) > 0
        assert cost.group(2) in {"200", "201"}
