"""Applies the schema migrations (Alembic) to a database given by its openprofiles URL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event

from .urls import DatabaseUrl

_HERE = Path(__file__).parent


def _config() -> Config:
    config = Config(str(_HERE / "alembic.ini"))
    config.set_main_option("script_location", str(_HERE / "migrations"))
    return config


def upgrade(url: DatabaseUrl) -> None:
    engine = create_engine(url.sqlalchemy)
    if url.engine == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA busy_timeout=30000")
    try:
        with engine.begin() as connection:
            if url.engine == "postgresql":
                # Several workers may start at once: one migrates, the others wait for it.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7165301)")
            config = _config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def current_revision(url: DatabaseUrl) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(url.sqlalchemy)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
