"""Races between concurrent writers, through several server processes on one database.

Each test starts a server with three workers, so that the writers race in separate processes
and only the database can order them. Every assertion is a property that any serial order of
the same requests satisfies, and that a lost update, a torn write or a split identity breaks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..support import Api, served, unique
from .profile_support import PROFILES, assert_error, create, email, get, identities, query

WORKERS = 3
STANDARD = {"email", "phone_number"}


def race(api: Api, requests: list[Callable[[httpx.Client], httpx.Response]]) -> list[httpx.Response]:
    """Sends the requests at once, each from its own connected client."""
    start = threading.Barrier(len(requests))

    def send(request: Callable[[httpx.Client], httpx.Response]) -> httpx.Response:
        with api.client() as client:
            client.get("/api/v2/users/me")  # connected before the race starts
            start.wait()
            return request(client)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


@pytest.fixture(scope="module")
def racing_api(engine: str, work_dir: Path) -> Iterator[Api]:
    """One server with several workers on a new database, shared by this module's races."""
    with served(engine, work_dir, workers=WORKERS) as api:
        yield api


def test_32_concurrent_creates_of_one_identifier_give_one_profile(racing_api: Api) -> None:
    identifier = query("shop", "customer", "email", email())
    responses = race(racing_api, [
        (lambda client, n=n: client.put(PROFILES, params={"identifier": identifier},
                                        json={"profile": {"attributes": {"writer": n}}}))
        for n in range(32)
    ])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 31 + [201], [r.text for r in responses if r.status_code >= 300]
    ids = {r.json()["profile"]["id"] for r in responses}
    users = {r.json()["profile"]["user_id"] for r in responses}
    assert len(ids) == 1 and len(users) == 1
    with racing_api.client() as client:
        stored = get(client, identifier).json()["profile"]
        assert stored["id"] in ids
        listed = client.get(f"/api/v2/users/{stored['user_id']}/profiles").json()["profiles"]
        assert [p["id"] for p in listed] == [stored["id"]]


def _standard(profile: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i["type"], i["value"]) for i in profile["identifiers"] if i["type"] in STANDARD}


def test_concurrent_links_never_split_an_identity_or_a_profile(racing_api: Api) -> None:
    """Sixteen new profiles, each in its own type, share four emails and four phones in
    overlapping pairs: whatever the order, every identity ends with exactly one user, every
    created profile's identities are its own user's, and a refused create leaves nothing."""
    emails = [email() for _ in range(4)]
    phones = [f"+61{unique('')[:8].translate(str.maketrans('abcdef', '123456'))}{n}"
              for n in range(4)]
    source = unique("link")
    plans = []
    for n in range(16):
        member = query(source, f"t{n}", "member_no", unique("m"))
        body = {"identifiers": [{"type": "email", "value": emails[n % 4]},
                                {"type": "phone_number", "value": phones[(n // 4 + n) % 4]}]}
        plans.append((member, body))
    responses = race(racing_api, [
        (lambda client, m=m, b=b: client.put(PROFILES, params={"identifier": m},
                                             json={"profile": b}))
        for m, b in plans
    ])

    created = []
    with racing_api.client() as client:
        for (member, _), response in zip(plans, responses, strict=True):
            if response.status_code == 201:
                created.append(response.json()["profile"])
            else:
                assert_error(response, 400)
                assert response.json()["errors"][0]["code"] in {
                    "IdentifiersForMultipleUsers", "IdentifierInUse"}, response.text
                assert get(client, member).status_code == 404
        assert created, [r.text for r in responses]

        owner_of: dict[tuple[str, str], int] = {}
        for user_id in {p["user_id"] for p in created}:
            for identity in identities(client, user_id):
                assert identity not in owner_of, f"{identity} on users {owner_of[identity]}, {user_id}"
                owner_of[identity] = user_id
        profiles_of: dict[str, int] = {}
        for user_id in {p["user_id"] for p in created}:
            for listed in client.get(f"/api/v2/users/{user_id}/profiles").json()["profiles"]:
                assert listed["id"] not in profiles_of
                profiles_of[listed["id"]] = user_id
        for profile in created:
            assert profiles_of[profile["id"]] == profile["user_id"]
            for identity in _standard(profile):
                assert owner_of[identity] == profile["user_id"]


def test_concurrent_links_to_named_users_give_an_identity_to_one_of_them(racing_api: Api) -> None:
    """Two users each claim the same new email through a profile created for them."""
    with racing_api.client() as client:
        for _ in range(6):
            first, second = (client.post("/api/v2/users", json={"user": {"name": unique("U")}})
                             .json()["user"]["id"] for _ in range(2))
            shared = email()
            source = unique("claim")
            responses = race(racing_api, [
                (lambda c, u=u: c.put(f"/api/v2/users/{u}/profiles",
                                      params={"identifier": query(source, f"t{u}", "member_no", str(u))},
                                      json={"profile": {"identifiers": [
                                          {"type": "email", "value": shared}]}}))
                for u in (first, second)
            ])
            assert sorted(r.status_code for r in responses) == [201, 400], [r.text for r in responses]
            winner = int(next(r for r in responses if r.status_code == 201).json()["profile"]["user_id"])
            loser = second if winner == first else first
            assert ("email", shared) in identities(client, winner)
            assert ("email", shared) not in identities(client, loser)
            assert client.get(f"/api/v2/users/{loser}/profiles").json()["profiles"] == []


def test_concurrent_patch_and_put_lose_nothing_either_kept(racing_api: Api) -> None:
    """A PATCH adds email X and attribute `patched`; a concurrent PUT keeps Y and drops Z.

    Serially, either the PUT ran last (profile = Q, Y; attributes = the PUT's) or the PATCH
    did (Q, Y, X; the PUT's attributes plus `patched`). Q and Y are kept by both, so they are
    never lost; Z, dropped by the PUT, never comes back; X and `patched` come and go together;
    the identifier index agrees with the stored profile; and the user keeps X (users only gain).
    """
    with racing_api.client() as client:
        for round_ in range(12):
            source = unique("pp")
            q = ("member_no", unique("q"))
            y, z, x = ("loyalty", unique("y")), ("coupon", unique("z")), ("email", email())
            identifier = query(source, "c", *q)
            profile = create(client, identifier, {
                "identifiers": [{"type": t, "value": v} for t, v in (q, y, z)],
                "attributes": {"start": True}})
            patch_body = {"identifiers": [{"type": x[0], "value": x[1]}],
                          "attributes": {"patched": round_}}
            put_body = {"identifiers": [{"type": y[0], "value": y[1]}],
                        "attributes": {"replaced": round_}}
            by_id = f"{PROFILES}/{profile['id']}"
            patched, replaced = race(racing_api, [
                lambda c: c.patch(by_id, json={"profile": patch_body}),
                lambda c: c.put(PROFILES, params={"identifier": identifier},
                                json={"profile": put_body}),
            ])
            assert patched.status_code == 200, patched.text
            assert replaced.status_code == 200, replaced.text

            stored = client.get(by_id).json()["profile"]
            kept = {(i["type"], i["value"]) for i in stored["identifiers"]}
            if x in kept:
                assert kept == {q, y, x}
                assert stored["attributes"] == {"replaced": round_, "patched": round_}
            else:
                assert kept == {q, y}
                assert stored["attributes"] == {"replaced": round_}
            for identity in (q, y, x, z):
                found = get(client, query(source, "c", *identity))
                assert found.status_code == (200 if identity in kept else 404), identity
                if identity in kept:
                    assert found.json()["profile"]["id"] == profile["id"]
            assert x in identities(client, profile["user_id"])


def test_concurrent_creates_for_one_user_never_pass_the_profile_limit(
    fresh_api: Callable[..., Api]
) -> None:
    """Ten creates for a user allowed three profiles: three succeed, whatever the order."""
    api = fresh_api(workers=WORKERS, env={"OPENPROFILES_MAX_PROFILES_PER_USER": "3"})
    with api.client() as client:
        for _ in range(3):
            user_id = client.post("/api/v2/users", json={"user": {"name": unique("U")}}
                                  ).json()["user"]["id"]
            source = unique("lim")
            responses = race(api, [
                (lambda c, n=n: c.put(f"/api/v2/users/{user_id}/profiles",
                                      params={"identifier": query(source, f"t{n}", "member_no",
                                                                  unique("m"))},
                                      json={"profile": {}}))
                for n in range(10)
            ])
            assert sorted(r.status_code for r in responses) == [201] * 3 + [400] * 7, [
                r.text for r in responses]
            for response in responses:
                if response.status_code == 400:
                    assert_error(response, 400, "ProfileLimitExceeded")
            listed = client.get(f"/api/v2/users/{user_id}/profiles").json()["profiles"]
            assert len(listed) == 3
