"""Events written at once: one profile for one new identifier, and no event outliving its
profile when a delete races the writes."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from ..support import Api
from .events_support import TRACK, email, event, sql_rows, target, track, user_events

SHOP = "shop"


def test_parallel_tracks_of_a_new_identifier_make_one_profile(api: Api) -> None:
    address = email()

    def send(n: int) -> tuple[int, dict[str, str]]:
        with api.client() as client:
            response = client.post(TRACK, json={"profile": target(SHOP, "c", ("email", address)),
                                                "event": event(SHOP, f"e{n}")})
            return response.status_code, response.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(16)))
    assert [status for status, _ in answers] == [202] * 16, answers
    assert len({body["profile_id"] for _, body in answers}) == 1
    assert len({body["user_id"] for _, body in answers}) == 1
    with api.client() as client:
        listed = user_events(client, answers[0][1]["user_id"])
    assert sorted(e["type"] for e in listed["events"]) == sorted(f"e{n}" for n in range(16))


def test_a_delete_racing_tracks_leaves_no_event_behind(api: Api) -> None:
    with api.client() as client:
        body = track(client, target(SHOP, "c", ("email", email())), event(SHOP))
    path = f"/api/v2/user_profiles/{body['profile_id']}/events"

    def send(n: int) -> int:
        with api.client() as client:
            if n == 10:
                return client.delete(f"/api/v2/user_profiles/{body['profile_id']}").status_code
            return client.post(path, json={"event": event(SHOP, f"e{n}")}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, range(24)))
    assert statuses[10] == 204
    assert set(statuses[:10] + statuses[11:]) <= {202, 404}, statuses
    assert sql_rows(api, "SELECT COUNT(*) FROM events WHERE profile_id = ?",
                    body["profile_id"]) == [(0,)]
    with api.client() as client:
        assert user_events(client, body["user_id"])["events"] == []


def test_parallel_tracks_adding_identifiers_lose_none(api: Api) -> None:
    address = email()
    with api.client() as client:
        body = track(client, target(SHOP, "c", ("email", address)), event(SHOP))

    def send(n: int) -> int:
        with api.client() as client:
            return client.post(TRACK, json={
                "profile": target(SHOP, "c", ("email", address), (f"member_{n}", f"m{n}")),
                "event": event(SHOP)}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, range(8)))
    assert statuses == [202] * 8
    with api.client() as client:
        profile = client.get(f"/api/v2/user_profiles/{body['profile_id']}").json()["profile"]
        assert len(user_events(client, body["user_id"])["events"]) == 9
    assert sorted((i["type"], i["value"]) for i in profile["identifiers"]) == sorted(
        [("email", address)] + [(f"member_{n}", f"m{n}") for n in range(8)])


@pytest.mark.slow
def test_every_202_survives_a_crash(fresh_api: Any) -> None:
    """The server is killed while events pour in: every event it answered 202 for is there
    after a restart (events still in flight may or may not be)."""
    api: Api = fresh_api()
    with api.client() as client:
        body = track(client, target(SHOP, "c", ("email", email())), event(SHOP, "first"))
    path = f"/api/v2/user_profiles/{body['profile_id']}/events"
    answered: list[str] = []
    stop = threading.Event()

    def send(worker: int) -> None:
        with api.client() as client:
            for n in itertools.count():
                if stop.is_set():
                    return
                name = f"w{worker}-{n}"
                try:
                    response = client.post(path, json={"event": event(SHOP, name)})
                except httpx.HTTPError:
                    return
                if response.status_code == 202:
                    answered.append(name)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(send, w) for w in range(4)]
        deadline = time.monotonic() + 10
        while len(answered) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        api.server.kill()
        stop.set()
        for future in futures:
            future.result()
    assert len(answered) >= 40
    assert api.server.log_path is not None
    api.server.start(api.server.log_path.parent)
    with api.client() as client:
        stored: set[str] = set()
        page = user_events(client, body["user_id"])
        while True:
            stored |= {e["type"] for e in page["events"]}
            if not page["meta"]["has_more"]:
                break
            page = client.get(page["links"]["next"]).json()
    assert set(answered) <= stored
