"""Access control over real HTTP: every credential kind x role x endpoint group, on each engine.

Rules under test (docs/access.md): admins may do everything; agents read, and write unless
their access to people is read-only; end-users get 403 on the Profiles and Users endpoints
(except /users/me). An OAuth token also needs a scope: any of the four for a read, `write`
or `users:write` for a write. `Basic email:password` works only where the account allows it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from ..support import Api, cli, unique
from .access import (
    SCOPE_SETS,
    Member,
    Tenant,
    api_token_auth,
    basic,
    bearer,
    password_auth,
    provision,
)

CREDENTIALS = ("api-token", *(f"oauth:{s}" for s in SCOPE_SETS), "password", "password-disabled")
ROLE_KEYS = ("admin", "agent", "agent-readonly", "end-user")
GROUPS = ("profile-read", "profile-write", "user-read", "user-write")


def expected_status(credential: str, role: str, group: str) -> int:
    write = group.endswith("-write")
    if credential == "password-disabled":
        return 401
    if role == "end-user" or (role == "agent-readonly" and write):
        return 403
    if credential.startswith("oauth:") and write and credential[len("oauth:"):] not in (
        "write", "users:write"
    ):
        return 403
    return 201 if write else 200


@dataclass
class World:
    on: Tenant  # password access on, every token kind
    off: Tenant  # password access off (the default)
    profile_query: str
    user_id: int
    client: httpx.Client


@pytest.fixture(scope="module")
def world(api: Api) -> Iterator[World]:
    on = provision(api.database_url, password_access=True)
    off = provision(api.database_url, tokens=False)
    with httpx.Client(base_url=api.base_url, timeout=30) as client:
        query = f"shop:customer:email:{unique('target')}@example.com"
        created = client.put("/api/v2/user_profiles", params={"identifier": query},
                             json={"profile": {"attributes": {}}},
                             headers=on.headers(api_token_auth(on.members["admin"])))
        assert created.status_code == 201, created.text
        yield World(on, off, query, on.members["admin"].user_id, client)


def authorization(world: World, credential: str, role: str) -> tuple[Tenant, str]:
    if credential == "password-disabled":
        return world.off, password_auth(world.off.members[role])
    member = world.on.members[role]
    if credential == "api-token":
        return world.on, api_token_auth(member)
    if credential == "password":
        return world.on, password_auth(member)
    return world.on, bearer(member.oauth[credential[len("oauth:"):]])


def send(world: World, tenant: Tenant, group: str, auth: str) -> httpx.Response:
    headers = tenant.headers(auth)
    client = world.client
    if group == "profile-read":
        return client.get("/api/v2/user_profiles", params={"identifier": world.profile_query},
                          headers=headers)
    if group == "profile-write":
        query = f"shop:customer:external_id:{unique('ext')}"
        return client.put("/api/v2/user_profiles", params={"identifier": query},
                          json={"profile": {"attributes": {"n": 1}}}, headers=headers)
    if group == "user-read":
        return client.get(f"/api/v2/users/{world.user_id}", headers=headers)
    assert group == "user-write"
    return client.post("/api/v2/users", json={"user": {"name": "New", "email":
                                                       f"{unique('new')}@example.com"}},
                       headers=headers)


def assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    [error] = response.json()["errors"]
    assert error["status"] == str(status)
    assert error["code"] == {401: "Unauthorized", 403: "Forbidden", 429: "TooManyRequests"}[status]
    assert error["title"] and error["id"]


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("role", ROLE_KEYS)
@pytest.mark.parametrize("credential", CREDENTIALS)
def test_matrix(world: World, credential: str, role: str, group: str) -> None:
    tenant, auth = authorization(world, credential, role)
    response = send(world, tenant, group, auth)
    status = expected_status(credential, role, group)
    if status >= 400:
        assert_error(response, status)
        if status == 401:
            assert response.headers["WWW-Authenticate"] == 'Basic realm="openprofiles"'
        return
    assert response.status_code == status, response.text
    body = response.json()
    assert ("profile" if group.startswith("profile") else "user") in body


def test_the_matrix_is_not_uniform() -> None:
    """Guards the expectations themselves: each status occurs, so no rule is left untested."""
    statuses = {expected_status(c, r, g) for c in CREDENTIALS for r in ROLE_KEYS for g in GROUPS}
    assert statuses == {200, 201, 401, 403}


@pytest.mark.parametrize("credential", ["api-token", *(f"oauth:{s}" for s in SCOPE_SETS),
                                        "password"])
@pytest.mark.parametrize("role", ROLE_KEYS)
def test_every_role_and_credential_may_read_itself(world: World, credential: str, role: str) -> None:
    tenant, auth = authorization(world, credential, role)
    response = world.client.get("/api/v2/users/me", headers=tenant.headers(auth))
    assert response.status_code == 200, response.text
    me = response.json()["user"]
    assert me["id"] == world.on.members[role].user_id
    assert me["email"] == world.on.members[role].email


def test_a_failed_scope_check_names_the_scopes_needed(world: World) -> None:
    token = world.on.members["admin"].oauth["users:read"]
    response = send(world, world.on, "profile-write", bearer(token))
    assert_error(response, 403)
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert "users:write" in response.json()["errors"][0]["detail"]


def test_agents_create_end_users_but_only_admins_create_staff(world: World) -> None:
    def create(member: Member, role: str) -> httpx.Response:
        body = {"user": {"name": "Staff", "email": f"{unique('s')}@example.com", "role": role}}
        return world.client.post("/api/v2/users", json=body,
                                 headers=world.on.headers(api_token_auth(member)))

    agent, admin = world.on.members["agent"], world.on.members["admin"]
    assert create(agent, "end-user").status_code == 201
    assert_error(create(agent, "agent"), 403)
    assert_error(create(agent, "admin"), 403)
    created = create(admin, "agent")
    assert created.status_code == 201 and created.json()["user"]["role"] == "agent"


def test_a_readonly_agent_reads_everything_and_writes_nothing(world: World, api: Api) -> None:
    readonly = world.on.members["agent-readonly"]
    headers = world.on.headers(api_token_auth(readonly))
    admin = world.on.headers(api_token_auth(world.on.members["admin"]))
    client = world.client
    profile = client.get("/api/v2/user_profiles", params={"identifier": world.profile_query},
                         headers=headers).json()["profile"]
    pid, uid = profile["id"], profile["user_id"]
    reads = [
        client.get(f"/api/v2/user_profiles/{pid}", headers=headers),
        client.get(f"/api/v2/user_profiles/{pid}.json", headers=headers),
        client.get(f"/api/v2/users/{uid}/profiles", headers=headers),
        client.get(f"/api/v2/users/{uid}/identities", headers=headers),
        client.get(f"/api/v2/users/{uid}", headers=headers),
    ]
    assert [r.status_code for r in reads] == [200] * len(reads)
    body = {"profile": {"attributes": {"x": 1}}}
    query = {"identifier": world.profile_query}
    writes = [
        client.put("/api/v2/user_profiles", params=query, json=body, headers=headers),
        client.patch("/api/v2/user_profiles", params=query, json=body, headers=headers),
        client.delete("/api/v2/user_profiles", params=query, headers=headers),
        client.put(f"/api/v2/user_profiles/{pid}", json=body, headers=headers),
        client.patch(f"/api/v2/user_profiles/{pid}", json=body, headers=headers),
        client.delete(f"/api/v2/user_profiles/{pid}", headers=headers),
        client.put(f"/api/v2/users/{uid}/profiles", params={"identifier": f"a:b:c:{unique()}"},
                   json=body, headers=headers),
        client.post("/api/v2/users", json={"user": {"name": "n"}}, headers=headers),
        client.post(f"/api/v2/users/{uid}/identities",
                    json={"identity": {"type": "email", "value": f"{unique()}@example.com"}},
                    headers=headers),
    ]
    for response in writes:
        assert_error(response, 403)
    # Nothing was written: the profile is as it was.
    again = client.get(f"/api/v2/user_profiles/{pid}", headers=admin)
    assert again.status_code == 200 and again.json()["profile"] == profile


@pytest.mark.parametrize("header", [
    None,
    "",
    "Basic",
    "Basic !!!not-base64!!!",
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "Bearer",
    "Bearer not-a-token",
    "Digest username=x",
    "Token abc",
])
def test_missing_or_malformed_credentials_are_401(world: World, header: str | None) -> None:
    headers = {"Host": world.on.host}
    if header is not None:
        headers["Authorization"] = header
    response = world.client.get("/api/v2/users/me", headers=headers)
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="openprofiles"'


def test_credentials_must_match_their_kind_and_owner(world: World) -> None:
    admin, agent = world.on.members["admin"], world.on.members["agent"]
    wrong = [
        basic(f"{admin.email}/token", admin.oauth["read"]),  # an OAuth token as an API token
        bearer(admin.api_token),  # an API token as a bearer token
        basic(f"{agent.email}/token", admin.api_token),  # another user's API token
        basic(f"{unique()}@example.com/token", admin.api_token),  # an unknown email
        basic(f"{admin.email}/token", admin.api_token + "x"),
        basic(admin.email, admin.password + "x"),  # a wrong password
        basic(f"{unique()}@example.com", admin.password),  # an unknown user
        basic(admin.email, admin.api_token),  # a token is not a password
    ]
    for auth in wrong:
        response = world.client.get("/api/v2/users/me", headers=world.on.headers(auth))
        assert_error(response, 401)
    # The right ones still work.
    for auth in (api_token_auth(admin), bearer(admin.oauth["read"]), password_auth(admin)):
        assert world.client.get("/api/v2/users/me",
                                headers=world.on.headers(auth)).status_code == 200


def test_suspended_and_deleted_users_cannot_authenticate(api: Api) -> None:
    tenant = provision(api.database_url, password_access=True, roles=("admin", "agent"),
                       scope_sets=("read write",))
    member = tenant.members["agent"]
    credentials = [api_token_auth(member), bearer(member.oauth["read write"]),
                   password_auth(member)]

    def statuses() -> list[int]:
        with httpx.Client(base_url=api.base_url, timeout=30) as client:
            return [client.get("/api/v2/users/me", headers=tenant.headers(c)).status_code
                    for c in credentials]

    account = ["--account", tenant.subdomain or ""]
    assert statuses() == [200, 200, 200]
    suspended = cli(api.database_url, "users", "suspend", "--email", member.email, *account)
    assert '"suspended": true' in suspended.stdout
    assert statuses() == [401, 401, 401]
    refused = cli(api.database_url, "tokens", "create", "--email", member.email, *account,
                  check=False)
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        f"Error: The user '{member.email}' is suspended: it cannot have new tokens."
    ]
    cli(api.database_url, "users", "unsuspend", "--email", member.email, *account)
    assert statuses() == [200, 200, 200]
    deleted = cli(api.database_url, "users", "delete", "--email", member.email, *account)
    assert '"active": false' in deleted.stdout
    assert statuses() == [401, 401, 401]
    # The admin of the same account is untouched.
    admin = tenant.members["admin"]
    with httpx.Client(base_url=api.base_url, timeout=30) as client:
        assert client.get("/api/v2/users/me",
                          headers=tenant.headers(api_token_auth(admin))).status_code == 200


def test_a_revoked_token_is_refused_at_once(api: Api) -> None:
    tenant = provision(api.database_url, roles=("agent",), scope_sets=("read",))
    member = tenant.members["agent"]
    api_auth, oauth_auth = api_token_auth(member), bearer(member.oauth["read"])

    def status(auth: str) -> int:
        with httpx.Client(base_url=api.base_url, timeout=30) as client:
            return client.get("/api/v2/users/me", headers=tenant.headers(auth)).status_code

    assert (status(api_auth), status(oauth_auth)) == (200, 200)
    # Token ids are unique across accounts: `tokens revoke ID` finds the token's account.
    api.cli("tokens", "revoke", str(member.api_token_id))
    assert (status(api_auth), status(oauth_auth)) == (401, 200)
    api.cli("tokens", "revoke", str(member.oauth_ids["read"]), "--account", tenant.subdomain or "")
    assert (status(api_auth), status(oauth_auth)) == (401, 401)
    # Revoking twice is a one-line error; the token stays revoked.
    again = api.cli("tokens", "revoke", str(member.api_token_id), check=False)
    assert again.returncode != 0 and len(again.stderr.strip().splitlines()) == 1
    assert status(api_auth) == 401
