"""Helpers for the access-control tests: tenants with a user of every role and every credential.

Provisioning goes through the service layer against the server's real database, in this
process, because the matrix needs dozens of users and tokens and each CLI run costs a second;
the CLI commands themselves have their own tests (test_access_cli.py).
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field

from openprofiles.service import users as user_service
from openprofiles.store import open_store
from openprofiles.store.urls import DatabaseUrl

from ..support import unique

# role key -> (role, people access)
ROLES: dict[str, tuple[str, str]] = {
    "admin": ("admin", "full"),
    "agent": ("agent", "full"),
    "agent-readonly": ("agent", "readonly"),
    "end-user": ("end-user", "full"),
}
SCOPE_SETS = ("read", "write", "users:read", "users:write")


@dataclass
class Member:
    role: str
    email: str
    password: str
    user_id: int
    api_token: str = ""
    api_token_id: int = 0
    oauth: dict[str, str] = field(default_factory=dict)  # scopes -> bearer token
    oauth_ids: dict[str, int] = field(default_factory=dict)  # scopes -> token id


@dataclass
class Tenant:
    subdomain: str | None
    account_id: int
    members: dict[str, Member]

    @property
    def host(self) -> str:
        return f"{self.subdomain}.localhost" if self.subdomain else "localhost"

    def headers(self, authorization: str | None = None) -> dict[str, str]:
        headers = {"Host": self.host}
        if authorization is not None:
            headers["Authorization"] = authorization
        return headers


def basic(login: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{secret}".encode()).decode()


def api_token_auth(member: Member) -> str:
    return basic(f"{member.email}/token", member.api_token)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def password_auth(member: Member) -> str:
    return basic(member.email, member.password)


def provision(database_url: str, *, password_access: bool = False, tokens: bool = True,
              scope_sets: tuple[str, ...] = SCOPE_SETS, roles: tuple[str, ...] = tuple(ROLES),
              subdomain: str | None = None) -> Tenant:
    """A new account (a unique subdomain unless given) with one user per role."""

    async def run() -> Tenant:
        store = await open_store(DatabaseUrl.parse(database_url), pool_size=2)
        try:
            account = await user_service.create_account(
                store, subdomain or unique("acct"), password_access=password_access
            )
            members: dict[str, Member] = {}
            for key in roles:
                role, people_access = ROLES[key]
                email = f"{key}-{unique()}@example.com"
                password = f"pw-{unique()}"
                created = await user_service.create_user(store, account.id, user_service.NewUser(
                    name=f"Test {key}", role=role, email=email, people_access=people_access,
                    password=password,
                ))
                member = Member(key, email, password, created.user.id)
                if tokens:
                    issued = await user_service.create_token(store, account.id, email)
                    member.api_token, member.api_token_id = issued.token, issued.id
                    for scopes in scope_sets:
                        oauth = await user_service.create_token(
                            store, account.id, email, kind="oauth", scopes=scopes
                        )
                        member.oauth[scopes] = oauth.token
                        member.oauth_ids[scopes] = oauth.id
                members[key] = member
            return Tenant(account.subdomain, account.id, members)
        finally:
            await store.close()

    return asyncio.run(run())


def wait_for_window_room(seconds: float = 10.0) -> None:
    """Rate-limit windows are whole minutes: start a counting test well inside one."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.05)
