"""The queries of the Events API, written once for both engines (see `sql.py`).

Pages are read by keyset: the rows past a cursor's `(created_at, id)`, in index order, with
`LIMIT size + 1`. Every list query is an equality on the leading columns of an index that ends
in `(created_at, id)`, so the database reads one page's worth of index entries and sorts
nothing, however many events the person has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from ..domain.events import Event, EventQuery

if TYPE_CHECKING:
    from .sql import Driver

_properties_decoder = msgspec.json.Decoder(dict[str, Any])

_EVENT_COLUMNS = (
    "id, profile_id, user_id, source, type, description, properties, created_at, received_at"
)


def _event_from_row(row: Any) -> Event:
    return Event(
        id=row[0], profile_id=row[1], user_id=row[2], source=row[3], type=row[4],
        description=row[5], properties=_properties_decoder.decode(row[6]),
        created_at=row[7], received_at=row[8],
    )


def page_statement(
    account_id: int, owner_column: str, owner: object, query: EventQuery
) -> tuple[str, list[object]]:
    """The statement reading one page of a user's (`owner_column` "user_id") or a profile's
    ("profile_id") events: up to `query.size + 1` rows, newest first, or for `page[before]`
    oldest first from its cursor (the caller turns that page round)."""
    assert owner_column in ("user_id", "profile_id")
    args: list[object] = [account_id, owner]

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    where = ["account_id = $1", f"{owner_column} = $2"]
    if query.source is not None:
        where.append(f"source = {param(query.source)}")
    if query.type is not None:
        where.append(f"type = {param(query.type)}")
    # A cursor and a time bound on the same side: keep only the tighter one, so that the index
    # range starts at it (a database uses one of two bounds on a side, not the tighter value).
    after, before = query.after, query.before
    start, end = query.start_time, query.end_time
    if after is not None:
        if end is not None and after.created_at > end:
            after = None
        else:
            end = None
    if before is not None:
        if start is not None and before.created_at < start:
            before = None
        else:
            start = None
    if start is not None:
        where.append(f"created_at >= {param(start)}")
    if end is not None:
        where.append(f"created_at <= {param(end)}")
    if after is not None:
        where.append(f"(created_at, id) < ({param(after.created_at)}, {param(after.id)})")
    if before is not None:
        where.append(f"(created_at, id) > ({param(before.created_at)}, {param(before.id)})")
    direction = "ASC" if query.before is not None else "DESC"
    sql = (
        f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)}"
        f" ORDER BY created_at {direction}, id {direction} LIMIT {param(query.size + 1)}"
    )
    return sql, args


class EventQueries:
    """Mixed into `SqlTransaction`: implements the event part of `store.base.Transaction`."""

    driver: Driver
    account_id: int

    async def insert_event(self, event: Event, properties_json: bytes) -> None:
        await self.driver.execute(
            f"INSERT INTO events (account_id, {_EVENT_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            self.account_id, event.id, event.profile_id, event.user_id, event.source, event.type,
            event.description, properties_json.decode(), event.created_at, event.received_at,
        )

    async def user_events(self, user_id: int, query: EventQuery) -> list[Event]:
        """Up to `query.size + 1` of the user's events, in the direction the query reads."""
        return await self._page("user_id", user_id, query)

    async def profile_events(self, profile_id: str, query: EventQuery) -> list[Event]:
        """Up to `query.size + 1` of the profile's events, in the direction the query reads."""
        return await self._page("profile_id", profile_id, query)

    async def _page(self, owner_column: str, owner: object, query: EventQuery) -> list[Event]:
        sql, args = page_statement(self.account_id, owner_column, owner, query)
        return [_event_from_row(row) for row in await self.driver.fetch(sql, *args)]

    # The (source, type) pairs of events, counted against the account's limits

    async def has_event_kind(self, source: str, event_type: str) -> bool:
        row = await self.driver.fetchrow(
            "SELECT 1 FROM event_kinds WHERE account_id = $1 AND source = $2 AND type = $3",
            self.account_id, source, event_type,
        )
        return row is not None

    async def event_kind_counts(self, source: str) -> tuple[bool, int, int]:
        """Whether `source` is known, and how many event sources and (source, type) pairs the
        account has."""
        row = await self.driver.fetchrow(
            "SELECT COUNT(*), COUNT(DISTINCT source),"
            " COALESCE(SUM(CASE WHEN source = $2 THEN 1 ELSE 0 END), 0)"
            " FROM event_kinds WHERE account_id = $1",
            self.account_id, source,
        )
        return int(row[2]) > 0, int(row[1]), int(row[0])

    async def add_event_kind(self, source: str, event_type: str) -> None:
        await self.driver.execute(
            "INSERT INTO event_kinds (account_id, source, type) VALUES ($1, $2, $3)",
            self.account_id, source, event_type,
        )
