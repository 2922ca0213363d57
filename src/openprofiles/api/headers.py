"""Reading one request header straight from the ASGI scope.

Every request needs its Host and Authorization headers; looking each up in the list the
server hands over skips building the framework's header mapping for them.
"""

from __future__ import annotations

from starlette.types import Scope


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of the header `name` (lower case, as ASGI servers give names)."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None
