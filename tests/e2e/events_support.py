"""Helpers shared by the end-to-end tests of the Events API: requests, checks, direct row counts."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx

from openprofiles.store.urls import DatabaseUrl

from ..support import Api, unique

TRACK = "/api/v2/user_profiles/events"
BY_QUERY = "/api/v2/user_profiles/events"


def email() -> str:
    return f"{unique('ev')}@example.com"


def event(source: str = "shop", event_type: str = "checkout", **fields: Any) -> dict[str, Any]:
    return {"source": source, "type": event_type, "properties": {"n": 1}, **fields}


def target(source: str, profile_type: str = "customer", *identifiers: tuple[str, str],
           **fields: Any) -> dict[str, Any]:
    return {"source": source, "type": profile_type,
            "identifiers": [{"type": t, "value": v} for t, v in identifiers], **fields}


def received(response: httpx.Response) -> dict[str, str]:
    """The body of a 202, checked to be exactly what EVENTS.md says."""
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"profile_id", "status", "user_id"}
    assert body["status"] == "received"
    assert isinstance(body["profile_id"], str) and len(body["profile_id"]) == 26
    assert isinstance(body["user_id"], str) and body["user_id"].isdigit()
    return body


def track(client: httpx.Client, profile: dict[str, Any], ev: dict[str, Any]) -> dict[str, str]:
    return received(client.post(TRACK, json={"profile": profile, "event": ev}))


def track_to(client: httpx.Client, profile_id: str, ev: dict[str, Any]) -> dict[str, str]:
    return received(client.post(f"/api/v2/user_profiles/{profile_id}/events", json={"event": ev}))


def profile_events(client: httpx.Client, profile_id: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/api/v2/user_profiles/{profile_id}/events", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def user_events(client: httpx.Client, user_id: str | int, **params: Any) -> dict[str, Any]:
    response = client.get(f"/api/v2/users/{user_id}/events", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def sql_rows(api: Api, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of a statement written with `?` parameters, read straight from the database."""
    url = DatabaseUrl.parse(api.database_url)
    if url.engine == "sqlite":
        with sqlite3.connect(url.sqlite_path) as connection:
            return list(connection.execute(sql, args).fetchall())
    import psycopg

    with psycopg.connect(url.asyncpg) as connection:
        return list(connection.execute(sql.replace("?", "%s"), args).fetchall())
