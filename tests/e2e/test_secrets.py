"""No secret is ever shown: not in a response, not in the server's log, not in the database."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import httpx

from ..support import Api, unique
from .access import api_token_auth, basic, bearer, password_auth, provision
from .test_access_matrix import assert_error


def stored_credentials(database_url: str) -> list[str]:
    queries = ("SELECT token_hash FROM api_tokens", "SELECT password_hash FROM users"
               " WHERE password_hash IS NOT NULL")
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url[len("sqlite:///"):]) as connection:
            return [row[0] for q in queries for row in connection.execute(q)]
    import psycopg

    with psycopg.connect(database_url) as connection:
        return [row[0] for q in queries for row in connection.execute(q)]


def test_secrets_never_leave_the_server(fresh_api: Callable[..., Api]) -> None:
    redis_password = f"redis-{unique()}"
    api = fresh_api(env={
        "OPENPROFILES_LOG_LEVEL": "debug",
        # Rate limiting on, with a Redis that cannot be reached: requests still succeed,
        # counted in-process, and the warning logged names no secret.
        "OPENPROFILES_RATE_LIMIT": "1000",
        "OPENPROFILES_REDIS_URL": f"redis://:{redis_password}@127.0.0.1:1/0",
    })
    tenant = provision(api.database_url, password_access=True, roles=("admin", "agent"),
                       scope_sets=("read",))
    admin, agent = tenant.members["admin"], tenant.members["agent"]
    wrong = f"wrong-{unique()}"
    secrets = [admin.api_token, agent.api_token, admin.oauth["read"], agent.oauth["read"],
               admin.password, agent.password, api.admin.token, redis_password, wrong]

    host = tenant.headers()
    attempts: list[tuple[str, str, dict[str, str], int]] = [
        ("GET", "/api/v2/users/me", {"Authorization": api_token_auth(admin)}, 200),
        ("GET", "/api/v2/users/me", {"Authorization": bearer(admin.oauth["read"])}, 200),
        ("GET", "/api/v2/users/me", {"Authorization": password_auth(agent)}, 200),
        ("GET", "/api/v2/users/me", {"Authorization": basic(f"{admin.email}/token", wrong)}, 401),
        ("GET", "/api/v2/users/me", {"Authorization": basic(admin.email, wrong)}, 401),
        ("GET", "/api/v2/users/me", {"Authorization": bearer(wrong)}, 401),
        ("GET", "/api/v2/users/me", {"Authorization": bearer(admin.api_token)}, 401),
        ("GET", "/api/v2/users/me", {"Authorization": f"Basic {wrong}"}, 401),
        ("GET", "/api/v2/users/me", {"Authorization": f"{wrong} {admin.api_token}"}, 401),
        ("POST", "/api/v2/users", {"Authorization": bearer(agent.oauth["read"])}, 403),
        ("GET", "/api/v2/no-such-route", {"Authorization": api_token_auth(admin)}, 404),
    ]
    with httpx.Client(base_url=api.base_url, timeout=30) as client:
        responses = [client.request(method, path, headers={**host, **headers},
                                    json={"user": {"name": "n"}} if method == "POST" else None)
                     for method, path, headers, _ in attempts]
        # The default account has password access off: a 401 that names no secret either.
        responses.append(client.get("/api/v2/users/me",
                                    headers={"Authorization": basic(api.admin.email, wrong)}))
    assert [r.status_code for r in responses] == [a[3] for a in attempts] + [401]
    for response in responses:
        assert "X-Rate-Limit" in response.headers  # counted in-process while Redis is down
        if response.status_code in (401, 403):
            assert_error(response, response.status_code)
        shown = response.text + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        for secret in secrets:
            assert secret not in shown

    api.server.stop()  # flush and close the log
    log = api.server.log()
    assert "Redis unreachable" in log  # the logging path was taken
    for secret in secrets:
        assert secret not in log

    # Stored: digests and scrypt hashes only.
    stored = stored_credentials(api.database_url)
    assert stored and all(len(s) == 64 or s.startswith("scrypt$") for s in stored)
    for secret in secrets:
        assert not any(secret in s for s in stored)
