"""Fixtures: every end-to-end test runs once per storage engine against a real server.

PostgreSQL tests need the server at 127.0.0.1:5432; without it they skip, except under
CI=true, where a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from .support import RUNNING, Api, postgres_available, served

ENGINES = ["sqlite", "postgresql"]
_pg_ok: bool | None = None


def require_engine(engine: str) -> None:
    global _pg_ok
    if engine != "postgresql":
        return
    if _pg_ok is None:
        _pg_ok = postgres_available()
    if not _pg_ok:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required under CI=true")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    """A failing test's report ends with what each running server printed: a worker that
    died or refused shows there, and nowhere else."""
    report = yield
    if report.failed and RUNNING:
        # The server's supervisor looks at its workers twice a second: long enough for it
        # to log one that died just before the failure.
        time.sleep(1)
        for server in RUNNING:
            tail = "\n".join(server.log().splitlines()[-40:])
            report.sections.append((f"server on port {server.port}", tail or "(nothing)"))
    return report


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("openprofiles")


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    require_engine(request.param)
    return request.param


@pytest.fixture(scope="session")
def postgresql() -> str:
    """For tests of what only PostgreSQL has (replicas, creating a database): they run once."""
    require_engine("postgresql")
    return "postgresql"


@pytest.fixture(scope="session")
def api(engine: str, work_dir: Path) -> Iterator[Api]:
    """One server per engine for the whole session; tests keep apart by unique identifiers."""
    with served(engine, work_dir) as started:
        yield started


@pytest.fixture
def client(api: Api) -> Iterator[httpx.Client]:
    with api.client() as c:
        yield c


@pytest.fixture
def fresh_api(engine: str, work_dir: Path) -> Iterator[Callable[..., Api]]:
    """Starts servers on new, empty databases, for tests of account-wide limits or crashes."""
    with contextlib.ExitStack() as servers:
        def start(workers: int = 1, env: dict[str, str] | None = None) -> Api:
            return servers.enter_context(served(engine, work_dir, workers=workers, env=env))

        yield start
