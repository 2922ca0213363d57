"""The one kind of response the API sends: a JSON body (or none) with its headers.

Every response passes through here, so it builds the header list the ASGI server writes
directly instead of going through the general-purpose header handling of the framework.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import Response

_JSON = (b"content-type", b"application/json")


class JsonResponse(Response):
    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200,
                 headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        raw = [(b"content-length", b"%d" % len(body)), _JSON]
        if headers:
            raw.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
        self.raw_headers = raw


class EmptyResponse(Response):
    """204: no body, so no content headers either."""

    def __init__(self, status_code: int = 204) -> None:
        self.status_code = status_code
        self.body = b""
        self.background = None
        self.raw_headers = []
