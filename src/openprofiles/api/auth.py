"""Credentials and roles: who is asking, for which account, and may they."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from ..service import users
from ..service.users import Principal
from ..store.base import Account, Store
from .errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Basic realm="openprofiles"'}


def unauthorized(detail: str = "Send Basic credentials {email}/token:{api_token}.") -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized", detail, CHALLENGE)


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "Forbidden", "Forbidden", detail)


def subdomain_of(host: str | None) -> str | None:
    """`acme.example.com` and `acme.localhost` name the account `acme`; other hosts the default."""
    if not host:
        return None
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    labels = name.split(".")
    if len(labels) < 2 or name.replace(".", "").isdigit():
        return None
    return labels[0].lower()


async def account_for(store: Store, request: Request) -> Account:
    account = await users.resolve_account(store, subdomain_of(request.headers.get("host")))
    if account is None:
        # Unknown subdomains fall back to the default account, as a single-tenant server would.
        account = await users.resolve_account(store, None)
        assert account is not None
    return account


async def authenticate(store: Store, account: Account, request: Request) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized()
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        raise unauthorized()
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized("The Basic credentials are not valid base64.") from None
    login, separator, secret = decoded.partition(":")
    if not separator or not login.endswith("/token") or not secret or "\x00" in decoded:
        raise unauthorized()
    email = login[: -len("/token")]
    principal = await users.authenticate_token(store, account.id, email, secret)
    if principal is None:
        raise unauthorized("The credentials are not valid.")
    return principal


def require(principal: Principal, *, write: bool) -> None:
    user = principal.user
    if user.role == "admin":
        return
    if user.role != "agent":
        raise forbidden("Only agents and admins may use this endpoint.")
    if write and user.people_access == "readonly":
        raise forbidden("Your role may not edit people.")
