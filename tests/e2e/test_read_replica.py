"""An optional read replica serves the GET paths that tolerate lag; nothing else reads it.

A real streaming replica cannot be set up by a test, so a second database stands in for one
that has fallen far behind: whatever the GETs see of it, and whatever still works without
it (credentials, writes and the reads that decide them), shows which queries go where.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support import Api, Database, Server, cli, create_user, unique
from .profile_support import PROFILES, query


@pytest.fixture
def primary(postgresql: str, work_dir: Path) -> Iterator[Database]:
    database = Database.create(postgresql, work_dir)
    cli(database.url, "migrate")
    yield database
    database.drop()


def serve(primary: Database, read_url: str, work_dir: Path) -> tuple[Server, Api]:
    admin = create_user(primary.url, "admin")
    server = Server(primary, env={"OPENPROFILES_READ_DATABASE_URL": read_url}).start(work_dir)
    return server, Api(server, admin)


def test_a_replica_of_the_same_database_changes_nothing(primary: Database, work_dir: Path) -> None:
    server, api = serve(primary, primary.url, work_dir)
    try:
        identifier = query("rep", "c", "member_no", unique("m"))
        with api.client() as client:
            created = client.put(PROFILES, params={"identifier": identifier},
                                 json={"profile": {"attributes": {"a": 1}}})
            assert created.status_code == 201
            profile = created.json()["profile"]
            assert client.get(PROFILES, params={"identifier": identifier}).json()["profile"] == profile
            assert client.get(f"{PROFILES}/{profile['id']}").json()["profile"] == profile
            listed = client.get(f"/api/v2/users/{profile['user_id']}/profiles").json()["profiles"]
            assert listed == [profile]
    finally:
        server.stop()


def test_only_lag_tolerant_reads_go_to_the_replica(primary: Database, work_dir: Path) -> None:
    lagging = Database.create("postgresql", work_dir)
    cli(lagging.url, "migrate")
    server, api = serve(primary, lagging.url, work_dir)
    try:
        identifier = query("rep", "c", "member_no", unique("m"))
        with api.client() as client:
            # The admin's token exists only on the primary: authentication reads the primary.
            created = client.put(PROFILES, params={"identifier": identifier},
                                 json={"profile": {"attributes": {"a": 1}}})
            assert created.status_code == 201, created.text
            profile = created.json()["profile"]
            # A write reads what it decides on from the primary, however far the replica lags.
            replaced = client.put(PROFILES, params={"identifier": identifier},
                                  json={"profile": {"attributes": {"a": 2}}})
            assert replaced.status_code == 200, replaced.text
            assert replaced.json()["profile"]["id"] == profile["id"]
            # The GETs read the replica, which has not seen the profile yet.
            assert client.get(PROFILES, params={"identifier": identifier}).status_code == 404
            assert client.get(f"{PROFILES}/{profile['id']}").status_code == 404
            assert client.get(f"/api/v2/users/{profile['user_id']}/profiles").status_code == 404
    finally:
        server.stop()
        lagging.drop()


def test_read_database_needs_postgresql(work_dir: Path) -> None:
    url = f"sqlite:///{work_dir / 'replica-check.db'}"
    result = cli(url, "serve", "--read-database", url, check=False)
    assert result.returncode != 0
    assert "--read-database needs PostgreSQL" in result.stderr
