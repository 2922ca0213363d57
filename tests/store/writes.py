"""The write the SQLite store tests make: a profile created for an email, in one account."""

from __future__ import annotations

from openprofiles.domain.identifiers import IdentifierQuery
from openprofiles.domain.profile import ProfileInput, parse_profile_input
from openprofiles.service.users import DEFAULT_ACCOUNT_ID

ACCOUNT = DEFAULT_ACCOUNT_ID


def query(email: str) -> IdentifierQuery:
    return IdentifierQuery.parse(f"shop:customer:email:{email}")


def body(plan: str = "gold") -> ProfileInput:
    return parse_profile_input({"attributes": {"plan": plan}})
