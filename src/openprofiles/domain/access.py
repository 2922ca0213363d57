"""Who may do what: account subdomains, OAuth scopes, and the role rules of the API.

A request needs either the read or the write permission of an endpoint. The role decides
whether the user may have it at all; an OAuth token narrows that further to its scopes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import InvalidAccount

# One DNS label, lower case: it is matched against the first label of a request's Host.
_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

SCOPES = ("read", "write", "users:read", "users:write")
# A read is allowed by any scope; a write needs one of these.
WRITE_SCOPES = frozenset({"write", "users:write"})
READ_SCOPES = frozenset(SCOPES)


def check_subdomain(subdomain: object) -> str:
    if not isinstance(subdomain, str) or not _SUBDOMAIN.fullmatch(subdomain):
        raise InvalidAccount(
            f"The subdomain {subdomain!r} is not a DNS label: use 1 to 63 lower-case letters,"
            " digits and hyphens, not starting or ending with a hyphen."
        )
    return subdomain


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes of an OAuth token, each once, in the order given; at least one."""
    checked: list[str] = []
    for scope in scopes:
        if scope not in SCOPES:
            raise InvalidAccount(
                f"Unknown OAuth scope {scope!r}; use any of: {' '.join(SCOPES)}.",
                code="InvalidScope", title="Invalid scope",
            )
        if scope not in checked:
            checked.append(scope)
    if not checked:
        raise InvalidAccount(
            f"An OAuth token needs at least one scope of: {' '.join(SCOPES)}.",
            code="InvalidScope", title="Invalid scope",
        )
    return tuple(checked)


def scopes_allow(scopes: Iterable[str], *, write: bool) -> bool:
    wanted = WRITE_SCOPES if write else READ_SCOPES
    return any(scope in wanted for scope in scopes)


def role_denial(role: str, people_access: str, *, write: bool) -> str | None:
    """Why a user of this role may not use a Profiles, Events or Users endpoint; None if it may.

    Admins may do everything; agents may read, and write unless their access to people is
    read-only; end-users may use none of these endpoints (only `/users/me`).
    """
    if role == "admin":
        return None
    if role != "agent":
        return "Only agents and admins may use this endpoint."
    if write and people_access == "readonly":
        return "Your role has read-only access to people: it may not make changes."
    return None


def may_create_role(creator_role: str, new_role: str) -> bool:
    """Agents may create end-users; only admins may create agents and admins."""
    return creator_role == "admin" or new_role not in ("admin", "agent")
