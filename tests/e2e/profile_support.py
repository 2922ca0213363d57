"""Small helpers shared by the end-to-end profile tests: requests, error checks, row counts."""

from __future__ import annotations

from typing import Any

import httpx


from ..support import Api, fetch_all, unique

PROFILES = "/api/v2/user_profiles"
COUNTED_TABLES = ("users", "user_identities", "profiles", "profile_identifiers", "profile_kinds")


def query(source: str, profile_type: str, identifier_type: str, value: str) -> str:
    return f"{source}:{profile_type}:{identifier_type}:{value}"


def email() -> str:
    return f"{unique('p')}@example.com"


def put(client: httpx.Client, identifier: str, profile: dict[str, Any] | None = None,
        *, path: str = PROFILES, **kwargs: Any) -> httpx.Response:
    return client.put(path, params={"identifier": identifier},
                      json={"profile": profile if profile is not None else {}}, **kwargs)


def create(client: httpx.Client, identifier: str, profile: dict[str, Any] | None = None,
           **kwargs: Any) -> dict[str, Any]:
    """Creates a profile that must not exist yet and returns it."""
    response = put(client, identifier, profile, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()["profile"]


def get(client: httpx.Client, identifier: str) -> httpx.Response:
    return client.get(PROFILES, params={"identifier": identifier})


def patch(client: httpx.Client, identifier: str, profile: dict[str, Any]) -> httpx.Response:
    return client.patch(PROFILES, params={"identifier": identifier}, json={"profile": profile})


def new_user(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    """Creates a user through the Users API and returns it."""
    body = {"name": fields.pop("name", unique("User ")), **fields}
    response = client.post("/api/v2/users", json={"user": body})
    assert response.status_code == 201, response.text
    return response.json()["user"]


def identities(client: httpx.Client, user_id: int | str) -> set[tuple[str, str]]:
    response = client.get(f"/api/v2/users/{user_id}/identities")
    assert response.status_code == 200, response.text
    return {(i["type"], i["value"]) for i in response.json()["identities"]}


def user(client: httpx.Client, user_id: int | str) -> dict[str, Any]:
    response = client.get(f"/api/v2/users/{user_id}")
    assert response.status_code == 200, response.text
    return response.json()["user"]


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an error in the API's format, with this status (and code)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    errors = response.json()["errors"]
    assert len(errors) == 1
    error = errors[0]
    assert error["status"] == str(status)
    assert error["code"] and error["title"] and error["id"]
    if code is not None:
        assert error["code"] == code, error
    return error


def row_counts(api: Api) -> dict[str, int]:
    """How many rows each table holds, read straight from the server's database.

    Used to prove that a refused write left nothing behind: the API has no way to list every
    user or identity, and the database is the real one the server writes to.
    """
    return {t: fetch_all(api.database_url, f"SELECT COUNT(*) FROM {t}")[0][0]
            for t in COUNTED_TABLES}
