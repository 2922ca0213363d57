"""The newest page of a person costs the same with a hundred thousand events as with ten.

The statements are the ones the server runs (`page_statement`), planned and run by the real
engine on the shared test database, with many events written straight into it. On SQLite the
work is counted in virtual machine steps, on PostgreSQL in buffers touched; both are compared
between a person with ten events and one with a hundred thousand.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from openprofiles.domain.events import Cursor, EventQuery, decode_cursor
from openprofiles.store.sql_events import page_statement
from openprofiles.store.sqlite import _qmark
from openprofiles.store.urls import DatabaseUrl

from ..support import Api
from .events_support import email, event, profile_events, target, track, track_to, user_events

MANY = 100_000


def _statements(
    user_id: int, profile_id: str, later: Cursor | None = None
) -> dict[str, tuple[str, list[object]]]:
    """Pages of ten: the newest by user, by profile, by source and type, and one further on."""
    statements = {
        "user": page_statement(1, "user_id", user_id, EventQuery(size=10)),
        "profile": page_statement(1, "profile_id", profile_id, EventQuery(size=10)),
        "kind": page_statement(1, "user_id", user_id,
                               EventQuery(source="shop", type="bulk", size=10)),
    }
    if later is not None:
        statements["later"] = page_statement(1, "user_id", user_id,
                                             EventQuery(size=10, after=later))
    return statements


# Each page of the big person is compared with the same kind of page of the small one, all of
# ten events; the page further on with the small person's newest.
_COMPARED = {"user": "user", "profile": "profile", "kind": "kind", "later": "user"}
_INDEX = {"user": "events_user_time", "profile": "events_profile_time",
          "kind": "events_user_kind_time", "later": "events_user_time"}


def _seed(api: Api, profile_id: str, user_id: int) -> None:
    """MANY events of one person, one second apart in the year 2000, older than any other;
    one in a hundred of type `bulk`, the others `view`."""
    url = DatabaseUrl.parse(api.database_url)
    select = (
        "SELECT 1, {id}, ?, ?, 'shop', CASE WHEN n % 100 = 0 THEN 'bulk' ELSE 'view' END,"
        " NULL, '{{}}', 946684800000 + n * 1000, 0 FROM {rows}"
    )
    if url.engine == "sqlite":
        rows = (f"(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {MANY})"
                " SELECT n FROM s)")
        with sqlite3.connect(url.sqlite_path, timeout=30) as connection:
            connection.execute(
                "INSERT INTO events " + select.format(id="printf('%026d', n)", rows=rows),
                (profile_id, user_id),
            )
        return
    import psycopg

    with psycopg.connect(url.asyncpg) as connection:
        connection.execute(
            "INSERT INTO events " + select.format(
                id="lpad(n::text, 26, '0')", rows=f"generate_series(1, {MANY}) AS n"
            ).replace("%", "%%").replace("?", "%s"),
            (profile_id, user_id),
        )
        connection.execute("ANALYZE events")


def _sqlite_cost(path: str, sql: str, args: list[object]) -> tuple[list[str], int]:
    """The query plan, and the virtual machine steps (in hundreds) that running it took."""
    with sqlite3.connect(path) as connection:
        plan = [row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + _qmark(sql), args)]
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        connection.set_progress_handler(count, 100)
        connection.execute(_qmark(sql), args).fetchall()
        connection.set_progress_handler(None, 0)
    return plan, steps


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _postgres_cost(url: str, sql: str, args: list[object], mode: str) -> tuple[list[str], int]:
    """The plan's nodes (type and index), and the buffers running it touched, as PostgreSQL
    plans the statement for given values (custom) or for any values (generic, as a prepared
    statement may be planned after a few runs)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        cursor = psycopg.ClientCursor(connection)
        cursor.execute(f"SET plan_cache_mode = {mode}")
        cursor.execute("PREPARE page AS " + sql)
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE page("
            + ", ".join(["%s"] * len(args)) + ")", args,
        )
        raw = cursor.fetchone()[0]
    top = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    nodes = [f"{n['Node Type']} {n.get('Index Name', '')}".strip() for n in _nodes(top)]
    return nodes, top["Shared Hit Blocks"] + top["Shared Read Blocks"]


def test_the_newest_page_costs_the_same_at_any_volume(api: Api) -> None:
    with api.client() as client:
        small = track(client, target("shop", "customer", ("email", email())), event("shop", "bulk"))
        for _ in range(9):
            track_to(client, small["profile_id"], event("shop", "bulk"))
        big = track(client, target("shop", "customer", ("email", email())), event("shop", "bulk"))
        _seed(api, big["profile_id"], int(big["user_id"]))
        # The API reads the newest page of the big person, and pages far into it.
        first = user_events(client, big["user_id"], **{"page[size]": "10"})
        assert first["meta"]["has_more"] is True
        assert first["events"][1]["created_at"] == "2000-01-02T03:46:40.000Z"  # the last seeded
        deep = profile_events(client, big["profile_id"], **{
            "page[size]": "2", "filter[end_time]": "2000-01-01T00:00:02Z"})
        assert [e["created_at"] for e in deep["events"]] == [
            "2000-01-01T00:00:02.000Z", "2000-01-01T00:00:01.000Z"]
        later = profile_events(client, big["profile_id"], **{
            "page[size]": "1", "filter[end_time]": "2000-01-01T12:00:00Z"})["meta"]["after_cursor"]
        few = _statements(int(small["user_id"]), small["profile_id"])
        many = _statements(int(big["user_id"]), big["profile_id"],
                           decode_cursor(later, name="page[after]"))
        try:
            if api.engine == "sqlite":
                _check_sqlite(api, few, many)
            else:
                _check_postgres(api, few, many)
        finally:
            # Deleting the person deletes its hundred thousand events, in one transaction.
            deleted = client.delete(f"/api/v2/user_profiles/{big['profile_id']}")
            assert deleted.status_code == 204
            assert user_events(client, big["user_id"])["events"] == []


Statements = dict[str, tuple[str, list[object]]]


def _check_sqlite(api: Api, few: Statements, many: Statements) -> None:
    path = DatabaseUrl.parse(api.database_url).sqlite_path
    for name, (sql, args) in many.items():
        plan, steps = _sqlite_cost(path, sql, args)
        _, steps_few = _sqlite_cost(path, *few[_COMPARED[name]])
        assert len(plan) == 1 and "SEARCH events USING INDEX " + _INDEX[name] in plan[0], (
            name, plan)
        assert not any("TEMP B-TREE" in line for line in plan), (name, plan)
        assert steps <= steps_few + 2, (name, steps, steps_few)
    # The measure tells a scan from a page: counting the big person's events takes far more.
    sql, args = many["user"]
    _, scan = _sqlite_cost(path, "SELECT COUNT(*), SUM(LENGTH(properties)) FROM events"
                                 " WHERE account_id = $1 AND user_id = $2", args[:2])
    _, page = _sqlite_cost(path, sql, args)
    assert scan > 100 * max(page, 1)


def _check_postgres(api: Api, few: Statements, many: Statements) -> None:
    url = DatabaseUrl.parse(api.database_url).asyncpg
    for mode in ("force_custom_plan", "force_generic_plan"):
        for name, (sql, args) in many.items():
            nodes, buffers = _postgres_cost(url, sql, args, mode)
            _, buffers_few = _postgres_cost(url, *few[_COMPARED[name]], mode)
            assert any(n.startswith("Index Scan") and n.endswith(_INDEX[name])
                       for n in nodes), (mode, name, nodes)
            assert not any(n.startswith(("Sort", "Seq Scan", "Bitmap")) for n in nodes), (
                mode, name, nodes)
            # Buffers: the index's descent, then at most one table page per event read (11
            # for a page of ten), wherever the events lie; the small person's page is under
            # the same bound.
            assert buffers_few <= _PAGE_BUFFERS, (mode, name, buffers_few)
            assert buffers <= _PAGE_BUFFERS, (mode, name, buffers, buffers_few)
    _, scan = _postgres_cost(
        url, "SELECT COUNT(*) FROM events WHERE account_id = $1 AND user_id = $2",
        many["user"][1][:2], "force_custom_plan")
    assert scan > 20 * _PAGE_BUFFERS  # the measure tells a scan from a page


_PAGE_BUFFERS = 11 + 8
