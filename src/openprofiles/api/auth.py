"""Credentials and roles: who is asking, for which account, and may they.

Nothing here ever puts a credential into an error, a header or a log line: failures say only
which kind of credential was expected.
"""

from __future__ import annotations

import base64
import binascii
import time

from starlette.requests import Request

from ..domain import access
from ..service import users
from ..service.users import Authentication, Credential, PasswordCredential, Principal, TokenCredential
from ..store.base import Store
from . import headers
from .errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Basic realm="openprofiles"'}
_HOW = ("Send Basic {email}/token:{api_token}, Bearer {oauth_token}, or Basic {email}:{password}"
        " where the account allows passwords.")


def unauthorized(detail: str = _HOW) -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized", detail, CHALLENGE)


def forbidden(detail: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(403, "Forbidden", "Forbidden", detail, headers)


def subdomain_of(host: str | None) -> str | None:
    """`acme.example.com` and `acme.localhost` name the account `acme`; other hosts the default."""
    if not host:
        return None
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    labels = name.split(".")
    if len(labels) < 2 or name.replace(".", "").isdigit():
        return None
    return labels[0].lower()


class AccountDirectory:
    """Maps a request's Host to its account id, remembering answers.

    Accounts are never renamed or deleted, so a known subdomain's id is kept for the life of
    the process. An unknown subdomain (which falls back to the default account) is asked
    again after `MISS_SECONDS`, so a new account is reachable within that time.
    """

    MISS_SECONDS = 5.0

    def __init__(self) -> None:
        self._known: dict[str, int] = {}
        self._unknown: dict[str, float] = {}
        # The answers for whole Host headers: clients send the same one on every request.
        self._hosts: dict[str | None, int] = {}

    async def account_id(self, store: Store, host: str | None) -> int:
        known = self._hosts.get(host)
        if known is not None:
            return known
        subdomain = subdomain_of(host)
        if subdomain is None:
            return self._remember(host, users.DEFAULT_ACCOUNT_ID)
        known = self._known.get(subdomain)
        if known is not None:
            return self._remember(host, known)
        now = time.monotonic()
        if self._unknown.get(subdomain, 0.0) > now:
            return users.DEFAULT_ACCOUNT_ID
        account = await users.resolve_account(store, subdomain)
        if account is None:
            if len(self._unknown) > 10_000:  # bounded: Host is chosen by the client
                self._unknown.clear()
            self._unknown[subdomain] = now + self.MISS_SECONDS
            return users.DEFAULT_ACCOUNT_ID
        self._known[subdomain] = account.id
        return self._remember(host, account.id)

    def _remember(self, host: str | None, account_id: int) -> int:
        if len(self._hosts) >= 1024:  # bounded: Host is chosen by the client
            self._hosts.clear()
        self._hosts[host] = account_id
        return account_id


def credential_of(request: Request) -> Credential:
    header = headers.header(request.scope, b"authorization")
    if not header:
        raise unauthorized()
    # A client sends the same header on every request: parsing it once per process is
    # enough. Only valid-looking headers are kept, and only so many.
    credential = _parsed.get(header)
    if credential is None:
        credential = _parse(header)
        if len(_parsed) >= 1024:
            _parsed.clear()
        _parsed[header] = credential
    return credential


_parsed: dict[str, Credential] = {}


def _parse(header: str) -> Credential:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        if not value:
            raise unauthorized()
        return TokenCredential("oauth", value)
    if scheme.lower() != "basic":
        raise unauthorized()
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized("The Basic credentials are not valid base64 of UTF-8.") from None
    login, separator, secret = decoded.partition(":")
    if not separator or not login or not secret or "\x00" in decoded:
        raise unauthorized()
    if login.endswith("/token"):
        return TokenCredential("api", secret, login[: -len("/token")])
    return PasswordCredential(login, secret)


async def authenticate(
    store: Store, account_id: int, request: Request, signins: users.SignIns | None = None
) -> Authentication:
    found = await users.authenticate(store, account_id, credential_of(request), signins)
    if found.principal is None:
        raise unauthorized(found.reason)
    return found


def require(principal: Principal, *, write: bool, agents_only: bool = True) -> None:
    """403 unless the caller's role, and its OAuth scopes if any, allow this kind of request."""
    if agents_only:
        denial = access.role_denial(principal.user.role, principal.user.people_access, write=write)
        if denial is not None:
            raise forbidden(denial)
    if principal.kind == "oauth" and not access.scopes_allow(principal.scopes, write=write):
        needed = sorted(access.WRITE_SCOPES if write else access.READ_SCOPES)
        raise forbidden(
            f"This OAuth token's scopes do not allow this request; it needs one of:"
            f" {' '.join(needed)}.",
            {"WWW-Authenticate": f'Bearer realm="openprofiles", error="insufficient_scope",'
                                 f' scope="{" ".join(needed)}"'},
        )
