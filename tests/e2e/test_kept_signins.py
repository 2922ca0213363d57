"""A server keeps successful token sign-ins; every change that can end one ends it at once.

The server runs with several workers, each keeping its own sign-ins; every credential is used
often enough before the change that each worker has kept it, and every request after the
change must see the change, whichever worker answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support import Api, Credentials, served

WORKERS = 2
ROUNDS = 24  # new connections spread over the workers: each has kept the sign-in


@pytest.fixture(scope="module")
def workers_api(engine: str, work_dir: Path) -> Iterator[Api]:
    with served(engine, work_dir, workers=WORKERS) as api:
        yield api


def statuses(api: Api, credentials: Credentials, path: str = "/api/v2/user_profiles/"
             "01BX5ZZKBKACTAV9WEVGEMMVRY") -> set[int]:
    """The statuses of ROUNDS requests, each on a new connection."""
    found = set()
    for _ in range(ROUNDS):
        with api.client(credentials) as client:
            found.add(client.get(path).status_code)
    return found


def test_revoked_token_fails_on_every_worker(workers_api: Api) -> None:
    agent = workers_api.user("agent")
    issued = workers_api.cli("tokens", "create", "--email", agent.email).stdout.splitlines()
    token_id, token = issued[0].split()[2], issued[-1].strip()
    second = Credentials(agent.email, token, agent.user_id)
    assert statuses(workers_api, second) == {404}  # signed in: the profile does not exist
    workers_api.cli("tokens", "revoke", token_id)
    assert statuses(workers_api, second) == {401}
    assert statuses(workers_api, agent) == {404}  # the user's first token still works


def test_suspended_user_fails_on_every_worker_and_comes_back(workers_api: Api) -> None:
    agent = workers_api.user("agent")
    assert statuses(workers_api, agent) == {404}
    workers_api.cli("users", "suspend", "--email", agent.email)
    assert statuses(workers_api, agent) == {401}
    workers_api.cli("users", "unsuspend", "--email", agent.email)
    assert statuses(workers_api, agent) == {404}


def test_deleted_user_fails_on_every_worker(workers_api: Api) -> None:
    agent = workers_api.user("agent")
    assert statuses(workers_api, agent) == {404}
    workers_api.cli("users", "delete", "--email", agent.email)
    assert statuses(workers_api, agent) == {401}


def test_a_change_to_another_user_keeps_sign_ins_working(workers_api: Api) -> None:
    agent, other = workers_api.user("agent"), workers_api.user("agent")
    assert statuses(workers_api, agent) == {404}
    workers_api.cli("users", "suspend", "--email", other.email)
    assert statuses(workers_api, agent) == {404}
    assert statuses(workers_api, other) == {401}


def test_me_shows_the_user_as_stored_now(workers_api: Api) -> None:
    agent = workers_api.user("agent")
    with workers_api.client(agent) as client:
        assert client.get("/api/v2/users/me").json()["user"]["external_id"] is None
    # A profile of the agent's own with an external id gives the agent that external id.
    with workers_api.client() as admin:
        response = admin.put(f"/api/v2/users/{agent.user_id}/profiles",
                             params={"identifier": f"shop:customer:external_id:ext-{agent.user_id}"},
                             json={"profile": {}})
        assert response.status_code == 201, response.text
    for _ in range(ROUNDS):
        with workers_api.client(agent) as client:
            me = client.get("/api/v2/users/me").json()["user"]
            assert me["external_id"] == f"ext-{agent.user_id}"
