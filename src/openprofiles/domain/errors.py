"""Errors raised by the rules. Each carries the API error code and the HTTP status it maps to.

The status is a plain integer so that the domain stays free of any web framework while the
API layer can still render every failure in the one error format.
"""

from __future__ import annotations


class ProfilesError(Exception):
    status: int = 400
    code: str = "InvalidProfile"
    title: str = "Invalid profile"

    def __init__(self, detail: str, *, code: str | None = None, title: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if title is not None:
            self.title = title


class InvalidIdentifierQuery(ProfilesError):
    code = "InvalidIdentifierQuery"
    title = "Invalid identifier query"


class InvalidProfile(ProfilesError):
    code = "InvalidProfile"
    title = "Invalid profile"


class InvalidUser(ProfilesError):
    code = "InvalidUser"
    title = "Invalid user"


class InvalidAccount(ProfilesError):
    code = "InvalidAccount"
    title = "Invalid account"


class InvalidEvent(ProfilesError):
    code = "InvalidEvent"
    title = "Invalid event"


class InvalidParameter(ProfilesError):
    code = "InvalidParameter"
    title = "Invalid parameter"


class ReservedSource(ProfilesError):
    code = "ReservedSource"
    title = "The source 'zendesk' is reserved"


class TooManyIdentifiers(ProfilesError):
    code = "TooManyIdentifiers"
    title = "Too many identifiers"


class IdentifiersForMultipleUsers(ProfilesError):
    code = "IdentifiersForMultipleUsers"
    title = "Identifiers for multiple users"


class IdentifierInUse(ProfilesError):
    code = "IdentifierInUse"
    title = "Identifier in use"


class ProfileLimitExceeded(ProfilesError):
    code = "ProfileLimitExceeded"
    title = "Profile limit exceeded"


class LimitExceeded(ProfilesError):
    code = "LimitExceeded"
    title = "Limit exceeded"


class ProfileNotFound(ProfilesError):
    status = 404
    code = "ProfileNotFound"
    title = "Profile not found"


class UserNotFound(ProfilesError):
    status = 404
    code = "UserNotFound"
    title = "User not found"


class DuplicateValue(ProfilesError):
    """A value that must be unique (an identity, an email, an external id) is taken."""

    status = 422
    code = "DuplicateValue"
    title = "Duplicate value"
