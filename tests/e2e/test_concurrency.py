"""Concurrent creates of one identifier give one profile (RULES §3)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ..support import Api, unique
from .profile_support import PROFILES, email, get, identities, query

PARALLEL = 16


def test_parallel_puts_of_one_new_identifier_make_one_profile(api: Api) -> None:
    address = email()
    identifier = query("shop", "customer", "email", address)
    start = threading.Barrier(PARALLEL)

    def send(n: int) -> tuple[int, dict]:
        with api.client() as client:
            client.get("/api/v2/users/me")  # open the connection before the race starts
            start.wait()
            response = client.put(PROFILES, params={"identifier": identifier},
                                  json={"profile": {"attributes": {"writer": n}}})
            return response.status_code, response.json()

    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(send, range(PARALLEL)))

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * (PARALLEL - 1) + [201], results
    profiles = [body["profile"] for _, body in results]
    assert len({p["id"] for p in profiles}) == 1
    assert len({p["user_id"] for p in profiles}) == 1
    with api.client() as client:
        found = get(client, identifier)
        assert found.status_code == 200
        stored = found.json()["profile"]
        assert stored["id"] == profiles[0]["id"]
        # The last writer's replace is what is stored.
        assert stored["attributes"]["writer"] in range(PARALLEL)
        listed = client.get(f"/api/v2/users/{stored['user_id']}/profiles").json()["profiles"]
        assert [p["id"] for p in listed] == [stored["id"]]
        assert identities(client, stored["user_id"]) == {("email", address)}


def test_parallel_creates_of_distinct_identifiers_of_one_user(api: Api) -> None:
    """Profiles of one new person created at once end up with one user, or are refused cleanly."""
    address = email()
    start = threading.Barrier(8)

    def send(n: int) -> tuple[int, dict]:
        with api.client() as client:
            client.get("/api/v2/users/me")
            start.wait()
            response = client.put(PROFILES, params={"identifier": query(f"src{n % 3}", f"t{n}",
                                                                           "member_no", unique("M"))},
                                  json={"profile": {"identifiers": [{"type": "email", "value": address}]}})
            return response.status_code, response.json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, range(8)))
    assert all(status == 201 for status, _ in results), results
    assert len({body["profile"]["user_id"] for _, body in results}) == 1
