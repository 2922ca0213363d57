"""Applies the schema migrations (Alembic) to a database given by its openprofiles URL.

The same migrations run on both engines. Several workers or hosts may start at once: on
PostgreSQL an advisory lock makes the others wait for the one that migrates; on SQLite the
whole migration runs inside `BEGIN IMMEDIATE`, which holds the file's write lock, DDL included.
A PostgreSQL database that does not exist yet is created first, through the server's
maintenance database.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from .urls import DatabaseUrl

if TYPE_CHECKING:
    from alembic.config import Config

_HERE = Path(__file__).parent

# The newest revision in migrations/versions. A database already at it is recognised without
# loading Alembic and SQLAlchemy, which take most of a command's start-up time (0.7 of 1 s);
# every command that opens the database asks first. tests/e2e/test_migrations.py holds it to
# Alembic's own head.
HEAD = "0005"


def _config() -> Config:
    from alembic.config import Config

    config = Config(str(_HERE / "alembic.ini"))
    config.set_main_option("script_location", str(_HERE / "migrations"))
    return config


class DatabaseMissing(Exception):
    """The PostgreSQL database does not exist and cannot be created."""


def create_missing_database(url: DatabaseUrl) -> bool:
    """Creates the PostgreSQL database `url` names unless it exists; True if it created it."""
    import psycopg
    from psycopg import errors, sql

    target = url.sqlalchemy
    name = target.database
    if not name:
        raise DatabaseMissing("the PostgreSQL URL names no database")
    connect = dict(host=target.host, port=target.port, user=target.username,
                   password=target.password, connect_timeout=10, **target.query)
    try:
        with psycopg.connect(dbname=name, **connect):
            return False
    except errors.InvalidCatalogName:
        pass
    except psycopg.OperationalError as error:
        if "does not exist" not in str(error):
            raise
    last: Exception | None = None
    for maintenance in ("postgres", "template1"):
        try:
            with psycopg.connect(dbname=maintenance, autocommit=True, **connect) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                return True
        except errors.DuplicateDatabase:
            return False  # another process created it meanwhile
        except psycopg.Error as error:
            last = error
    raise DatabaseMissing(
        f"database {name!r} does not exist and could not be created: "
        f"{str(last).splitlines()[0] if last else 'no maintenance database'}"
    )


def upgrade(url: DatabaseUrl, revision: str = "head") -> None:
    if revision == "head" and stored_revision(url) == HEAD:
        return
    from alembic import command

    _migrate(url, lambda config: command.upgrade(config, revision))


def downgrade(url: DatabaseUrl, revision: str) -> None:
    from alembic import command

    _migrate(url, lambda config: command.downgrade(config, revision))


def stored_revision(url: DatabaseUrl) -> str | None:
    """The revision recorded in the database, read without Alembic; None where there is none,
    or where it cannot be read so (a missing file or database, an unreachable server): the
    migration then finds out, and says why."""
    try:
        if url.engine == "sqlite":
            if not os.path.isfile(url.sqlite_path):
                return None
            with closing(sqlite3.connect(url.sqlite_path, timeout=30)) as connection:
                row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        else:
            import psycopg

            with psycopg.connect(url.asyncpg, connect_timeout=10) as connection:
                row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except Exception:  # noqa: BLE001 - any failure means: let the migration decide
        return None
    return str(row[0]) if row else None


def _migrate(url: DatabaseUrl, action: Callable[[Config], None]) -> None:
    from sqlalchemy import create_engine, event

    if url.engine == "postgresql":
        create_missing_database(url)
    engine = create_engine(url.sqlalchemy)
    if url.engine == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA busy_timeout=30000")
            # The driver's own transaction handling would leave DDL outside any transaction.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection):  # type: ignore[no-untyped-def]
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        with engine.begin() as connection:
            if url.engine == "postgresql":
                # Several workers may start at once: one migrates, the others wait for it.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7165301)")
            config = _config()
            config.attributes["connection"] = connection
            action(config)
    finally:
        engine.dispose()
