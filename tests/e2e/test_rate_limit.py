"""Rate limits per account and minute, on one worker and on two sharing Redis.

Windows are whole clock minutes, so each counting test starts well inside one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ..support import Api, Server
from .access import api_token_auth, provision, wait_for_window_room
from .test_access_matrix import assert_error

REDIS_URL = os.environ.get("OPENPROFILES_TEST_REDIS", "redis://127.0.0.1:6379/0")


def redis_client():  # type: ignore[no-untyped-def]
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is required under CI=true")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    return client


def limit_headers(response: httpx.Response) -> tuple[str, str]:
    return response.headers["X-Rate-Limit"], response.headers["X-Rate-Limit-Remaining"]


def test_no_rate_limit_headers_when_off(api: Api) -> None:
    with api.client() as client:
        response = client.get("/api/v2/users/me")
    assert response.status_code == 200
    assert "X-Rate-Limit" not in response.headers


def test_one_worker_counts_every_request_with_credentials(
    fresh_api: Callable[..., Api],
) -> None:
    api = fresh_api(env={"OPENPROFILES_RATE_LIMIT": "5"})
    other = provision(api.database_url, roles=("agent",), scope_sets=())
    wait_for_window_room(8)
    with httpx.Client(base_url=api.base_url, timeout=30) as anonymous, api.client() as client:
        # Without credentials: the headers, but no count.
        for response in (anonymous.get("/api/v2/users/me"), anonymous.get("/api/v2/openapi.json")):
            assert limit_headers(response) == ("5", "5")
        # With credentials, valid or not, and whatever the answer: counted.
        answers = [
            client.get("/api/v2/users/me"),
            client.get("/api/v2/no-such-route"),
            client.get(f"/api/v2/users/{api.admin.user_id}/profiles"),
            anonymous.get("/api/v2/users/me", auth=("nobody@example.com/token", "wrong")),
            client.get("/api/v2/users/me.json"),
        ]
        assert [r.status_code for r in answers] == [200, 404, 200, 401, 200]
        assert [limit_headers(r) for r in answers] == [("5", str(n)) for n in (4, 3, 2, 1, 0)]

        refused = client.get("/api/v2/users/me")
        assert_error(refused, 429)
        assert limit_headers(refused) == ("5", "0")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        refused_write = client.put("/api/v2/user_profiles", params={"identifier": "a:b:c:d"},
                                   json={"profile": {}})
        assert_error(refused_write, 429)
        # The refused write wrote nothing.
        assert anonymous.get("/api/v2/users/me").status_code == 401

        # Another account has a count of its own.
        mine = other.members["agent"]
        theirs = anonymous.get("/api/v2/users/me", headers=other.headers(api_token_auth(mine)))
        assert theirs.status_code == 200, theirs.text
        assert limit_headers(theirs) == ("5", "4")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    client = redis_client()
    prefix = f"openprofiles-test-{uuid.uuid4().hex}:"
    yield prefix
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


def test_two_workers_share_one_count_through_redis(
    fresh_api: Callable[..., Api], work_dir: Path, redis_prefix: str,
) -> None:
    env = {"OPENPROFILES_RATE_LIMIT": "5", "OPENPROFILES_REDIS_URL": REDIS_URL,
           "OPENPROFILES_REDIS_PREFIX": redis_prefix}
    first = fresh_api(env=env)
    # A second server process on the same database, as another worker or host would be.
    second = Server(first.server.database, env=env).start(work_dir)
    try:
        wait_for_window_room(8)
        servers = [first.base_url, second.base_url]
        answers = []
        for n in range(7):
            with httpx.Client(base_url=servers[n % 2], auth=first.admin.auth, timeout=30) as c:
                answers.append(c.get("/api/v2/users/me"))
        # Each server saw at most four requests: only a shared count refuses the sixth.
        assert [r.status_code for r in answers] == [200] * 5 + [429, 429]
        assert [r.headers["X-Rate-Limit-Remaining"] for r in answers] == [
            "4", "3", "2", "1", "0", "0", "0"
        ]
        assert 1 <= int(answers[5].headers["Retry-After"]) <= 60
        # The count lives in Redis, under the configured prefix, for the default account.
        keys = [k.decode() for k in redis_client().scan_iter(match=f"{redis_prefix}*")]
        assert len(keys) == 1 and keys[0].startswith(f"{redis_prefix}ratelimit:1:")
        assert int(redis_client().get(keys[0])) == 7
    finally:
        second.stop()
