"""The same migrations on both engines: concurrent starts, a missing database, the keys.

The scale-out path (docs/scaling.md) relies on every primary and unique key leading with
`account_id`; the schema test holds the migrations to it on both engines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from openprofiles.store.migrate import HEAD, _config, stored_revision
from openprofiles.store.urls import DatabaseUrl

from ..support import OPENPROFILES, PG_ADMIN_DSN, Database, cli

# Not keyed by account: the accounts themselves, and Alembic's bookkeeping.
UNKEYED = {"accounts", "alembic_version"}


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def schema(url: str) -> dict[str, object]:
    engine = create_engine(DatabaseUrl.parse(url).sqlalchemy)
    try:
        found = inspect(engine)
        return {
            table: {
                "columns": sorted(c["name"] for c in found.get_columns(table)),
                "primary": found.get_pk_constraint(table)["constrained_columns"],
                "unique": sorted(u["column_names"] for u in found.get_unique_constraints(table)),
                "indexes": sorted(i["column_names"] for i in found.get_indexes(table)
                                  if not i.get("unique")),
            }
            for table in found.get_table_names()
        }
    finally:
        engine.dispose()


def test_concurrent_migrations_of_a_new_database_all_succeed(engine: str, work_dir: Path) -> None:
    database = Database.create(engine, work_dir)
    try:
        env = {**os.environ, "OPENPROFILES_DATABASE_URL": database.url}
        runs = [subprocess.Popen([*OPENPROFILES, "migrate"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for run in runs:
            out, err = run.communicate(timeout=120)
            assert run.returncode == 0, err
            assert "Traceback" not in err
        assert stored_revision(DatabaseUrl.parse(database.url)) == head()
        cli(database.url, "migrate")
        assert stored_revision(DatabaseUrl.parse(database.url)) == head()
    finally:
        database.drop()


def test_every_key_leads_with_account_id_and_both_engines_agree(engine: str, work_dir: Path) -> None:
    database = Database.create(engine, work_dir)
    reference = Database.create("sqlite", work_dir)
    try:
        cli(database.url, "migrate")
        cli(reference.url, "migrate")
        tables = schema(database.url)
        assert tables == schema(reference.url)
        assert {"users", "profiles", "profile_identifiers", "events"} <= set(tables)
        for table, parts in tables.items():
            if table in UNKEYED:
                continue
            keys = [parts["primary"], *parts["unique"], *parts["indexes"]]  # type: ignore[list-item]
            for key in keys:
                assert key[0] == "account_id", (table, key)
    finally:
        database.drop()
        reference.drop()


def test_migrate_creates_a_missing_postgresql_database(postgresql: str) -> None:  # noqa: ARG001
    import psycopg

    name = f"openprofiles_test_{uuid.uuid4().hex[:12]}"
    url = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    try:
        assert cli(url, "migrate").returncode == 0
        assert stored_revision(DatabaseUrl.parse(url)) == head()
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    refused = cli(f"postgresql://no_such_role_{uuid.uuid4().hex[:6]}@127.0.0.1:5432/{name}",
                  "migrate", check=False)
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "cannot migrate postgresql database" in refused.stderr


def test_the_head_known_without_alembic_is_alembics_head() -> None:
    assert HEAD == head()


def test_a_database_at_the_head_is_recognised_without_loading_alembic(
    engine: str, work_dir: Path
) -> None:
    # Every command migrates first; on a current database that must cost no Alembic import.
    database = Database.create(engine, work_dir)
    probe = ("import sys; from openprofiles.store.migrate import upgrade, stored_revision;"
             " from openprofiles.store.urls import DatabaseUrl;"
             " url = DatabaseUrl.parse(sys.argv[1]); before = stored_revision(url); upgrade(url);"
             " print(before, stored_revision(url), 'alembic' in sys.modules)")
    try:
        first = subprocess.run([sys.executable, "-c", probe, database.url], check=True,
                               capture_output=True, text=True)
        assert first.stdout.split() == ["None", HEAD, "True"]
        again = subprocess.run([sys.executable, "-c", probe, database.url], check=True,
                               capture_output=True, text=True)
        assert again.stdout.split() == [HEAD, HEAD, "False"]
    finally:
        database.drop()
