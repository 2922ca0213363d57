"""Every failure as the API's error body: {"errors": [{"code", "title", "detail", "status", "id"}]}."""

from __future__ import annotations

import logging
import secrets

import msgspec
from starlette.responses import Response

from ..domain.errors import ProfilesError
from ..store.errors import RetryableConflict, is_unavailable
from .responses import JsonResponse

log = logging.getLogger("openprofiles")
_encode = msgspec.json.Encoder().encode
# Seconds a client should wait after a 503: long enough for a database restart or failover.
UNAVAILABLE_RETRY_AFTER = 2


class ApiError(Exception):
    """A failure found by the HTTP layer itself (credentials, media type, body size)."""

    def __init__(self, status: int, code: str, title: str, detail: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or title)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.headers = headers


def error_response(status: int, code: str, title: str, detail: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    error: dict[str, str] = {"code": code, "title": title}
    if detail:
        error["detail"] = detail
    error["status"] = str(status)
    error["id"] = secrets.token_hex(8)
    return JsonResponse(_encode({"errors": [error]}), status, headers)


def from_exception(error: Exception) -> Response:
    if isinstance(error, ProfilesError):
        return error_response(error.status, error.code, error.title, error.detail)
    if isinstance(error, ApiError):
        return error_response(error.status, error.code, error.title, error.detail, error.headers)
    if isinstance(error, RetryableConflict):
        return error_response(409, "Conflict", "Conflicting concurrent write",
                              "The write raced with others too often; retry it.")
    if is_unavailable(error):
        log.warning("database unavailable: %s", error)
        return error_response(503, "ServiceUnavailable", "Database unavailable",
                              "The database cannot be reached; retry later.",
                              {"Retry-After": str(UNAVAILABLE_RETRY_AFTER)})
    log.exception("unhandled error", exc_info=error)
    return error_response(500, "InternalError", "Internal server error")
