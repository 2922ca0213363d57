"""Accounts: the Host's first label picks the account; nothing crosses from one to another."""

from __future__ import annotations

import json

from ..support import Api, create_user, unique


def new_account(api: Api) -> str:
    subdomain = unique("acct")
    created = api.cli("accounts", "create", "--subdomain", subdomain)
    account = json.loads(created.stdout.strip().splitlines()[-1])
    assert account["subdomain"] == subdomain and account["password_access"] is False
    assert account["id"] > 1  # 1 is the default account
    return subdomain


def test_no_data_and_no_credential_crosses_accounts(api: Api) -> None:
    subdomain = new_account(api)
    theirs = create_user(api.database_url, "admin", "--account", subdomain)
    here = {"Host": "127.0.0.1"}
    there = {"Host": f"{subdomain}.localhost"}
    email = f"{unique('shared')}@example.com"
    query = f"shop:customer:email:{email}"
    body = {"profile": {"attributes": {"account": "theirs"}}}

    with api.client(theirs) as them, api.client() as us:
        # Each account's credentials work on its own host only.
        assert them.get("/api/v2/users/me", headers=there).json()["user"]["id"] == theirs.user_id
        for host in (f"{subdomain}.example.com:443", f"{subdomain.upper()}.LocalHost"):
            assert them.get("/api/v2/users/me", headers={"Host": host}).status_code == 200
        assert them.get("/api/v2/users/me", headers=here).status_code == 401
        assert us.get("/api/v2/users/me", headers=there).status_code == 401
        assert us.get("/api/v2/users/me", headers=here).json()["user"]["id"] == api.admin.user_id

        # A profile created in their account ...
        created = them.put("/api/v2/user_profiles", params={"identifier": query}, json=body,
                           headers=there)
        assert created.status_code == 201, created.text
        profile = created.json()["profile"]
        owner = profile["user_id"]

        # ... is invisible here, by identifier, by id and through its user.
        assert us.get("/api/v2/user_profiles", params={"identifier": query},
                      headers=here).status_code == 404
        assert us.get(f"/api/v2/user_profiles/{profile['id']}", headers=here).status_code == 404
        assert us.get(f"/api/v2/users/{owner}", headers=here).status_code == 404
        assert us.get(f"/api/v2/users/{owner}/profiles", headers=here).status_code == 404
        assert us.get(f"/api/v2/users/{owner}/identities", headers=here).status_code == 404
        for write in (
            us.patch(f"/api/v2/user_profiles/{profile['id']}",
                     json={"profile": {"attributes": {"x": 1}}}, headers=here),
            us.delete(f"/api/v2/user_profiles/{profile['id']}", headers=here),
            us.post(f"/api/v2/users/{owner}/identities",
                    json={"identity": {"type": "email", "value": f"{unique()}@example.com"}},
                    headers=here),
        ):
            assert write.status_code == 404, write.text

        # The same identifier and the same email make separate records here.
        ours = us.put("/api/v2/user_profiles", params={"identifier": query},
                      json={"profile": {"attributes": {"account": "ours"}}}, headers=here)
        assert ours.status_code == 201, ours.text
        assert ours.json()["profile"]["id"] != profile["id"]
        assert ours.json()["profile"]["user_id"] != owner
        for client, headers in ((us, here), (them, there)):
            user = client.post("/api/v2/users", json={"user": {"name": "Same", "email":
                                                                f"same-{email}"}},
                               headers=headers)
            assert user.status_code == 201, user.text

        # Their data is as they left it.
        again = them.get("/api/v2/user_profiles", params={"identifier": query}, headers=there)
        assert again.json()["profile"] == profile
        listed = them.get(f"/api/v2/users/{owner}/profiles", headers=there).json()["profiles"]
        assert [p["id"] for p in listed] == [profile["id"]]


def test_an_unknown_subdomain_is_the_default_account(api: Api) -> None:
    with api.client() as client:
        for host in (f"{unique('nobody')}.localhost", "localhost", "127.0.0.1:8000", "[::1]:80"):
            response = client.get("/api/v2/users/me", headers={"Host": host})
            assert response.status_code == 200, (host, response.text)
            assert response.json()["user"]["id"] == api.admin.user_id


def test_account_options_refuse_unknown_subdomains_and_other_accounts_users(api: Api) -> None:
    missing = unique("missing")
    for args in (
        ("users", "create", "--email", f"{unique()}@example.com", "--name", "N", "--role", "agent",
         "--account", missing),
        ("tokens", "create", "--email", api.admin.email, "--account", missing),
    ):
        result = api.cli(*args, check=False)
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [
            f"Error: no account has the subdomain '{missing}'"
        ]
    # `tokens create --account S` looks the email up in S only.
    subdomain = new_account(api)
    result = api.cli("tokens", "create", "--email", api.admin.email, "--account", subdomain,
                     check=False)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"Error: No user has the email '{api.admin.email}'."
    ]
