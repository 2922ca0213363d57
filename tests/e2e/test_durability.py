"""A crash loses no acknowledged write and keeps no refused one.

Several clients write through a server with three workers; the whole server is killed with
SIGKILL while they do; a new server on the same database must then show every write that was
answered 2xx, with its content, and nothing of any write that was answered 4xx. Writes in
flight at the kill got no answer, so either outcome is allowed for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ..support import Api, Server, unique
from .profile_support import PROFILES, get, query

CLIENTS = 4
WORKERS = 3


@dataclass
class Ledger:
    """What one client was told: created profiles and their acknowledged attribute step."""

    created: dict[str, int] = field(default_factory=dict)  # query -> last acknowledged step
    in_flight: dict[str, int] = field(default_factory=dict)  # query -> step sent, unanswered
    refused: list[str] = field(default_factory=list)  # queries of creates answered 4xx
    unanswered: list[str] = field(default_factory=list)  # creates that got no answer


def writer(api: Api, source: str, shared_email: str, number: int, stop: threading.Event,
           ledger: Ledger) -> None:
    with api.client() as client:
        n = 0
        while not stop.is_set():
            n += 1
            identifier = query(source, f"c{number}", "member_no", f"{number}-{n}")
            try:
                if n % 5 == 0:
                    # Refused after the server has begun its work: the email already belongs
                    # to another user, and this profile is for a new user that matches nothing
                    # else, so a torn write would leave a user, a kind or a profile behind.
                    response = client.put(
                        f"/api/v2/users/{api.admin.user_id}/profiles",
                        params={"identifier": identifier},
                        json={"profile": {"identifiers": [{"type": "email", "value": shared_email}],
                                          "attributes": {"step": 0}}})
                    if response.status_code == 400:
                        ledger.refused.append(identifier)
                        continue
                    raise AssertionError(response.text)
                ledger.unanswered.append(identifier)
                response = client.put(PROFILES, params={"identifier": identifier},
                                      json={"profile": {"attributes": {"step": 0, "n": n}}})
                assert response.status_code == 201, response.text
                ledger.unanswered.pop()
                ledger.created[identifier] = 0
                for step in (1, 2):
                    ledger.in_flight[identifier] = step
                    response = client.patch(PROFILES, params={"identifier": identifier},
                                            json={"profile": {"attributes": {"step": step}}})
                    assert response.status_code == 200, response.text
                    del ledger.in_flight[identifier]
                    ledger.created[identifier] = step
            except httpx.HTTPError:
                return


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkill_and_refused_ones_leave_nothing(
    fresh_api: Callable[..., Api], work_dir: Path
) -> None:
    api = fresh_api(workers=WORKERS)
    server, admin = api.server, api.admin
    source = unique("crash")
    shared_email = f"{unique('owned')}@example.com"
    with api.client() as client:
        other = client.post("/api/v2/users", json={"user": {
            "name": "Owner", "identities": [{"type": "email", "value": shared_email}]}})
        assert other.status_code == 201, other.text

    stop = threading.Event()
    ledgers = [Ledger() for _ in range(CLIENTS)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(writer, api, source, shared_email, n, stop, ledgers[n])
                   for n in range(CLIENTS)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            sum(len(ledger.created) for ledger in ledgers) < 60
            or sum(len(ledger.refused) for ledger in ledgers) < 10
        ):
            time.sleep(0.02)
        server.kill()
        stop.set()
        for future in futures:
            future.result()

    created = {q: step for ledger in ledgers for q, step in ledger.created.items()}
    in_flight = {q: step for ledger in ledgers for q, step in ledger.in_flight.items()}
    refused = [q for ledger in ledgers for q in ledger.refused]
    assert len(created) >= 60 and len(refused) >= 10

    restarted = Server(server.database, workers=WORKERS).start(work_dir)
    try:
        api = Api(restarted, admin)
        with api.client() as client:
            for identifier, step in created.items():
                response = get(client, identifier)
                assert response.status_code == 200, (identifier, response.text)
                stored = response.json()["profile"]["attributes"]["step"]
                assert stored in {step, in_flight.get(identifier, step)}, (identifier, stored)
            for identifier in refused:
                assert get(client, identifier).status_code == 404, identifier
            listed = client.get(f"/api/v2/users/{admin.user_id}/profiles").json()["profiles"]
            assert listed == []
            # The server works normally after the crash.
            fresh = query(source, "after", "member_no", unique("m"))
            assert client.put(PROFILES, params={"identifier": fresh},
                              json={"profile": {}}).status_code == 201
    finally:
        restarted.stop()
