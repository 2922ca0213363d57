"""Authentication and roles (RULES §9) over HTTP, on each engine."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from ..support import Api, Credentials, unique

CHALLENGE = 'Basic realm="openprofiles"'

# One request per kind of endpoint: profiles (read and write), users, users/me.
ENDPOINTS = [
    ("GET", "/api/v2/user_profiles?identifier=shop:customer:member:1", None),
    ("PUT", "/api/v2/user_profiles?identifier=shop:customer:member:1", {"profile": {}}),
    ("GET", "/api/v2/user_profiles/01BX5ZZKBKACTAV9WEVGEMMVRY", None),
    ("GET", "/api/v2/users/1/profiles", None),
    ("POST", "/api/v2/users", {"user": {"name": "Nobody"}}),
    ("GET", "/api/v2/users/me", None),
]


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def send(api: Api, method: str, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    return httpx.request(method, api.base_url + path, json=body, headers=headers, timeout=30)


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.headers["content-type"] == "application/json"
    [error] = response.json()["errors"]
    assert error["code"] == "Unauthorized" and error["status"] == "401" and error["title"]


def bad_headers(api: Api, other: Credentials) -> dict[str, dict[str, str]]:
    email, token = api.admin.email, api.admin.token
    return {
        "no header": {},
        "empty header": {"Authorization": ""},
        "bearer scheme": {"Authorization": f"Bearer {token}"},
        "digest scheme": {"Authorization": f"Digest {token}"},
        "scheme only": {"Authorization": "Basic"},
        "bad base64": {"Authorization": "Basic ###not-base64###"},
        "base64 of bad utf-8": {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()},
        "no colon": {"Authorization": basic(f"{email}/token{token}")},
        "no /token": {"Authorization": basic(f"{email}:{token}")},
        "empty token": {"Authorization": basic(f"{email}/token:")},
        "wrong token": {"Authorization": basic(f"{email}/token:{token[:-2]}xx")},
        "unknown email": {"Authorization": basic(f"{unique()}@example.com/token:{token}")},
        "another user's email": {"Authorization": basic(f"{other.email}/token:{token}")},
        "NUL in the email": {"Authorization": basic(f"{email}\0/token:{token}")},
    }


CASES = ["no header", "empty header", "bearer scheme", "digest scheme", "scheme only", "bad base64",
         "base64 of bad utf-8", "no colon", "no /token", "empty token", "wrong token",
         "unknown email", "another user's email", "NUL in the email"]


@pytest.mark.parametrize("case", CASES)
def test_bad_credentials_are_401(api: Api, agent: Credentials, case: str) -> None:
    headers = bad_headers(api, agent)[case]
    for method, path, body in ENDPOINTS:
        assert_unauthorized(send(api, method, path, body, headers))


def test_401_comes_before_route_details(api: Api) -> None:
    # Credentials are checked before the body is read or the user is looked up.
    response = httpx.put(f"{api.base_url}/api/v2/user_profiles?identifier=x",
                         content=b"{not json", headers={"Content-Type": "text/plain"})
    assert_unauthorized(response)
    assert_unauthorized(httpx.get(f"{api.base_url}/api/v2/users/999999999"))


def test_email_of_token_is_case_insensitive(api: Api) -> None:
    headers = {"Authorization": basic(f"{api.admin.email.upper()}/token:{api.admin.token}")}
    assert send(api, "GET", "/api/v2/users/me", None, headers).status_code == 200


def test_revoked_token_is_401(api: Api, agent: Credentials) -> None:
    user = agent
    issued = api.cli("tokens", "create", "--email", user.email).stdout.strip().splitlines()
    token_id = issued[0].split()[2]
    token = issued[-1]
    headers = {"Authorization": basic(f"{user.email}/token:{token}")}
    assert send(api, "GET", "/api/v2/users/me", None, headers).status_code == 200
    api.cli("tokens", "revoke", token_id)
    assert_unauthorized(send(api, "GET", "/api/v2/users/me", None, headers))
    # The user's other token still works.
    with api.client(user) as client:
        assert client.get("/api/v2/users/me").status_code == 200


def test_end_user_is_403_on_profile_endpoints(api: Api, end_user: Credentials) -> None:
    query = f"shop:customer:member:{unique()}"
    with api.client(end_user) as client:
        responses = [
            client.get("/api/v2/user_profiles", params={"identifier": query}),
            client.put("/api/v2/user_profiles", params={"identifier": query}, json={"profile": {}}),
            client.patch("/api/v2/user_profiles", params={"identifier": query},
                         json={"profile": {}}),
            client.delete("/api/v2/user_profiles", params={"identifier": query}),
            client.get("/api/v2/user_profiles/01BX5ZZKBKACTAV9WEVGEMMVRY"),
            client.put("/api/v2/user_profiles/01BX5ZZKBKACTAV9WEVGEMMVRY", json={"profile": {}}),
            client.patch("/api/v2/user_profiles/01BX5ZZKBKACTAV9WEVGEMMVRY", json={"profile": {}}),
            client.delete("/api/v2/user_profiles/01BX5ZZKBKACTAV9WEVGEMMVRY"),
            client.get(f"/api/v2/users/{end_user.user_id}/profiles"),
            client.put(f"/api/v2/users/{end_user.user_id}/profiles", params={"identifier": query},
                       json={"profile": {}}),
        ]
    for response in responses:
        assert response.status_code == 403, response.text
        [error] = response.json()["errors"]
        assert error["code"] == "Forbidden" and error["status"] == "403"
    with api.client() as admin:  # nothing was written on the way
        assert admin.get("/api/v2/user_profiles", params={"identifier": query}).status_code == 404


@pytest.mark.parametrize("role", ["agent", "admin"])
def test_agents_and_admins_use_every_profile_endpoint(api: Api, agent: Credentials,
                                                      role: str) -> None:
    caller = agent if role == "agent" else api.admin
    query = f"shop:customer:member:{unique()}"
    with api.client(caller) as client:
        created = client.put("/api/v2/user_profiles", params={"identifier": query},
                             json={"profile": {"attributes": {"by": role}}})
        assert created.status_code == 201, created.text
        profile = created.json()["profile"]
        assert client.get("/api/v2/user_profiles", params={"identifier": query}).status_code == 200
        assert client.patch(f"/api/v2/user_profiles/{profile['id']}",
                            json={"profile": {"name": "N"}}).status_code == 200
        assert client.get(f"/api/v2/users/{profile['user_id']}/profiles").status_code == 200
        assert client.delete(f"/api/v2/user_profiles/{profile['id']}").status_code == 204


def test_readonly_agent_reads_but_may_not_write(api: Api, readonly_agent: Credentials) -> None:
    query = f"shop:customer:member:{unique()}"
    with api.client() as admin:
        profile = admin.put("/api/v2/user_profiles", params={"identifier": query},
                            json={"profile": {}}).json()["profile"]
    with api.client(readonly_agent) as client:
        assert client.get(f"/api/v2/user_profiles/{profile['id']}").status_code == 200
        for response in (
            client.put("/api/v2/user_profiles", params={"identifier": query}, json={"profile": {}}),
            client.patch(f"/api/v2/user_profiles/{profile['id']}", json={"profile": {"name": "x"}}),
            client.delete(f"/api/v2/user_profiles/{profile['id']}"),
            client.post("/api/v2/users", json={"user": {"name": "x"}}),
        ):
            assert response.status_code == 403, response.text
            assert response.json()["errors"][0]["code"] == "Forbidden"
    with api.client() as admin:
        assert admin.get(f"/api/v2/user_profiles/{profile['id']}").json()["profile"] == profile


def test_openapi_document_needs_no_credentials(api: Api) -> None:
    response = httpx.get(f"{api.base_url}/api/v2/openapi.json")
    assert response.status_code == 200
    assert response.json()["components"]["securitySchemes"]["basicAuth"]["scheme"] == "basic"


def test_tokens_are_stored_hashed(api: Api, agent: Credentials) -> None:
    user = agent
    with api.client(user) as client:  # the token works, so it is in the database in some form
        assert client.get("/api/v2/users/me").status_code == 200
    stored = database_text(api)
    assert user.email in stored  # the dump does hold the user's data
    assert user.token not in stored
    assert api.admin.token not in stored


def database_text(api: Api) -> str:
    """Everything the database holds, as text: the raw files for SQLite, every row for PostgreSQL."""
    if api.engine == "sqlite":
        path = Path(api.database_url[len("sqlite:///"):])
        files = [path, Path(f"{path}-wal")]
        return "".join(f.read_bytes().decode("latin-1") for f in files if f.exists())
    import psycopg

    with psycopg.connect(api.database_url) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return "\n".join(str(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)
