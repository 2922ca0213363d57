"""PUTs by identifier that reach a server together end as they end one by one: the creates
the stored records decide at a glance, and the replaces that gain no identifier, are written
in one go (`service.bulk.together`), the others by their own units after them."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openprofiles.domain.errors import ProfilesError
from openprofiles.domain.identifiers import IdentifierQuery
from openprofiles.domain.limits import Limits
from openprofiles.domain.profile import parse_profile_input
from openprofiles.service import profiles
from openprofiles.service.users import DEFAULT_ACCOUNT_ID
from openprofiles.store.migrate import upgrade
from openprofiles.store.sqlite import SqliteStore
from openprofiles.store.urls import DatabaseUrl

LIMITS = Limits(max_profiles_per_user=2)
Put = tuple[str, dict[str, Any]]


def put(source: str, profile_type: str, *identifiers: tuple[str, str], **extra: Any) -> Put:
    """A PUT whose query is its first identifier."""
    query = f"{source}:{profile_type}:{identifiers[0][0]}:{identifiers[0][1]}"
    return query, {"identifiers": [{"type": t, "value": v} for t, v in identifiers], **extra}


STORED = [
    put("shop", "customer", ("email", "a@example.com")),                          # user A
    put("shop", "customer", ("email", "b@example.com")),                          # user B
    put("shop", "customer", ("email", "c@example.com")),                          # user C
    put("crm", "contact", ("email", "c@example.com")),                            # C at the limit
    put("web", "visitor", ("cookie", "w0")),
]
GROUP = [
    put("shop", "customer", ("email", "new1@example.com")),                       # new user
    put("shop", "customer", ("email", "new2@example.com"), ("external_id", "N-2"),
        name="Nan"),                                                               # new, external id
    put("crm", "contact", ("email", "A@Example.com"), ("phone_number", "+1")),    # joins A, gains +1
    put("web", "visitor", ("cookie", "w1"), ("email", "b@example.com")),          # joins B
    put("web", "visitor", ("cookie", "w2"), ("phone_number", "+1")),              # A through +1: over
    put("shop", "customer", ("email", "a@example.com"), attributes={"v": 2}),     # replace
    put("app", "device", ("device_id", "d1")),                                    # a new kind
    put("shop", "customer", ("email", "new1@example.com"), attributes={"v": 3}),  # after the first
    put("shop", "customer", ("email", "dup@example.com"), ("email", "b@example.com")),  # held
    put("web", "visitor", ("cookie", "w3"), ("email", "c@example.com")),          # C: over the limit
    put("crm", "contact", ("email", "new3@example.com"), ("phone_number", "+3")),  # new user
]


def _outcome(result: object) -> object:
    if isinstance(result, ProfilesError):
        return result.code
    assert isinstance(result, profiles.Written), result
    return "created" if result.created else "replaced"


def _apply(path: str, puts: list[Put], *, together: bool) -> list[object]:
    async def one(store: SqliteStore, query: str, body: dict[str, Any]) -> profiles.Written:
        return await profiles.put_by_query(
            store, DEFAULT_ACCOUNT_ID, LIMITS, IdentifierQuery.parse(query),
            parse_profile_input(body),
        )

    async def scenario() -> list[object]:
        store = SqliteStore(path)
        try:
            if together:
                results = await asyncio.gather(*(one(store, q, b) for q, b in puts),
                                               return_exceptions=True)
            else:
                results = []
                for query, body in puts:
                    try:
                        results.append(await one(store, query, body))
                    except ProfilesError as error:
                        results.append(error)
            return [_outcome(result) for result in results]
        finally:
            await store.close()

    return asyncio.run(scenario())


def _stored(path: str) -> tuple[list[tuple[Any, ...]], set[frozenset[Any]]]:
    """The profiles as their PUTs made them, and what each user holds: its profiles (by
    source, type and first identifier), identities and external id."""
    with sqlite3.connect(path) as other_process:
        rows = other_process.execute(
            "SELECT p.source, p.type, p.name, p.identifiers, p.attributes, p.user_id,"
            " u.external_id FROM profiles p JOIN users u ON u.account_id = p.account_id"
            " AND u.id = p.user_id ORDER BY p.source, p.type, p.identifiers").fetchall()
        identities = other_process.execute(
            "SELECT user_id, type, value, is_primary FROM user_identities").fetchall()
    profiles_by_user: dict[int, set[Any]] = {}
    for source, profile_type, _, identifiers, _, user_id, external_id in rows:
        profiles_by_user.setdefault(user_id, {("external_id", external_id)}).add(
            (source, profile_type, identifiers))
    for user_id, kind, value, primary in identities:
        profiles_by_user.setdefault(user_id, set()).add((kind, value, primary))
    return [row[:5] for row in rows], {frozenset(held) for held in profiles_by_user.values()}


@pytest.fixture
def new_file(tmp_path: Path) -> Callable[[str], str]:
    def make(name: str) -> str:
        file = tmp_path / f"{name}.db"
        upgrade(DatabaseUrl.parse(f"sqlite:///{file}"))
        return str(file)

    return make


@dataclass
class BothWays:
    one_by_one: list[object]
    as_group: list[object]
    settled: int  # of the group's PUTs, those its own run wrote
    alone: str
    together: str


def _both_ways(new_file: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
               stored: list[Put], group: list[Put]) -> BothWays:
    """`stored` PUT one by one into two new files, then `group` one by one into the first and
    all at once into the second."""
    settled: list[int] = []
    run = profiles._put_together

    async def counted(tx: Any, items: list[Any]) -> list[Any]:
        results = await run(tx, items)
        settled.append(sum(result is not None for result in results))
        return results

    alone, together = new_file("alone"), new_file("together")
    for path in (alone, together):
        assert _apply(path, stored, together=False) == ["created"] * len(stored)
    monkeypatch.setattr(profiles, "_put_together", counted)
    one_by_one = _apply(alone, group, together=False)
    as_group = _apply(together, group, together=True)
    return BothWays(one_by_one, as_group, settled[-1], alone, together)


def test_puts_that_arrive_together_end_as_they_end_one_by_one(
    new_file: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran = _both_ways(new_file, monkeypatch, STORED, GROUP)
    assert ran.one_by_one == ran.as_group == [
        "created", "created", "created", "created", "ProfileLimitExceeded", "replaced",
        "created", "replaced", "IdentifierInUse", "ProfileLimitExceeded", "created",
    ]
    # The group settled its four creates, the one joining B and the replace of A's profile,
    # and left the others to their units.
    assert ran.settled == 6
    assert _stored(ran.alone) == _stored(ran.together)
    names = {row[3]: row[2] for row in _stored(ran.together)[0]}
    assert names['[{"type":"email","value":"new2@example.com"},{"type":"external_id","value":"N-2"}]'] \
        == "Nan"


def test_puts_sharing_a_key_in_one_group_run_one_after_the_other(
    new_file: Callable[[str], str],
) -> None:
    path = new_file("shared")
    same = put("shop", "customer", ("email", "same@example.com"))
    assert _apply(path, [same, same, same], together=True) == ["created", "replaced", "replaced"]
    rows, users = _stored(path)
    assert len(rows) == 1 and len(users) == 1


REPLACED = [
    put("shop", "customer", ("email", "r1@example.com"), ("phone_number", "+10")),
    put("shop", "customer", ("email", "r2@example.com"), ("phone_number", "+20")),
    put("shop", "customer", ("email", "r3@example.com")),
    put("shop", "customer", ("email", "r4@example.com"), ("phone_number", "+40")),
    put("shop", "customer", ("email", "r5@example.com")),
]
REPLACES = [
    # Both find r1's profile, so both go to their units, which run after the group: the
    # first drops +10, and the second then creates a profile for it.
    put("shop", "customer", ("email", "r1@example.com"), attributes={"v": 1}),
    put("shop", "customer", ("phone_number", "+10"), attributes={"v": 2}),
    # By its phone, naming its email: the same identifiers, written by the group.
    ("shop:customer:phone_number:+20",
     {"identifiers": [{"type": "email", "value": "r2@example.com"}], "attributes": {"v": 3}}),
    # Gains an email: its unit checks it and grants it to the user.
    put("shop", "customer", ("email", "r3@example.com"), ("email", "r3b@example.com")),
    # Drops +40, after which a new profile may hold it.
    put("shop", "customer", ("email", "r4@example.com"), name="Four"),
    put("shop", "customer", ("email", "new4@example.com"), ("phone_number", "+40")),
    # Refused by the rules: its unit says why.
    put("shop", "customer", ("email", "r5@example.com"), attributes={"big": "x" * 70_000}),
    # A create the group writes beside the replaces.
    put("shop", "customer", ("email", "new5@example.com")),
]


def test_replaces_that_arrive_together_end_as_they_end_one_by_one(
    new_file: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran = _both_ways(new_file, monkeypatch, REPLACED, REPLACES)
    assert ran.one_by_one == ran.as_group == [
        "replaced", "created", "replaced", "replaced", "replaced", "created",
        "AttributesTooLarge", "created",
    ]
    assert ran.settled == 3  # r2 and r4 replaced, new5 created
    assert _stored(ran.alone) == _stored(ran.together)
    rows = {row[3]: row for row in _stored(ran.together)[0]}
    assert rows['[{"type":"email","value":"r4@example.com"}]'][2] == "Four"
    assert rows['[{"type":"email","value":"r2@example.com"},{"type":"phone_number","value":"+20"}]'][4] \
        == '{"v":3}'
