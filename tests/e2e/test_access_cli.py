"""The access commands of the command line, driven exactly as the contract writes them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from ..support import Api, cli, unique
from .access import basic, bearer

TOKEN_LINE = re.compile(r"[A-Za-z0-9_-]{30,}")


def last_json(output: str) -> dict:  # type: ignore[type-arg]
    return json.loads(output.strip().splitlines()[-1])


def one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_the_access_commands_end_to_end(api: Api) -> None:
    subdomain = unique("cli")
    account = last_json(api.cli("accounts", "create", "--subdomain", subdomain).stdout)
    assert account["subdomain"] == subdomain and account["password_access"] is False
    on = ["--account", subdomain]

    readonly_email, full_email = f"{unique('ro')}@example.com", f"{unique('full')}@example.com"
    password = f"pw-{unique()}"
    created = api.cli("users", "create", "--email", readonly_email, "--name", "Read Only",
                      "--role", "agent", "--people-access", "readonly", "--password", password,
                      *on)
    assert password not in created.stdout + created.stderr
    readonly = last_json(created.stdout)
    assert (readonly["role"], readonly["people_access"]) == ("agent", "readonly")
    full = last_json(api.cli("users", "create", "--email", full_email, "--name", "Full",
                             "--role", "agent", "--people-access", "full", *on).stdout)
    assert full["people_access"] == "full"

    def token(email: str, *extra: str) -> tuple[int, str]:
        out = api.cli("tokens", "create", "--email", email, *extra, *on).stdout
        lines = out.strip().splitlines()
        assert TOKEN_LINE.fullmatch(lines[-1]), out  # the token alone on the last line
        return int(re.search(r"token id (\d+)", out).group(1)), lines[-1]  # type: ignore[union-attr]

    scopes = ["--oauth", "--scopes", "users:read users:write"]
    _, readonly_bearer = token(readonly_email, *scopes)
    full_token_id, full_bearer = token(full_email, *scopes)
    _, full_api_token = token(full_email)

    host = {"Host": f"{subdomain}.localhost"}
    new_user = {"user": {"name": "Someone"}}
    with httpx.Client(base_url=api.base_url, timeout=30) as client:
        def call(method: str, path: str, auth: str, **kw: object) -> int:
            return client.request(method, path, headers={**host, "Authorization": auth},
                                  **kw).status_code  # type: ignore[arg-type]

        assert call("GET", "/api/v2/users/me", bearer(readonly_bearer)) == 200
        assert call("GET", f"/api/v2/users/{full['id']}", bearer(readonly_bearer)) == 200
        assert call("POST", "/api/v2/users", bearer(readonly_bearer), json=new_user) == 403
        assert call("POST", "/api/v2/users", bearer(full_bearer), json=new_user) == 201
        assert call("POST", "/api/v2/users", basic(f"{full_email}/token", full_api_token),
                    json=new_user) == 201

        # Passwords: off by default, then switched on and off for the account.
        by_password = basic(readonly_email, password)
        assert call("GET", "/api/v2/users/me", by_password) == 401
        switched = api.cli("accounts", "update", "--subdomain", subdomain, "--password-access")
        assert last_json(switched.stdout)["password_access"] is True
        assert call("GET", "/api/v2/users/me", by_password) == 200
        assert call("GET", "/api/v2/users/me", basic(readonly_email, "wrong")) == 401
        api.cli("accounts", "update", "--subdomain", subdomain, "--no-password-access")
        assert call("GET", "/api/v2/users/me", by_password) == 401

        # Revocation is immediate, for the one token only.
        assert "revoked" in api.cli("tokens", "revoke", str(full_token_id)).stdout
        assert call("GET", "/api/v2/users/me", bearer(full_bearer)) == 401
        assert call("GET", "/api/v2/users/me", basic(f"{full_email}/token", full_api_token)) == 200


def test_accounts_created_with_password_access_and_listed(api: Api) -> None:
    subdomain = unique("pw")
    created = last_json(api.cli("accounts", "create", "--subdomain", subdomain,
                                "--password-access").stdout)
    assert created["password_access"] is True
    duplicate = api.cli("accounts", "create", "--subdomain", subdomain, check=False)
    assert one_line_error(duplicate) == f"Error: An account with the subdomain '{subdomain}' exists."
    listed = [json.loads(line) for line in api.cli("accounts", "list").stdout.splitlines()]
    assert {"id": 1, "subdomain": None, "password_access": False} in listed
    assert created in listed


@pytest.mark.parametrize("args, message", [
    (("accounts", "create", "--subdomain", "Acme"), "is not a DNS label"),
    (("accounts", "create", "--subdomain", "-acme"), "is not a DNS label"),
    (("accounts", "create", "--subdomain", "a.b"), "is not a DNS label"),
    (("accounts", "create", "--subdomain", "x" * 64), "is not a DNS label"),
    (("accounts", "update"), "nothing to change"),
    (("tokens", "create", "--email", "a@example.com", "--oauth", "--scopes", "read admin"),
     "Unknown OAuth scope 'admin'"),
    (("tokens", "create", "--email", "a@example.com", "--oauth", "--scopes", ""),
     "needs at least one scope"),
    (("tokens", "create", "--email", "a@example.com", "--scopes", "read"), "add --oauth"),
])
def test_bad_arguments_are_one_line_errors(tmp_path: Path, args: tuple[str, ...],
                                           message: str) -> None:
    path = tmp_path / "cli.db"
    error = one_line_error(cli(f"sqlite:///{path}", *args, check=False))
    assert message in error
    assert not path.exists()  # refused before any database was opened
