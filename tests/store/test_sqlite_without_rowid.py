"""Migration 0004 rebuilds SQLite's hottest tables by their keys, keeping every row and the
events that point at profiles, and can be undone."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from openprofiles.domain.events import parse_event
from openprofiles.domain.identifiers import IdentifierQuery
from openprofiles.domain.limits import Limits
from openprofiles.domain.profile import parse_profile_input
from openprofiles.service import events, profiles
from openprofiles.service.users import DEFAULT_ACCOUNT_ID
from openprofiles.store.migrate import downgrade, upgrade
from openprofiles.store.sqlite import SqliteStore
from openprofiles.store.urls import DatabaseUrl

REBUILT = ("profiles", "profile_identifiers", "users", "user_identities")
COUNTED = (*REBUILT, "events")


def _fill(path: str) -> None:
    async def scenario() -> None:
        store = SqliteStore(path)
        try:
            for n in range(50):
                query = IdentifierQuery.parse(f"shop:customer:email:u{n}@example.com")
                body = parse_profile_input({
                    "identifiers": [{"type": "phone_number", "value": f"+1555000{n:04d}"}],
                    "attributes": {"n": n},
                })
                written = await profiles.put_by_query(store, DEFAULT_ACCOUNT_ID, Limits(), query, body)
                await events.track_for_profile(
                    store, DEFAULT_ACCOUNT_ID, written.profile.id,
                    parse_event({"source": "shop", "type": "visit", "properties": {"n": n}}),
                )
        finally:
            await store.close()

    asyncio.run(scenario())


def _snapshot(path: str) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as db:
        return {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in COUNTED}


def _without_rowid(path: str) -> dict[str, bool]:
    with sqlite3.connect(path) as db:
        return {table: db.execute("SELECT sql FROM sqlite_schema WHERE name = ?", (table,))
                .fetchone()[0].rstrip().endswith("WITHOUT ROWID") for table in REBUILT}


def _healthy(path: str) -> None:
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_rebuild_keeps_every_row_and_event_and_can_be_undone(tmp_path: Path) -> None:
    path = str(tmp_path / "rebuild.db")
    url = DatabaseUrl.parse(f"sqlite:///{path}")
    upgrade(url, "0003")
    _fill(path)
    before = _snapshot(path)
    assert len(before["events"]) == 50 and len(before["profiles"]) == 50
    assert not any(_without_rowid(path).values())

    upgrade(url)
    assert all(_without_rowid(path).values())
    assert _snapshot(path) == before
    _healthy(path)

    downgrade(url, "0003")
    assert not any(_without_rowid(path).values())
    assert _snapshot(path) == before
    _healthy(path)


def test_rebuilt_tables_serve_reads_and_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "serve.db")
    upgrade(DatabaseUrl.parse(f"sqlite:///{path}"))
    _fill(path)

    async def scenario() -> tuple[str, int]:
        store = SqliteStore(path)
        try:
            query = IdentifierQuery.parse("shop:customer:phone_number:+15550000007")
            found = await profiles.get_by_query(store, DEFAULT_ACCOUNT_ID, query)
            again = await profiles.get_by_id(store, DEFAULT_ACCOUNT_ID, found.id)
            await profiles.delete_by_id(store, DEFAULT_ACCOUNT_ID, found.id)
            return json.loads(again.attributes_json)["n"], len(_snapshot(path)["events"])
        finally:
            await store.close()

    n, events_left = asyncio.run(scenario())
    assert n == 7
    assert events_left == 49  # the deleted profile's event went with it
    _healthy(path)
