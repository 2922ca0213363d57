"""The OpenAPI 3.1 document of the API, served at /api/v2/openapi.json."""

from __future__ import annotations

import functools
from typing import Any

import msgspec


def document() -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "openprofiles", "version": "0.1.0"}, "paths": {}}


@functools.cache
def document_bytes() -> bytes:
    return msgspec.json.encode(document())
