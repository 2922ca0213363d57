"""A database that cannot be reached gives 503 with Retry-After, and the server recovers alone.

On PostgreSQL the test database stops accepting connections and its sessions are terminated,
as in a restart or failover; on SQLite another process holds the file's write lock past the
busy timeout. Either way the answer is the API's error format, never a 500 or a hang, and the
same server answers normally once the database is back.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..support import PG_ADMIN_DSN, Api, served, unique
from .profile_support import PROFILES, assert_error, query


@pytest.fixture
def outage_api(engine: str, work_dir: Path) -> Iterator[Api]:
    with served(engine, work_dir, env={"OPENPROFILES_SQLITE_BUSY_TIMEOUT_MS": "300"}) as api:
        yield api


def _admin_sql(*statements: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


def assert_unavailable(response: httpx.Response) -> None:
    assert_error(response, 503, "ServiceUnavailable")
    assert int(response.headers["Retry-After"]) > 0


def wait_until_ok(client: httpx.Client, identifier: str) -> httpx.Response:
    deadline = time.monotonic() + 20
    while True:
        response = client.put(PROFILES, params={"identifier": identifier},
                              json={"profile": {"attributes": {"back": True}}})
        if response.status_code < 500 or time.monotonic() > deadline:
            return response
        assert_unavailable(response)
        time.sleep(0.2)


@contextlib.contextmanager
def database_away(api: Api) -> Iterator[None]:
    """PostgreSQL refuses connections and drops its sessions; SQLite's file stays locked."""
    name = api.server.database._pg_name
    if name is not None:
        _admin_sql(
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )
        try:
            yield
        finally:
            _admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        return
    holder = sqlite3.connect(api.database_url[len("sqlite:///"):], isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_database_away_gives_503_then_the_server_recovers(outage_api: Api) -> None:
    before = query("out", "c", "member_no", unique("m"))
    during = query("out", "c", "member_no", unique("m"))
    with outage_api.client() as client:
        assert client.put(PROFILES, params={"identifier": before},
                          json={"profile": {}}).status_code == 201
        with database_away(outage_api):
            started = time.monotonic()
            for _ in range(3):
                assert_unavailable(client.put(PROFILES, params={"identifier": during},
                                              json={"profile": {}}))
                read = client.get(PROFILES, params={"identifier": before})
                if outage_api.engine == "postgresql":
                    assert_unavailable(read)
                else:  # a writer's lock does not block readers in WAL mode
                    assert read.status_code == 200
            assert time.monotonic() - started < 15
        assert client.get(PROFILES, params={"identifier": during}).status_code == 404
        assert wait_until_ok(client, during).status_code == 201
        assert client.get(PROFILES, params={"identifier": before}).status_code == 200
    assert "Traceback" not in outage_api.server.log()
