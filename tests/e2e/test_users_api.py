"""The Users API subset (RULES §8) over HTTP, on each engine."""

from __future__ import annotations

import re

import httpx
import pytest

from ..support import Api, Credentials, unique

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def new_user(client: httpx.Client, **fields: object) -> httpx.Response:
    body = {"name": unique("User "), **fields}
    return client.post("/api/v2/users", json={"user": body})


def error_code(response: httpx.Response) -> str:
    return response.json()["errors"][0]["code"]


def test_create_user_with_identities(client: httpx.Client, api: Api) -> None:
    email = f"{unique('Ann')}@Example.com"
    twitter, phone = unique("Tw"), f"+1 555 {unique()}"
    response = new_user(client, email=email, role="end-user", external_id=unique("ext-"),
                        identities=[{"type": "twitter", "value": twitter},
                                    {"type": "phone_number", "value": phone}])
    assert response.status_code == 201, response.text
    user = response.json()["user"]
    assert type(user["id"]) is int
    assert user["email"] == email.lower()
    assert user["role"] == "end-user"
    assert user["active"] is True and user["suspended"] is False
    assert user["url"] == f"{api.base_url}/api/v2/users/{user['id']}.json"
    assert response.headers["location"] == f"{api.base_url}/api/v2/users/{user['id']}"
    assert TIMESTAMP.match(user["created_at"]) and TIMESTAMP.match(user["updated_at"])

    read = client.get(f"/api/v2/users/{user['id']}")
    assert read.status_code == 200
    assert read.json() == {"user": user}
    assert client.get(f"/api/v2/users/{user['id']}.json").json() == {"user": user}

    listed = client.get(f"/api/v2/users/{user['id']}/identities")
    assert listed.status_code == 200
    identities = listed.json()["identities"]
    assert [(i["type"], i["value"]) for i in identities] == [
        ("email", email.lower()), ("twitter", twitter.lower()), ("phone_number", phone)]
    assert all(i["primary"] for i in identities)  # each is the first of its type
    for identity in identities:
        assert type(identity["id"]) is int and identity["user_id"] == user["id"]
        assert identity["url"] == (
            f"{api.base_url}/api/v2/users/{user['id']}/identities/{identity['id']}.json")


def test_role_defaults_to_end_user(client: httpx.Client) -> None:
    response = new_user(client)
    assert response.status_code == 201
    assert response.json()["user"]["role"] == "end-user"
    assert response.json()["user"]["email"] is None


def test_add_identity(client: httpx.Client) -> None:
    user = new_user(client, email=f"{unique('b')}@example.com").json()["user"]
    value = f"{unique('second')}@example.com"
    added = client.post(f"/api/v2/users/{user['id']}/identities",
                        json={"identity": {"type": "email", "value": value}})
    assert added.status_code == 201, added.text
    identity = added.json()["identity"]
    assert identity["type"] == "email" and identity["value"] == value
    assert identity["primary"] is False  # the user already has a primary email
    assert type(identity["id"]) is int and identity["user_id"] == user["id"]
    listed = client.get(f"/api/v2/users/{user['id']}/identities").json()["identities"]
    assert listed[-1] == identity


def test_me_is_the_caller(api: Api, end_user: Credentials) -> None:
    with api.client() as client:
        me = client.get("/api/v2/users/me")
        assert me.status_code == 200
        assert me.json()["user"]["id"] == api.admin.user_id
        assert me.json()["user"]["email"] == api.admin.email
        assert me.json()["user"]["role"] == "admin"
    with api.client(end_user) as client:  # every role may ask who it is
        me = client.get("/api/v2/users/me.json")
        assert me.status_code == 200
        assert me.json()["user"]["id"] == end_user.user_id
        assert me.json()["user"]["role"] == "end-user"


@pytest.mark.parametrize("field", ["email", "external_id"])
def test_duplicate_user_values_are_422(client: httpx.Client, field: str) -> None:
    value = f"{unique('dup')}@example.com"
    assert new_user(client, **{field: value}).status_code == 201
    again = new_user(client, **{field: value.upper() if field == "email" else value})
    assert again.status_code == 422, again.text
    assert error_code(again) == "DuplicateValue"


def test_duplicate_identities_are_422(client: httpx.Client) -> None:
    handle = unique("handle")
    first = new_user(client, identities=[{"type": "twitter", "value": handle}]).json()["user"]
    taken = new_user(client, identities=[{"type": "twitter", "value": handle.upper()}])
    assert taken.status_code == 422
    assert error_code(taken) == "DuplicateValue"

    other = new_user(client).json()["user"]
    for owner in (first, other):  # held by the user itself or by another
        added = client.post(f"/api/v2/users/{owner['id']}/identities",
                            json={"identity": {"type": "twitter", "value": handle}})
        assert added.status_code == 422, added.text
        assert error_code(added) == "DuplicateValue"
    assert client.get(f"/api/v2/users/{other['id']}/identities").json() == {"identities": []}


def test_failed_create_writes_nothing(client: httpx.Client) -> None:
    handle, email = unique("h"), f"{unique('n')}@example.com"
    assert new_user(client, identities=[{"type": "twitter", "value": handle}]).status_code == 201
    failed = new_user(client, email=email, identities=[{"type": "twitter", "value": handle}])
    assert failed.status_code == 422
    # The email of the failed create is still free.
    assert new_user(client, email=email).status_code == 201


@pytest.mark.parametrize("path", [
    "/api/v2/users/{id}", "/api/v2/users/{id}/identities", "/api/v2/users/{id}/profiles",
])
@pytest.mark.parametrize("user_id", ["999999999", "0", "abc", "-1", "1" * 30])
def test_unknown_user_is_404(client: httpx.Client, path: str, user_id: str) -> None:
    response = client.get(path.format(id=user_id))
    assert response.status_code == 404, response.text
    assert error_code(response) == "UserNotFound"


def test_writes_to_unknown_user_are_404(client: httpx.Client) -> None:
    added = client.post("/api/v2/users/999999999/identities",
                        json={"identity": {"type": "email", "value": f"{unique()}@example.com"}})
    assert added.status_code == 404 and error_code(added) == "UserNotFound"
    put = client.put("/api/v2/users/999999999/profiles",
                     params={"identifier": f"shop:customer:member:{unique()}"},
                     json={"profile": {}})
    assert put.status_code == 404 and error_code(put) == "UserNotFound"


@pytest.mark.parametrize("user", [
    {},
    {"name": ""},
    {"name": 5},
    {"name": "x" * 256},
    {"name": "A", "role": "boss"},
    {"name": "A", "email": 3},
    {"name": "A", "email": "  "},
    {"name": "A", "external_id": ""},
    {"name": "A", "external_id": "x" * 513},
    {"name": "A", "identities": "email"},
    {"name": "A", "identities": ["x"]},
    {"name": "A", "identities": [{"type": "fax", "value": "1"}]},
    {"name": "A", "identities": [{"type": "email", "value": 1}]},
    {"name": "A", "identities": [{"type": "sdk", "value": "x" * 513}]},
])
def test_invalid_users_are_400(client: httpx.Client, user: dict[str, object]) -> None:
    response = client.post("/api/v2/users", json={"user": user})
    assert response.status_code == 400, response.text
    assert error_code(response) == "InvalidUser"


@pytest.mark.parametrize("identity", [
    {}, {"type": "email"}, {"type": "fax", "value": "1"}, {"type": "email", "value": ""},
    {"type": "email", "value": ["a"]},
])
def test_invalid_identities_are_400(client: httpx.Client, identity: dict[str, object]) -> None:
    user = new_user(client).json()["user"]
    response = client.post(f"/api/v2/users/{user['id']}/identities", json={"identity": identity})
    assert response.status_code == 400, response.text
    assert error_code(response) == "InvalidUser"


def test_user_ids_are_integers_here_and_strings_in_profiles(client: httpx.Client) -> None:
    email = f"{unique('p')}@example.com"
    user = new_user(client, email=email).json()["user"]
    created = client.put("/api/v2/user_profiles",
                         params={"identifier": f"shop:customer:email:{email}"},
                         json={"profile": {}})
    assert created.status_code == 201, created.text
    assert created.json()["profile"]["user_id"] == str(user["id"])
    listed = client.get(f"/api/v2/users/{user['id']}/profiles").json()["profiles"]
    assert [p["id"] for p in listed] == [created.json()["profile"]["id"]]


def test_users_endpoints_need_an_agent(api: Api, end_user: Credentials,
                                       agent: Credentials) -> None:
    with api.client(end_user) as client:
        assert new_user(client).status_code == 403
        assert client.get(f"/api/v2/users/{end_user.user_id}").status_code == 403
        assert client.get(f"/api/v2/users/{end_user.user_id}/identities").status_code == 403
    with api.client(agent) as client:
        created = new_user(client)
        assert created.status_code == 201
        assert client.get(f"/api/v2/users/{created.json()['user']['id']}").status_code == 200
