"""Reading request bodies: size limit, media type, JSON."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request

from ..domain.limits import MAX_BODY_BYTES
from .errors import ApiError

_decode = msgspec.json.Decoder().decode

JSON_TYPES = frozenset({"application/json"})
MERGE_PATCH_TYPES = frozenset({"application/json", "application/merge-patch+json"})
# curl's `-d` labels a body as a form unless told otherwise; such a body is read as JSON too.
_LENIENT_TYPES = frozenset({"application/x-www-form-urlencoded"})


def query_value(request: Request, name: str) -> str | None:
    """The last value of `name` in the query string, as the framework's query parameters
    give it, decoding only that value instead of every parameter into a mapping."""
    raw = request.scope["query_string"]
    if not raw:
        return None
    found = None
    for part in raw.decode("latin-1").split("&"):
        key, _, value = part.partition("=")
        if "%" in key or "+" in key:
            key = unquote_plus(key)
        if key == name:
            found = value
    if found is not None and ("%" in found or "+" in found):
        found = unquote_plus(found)
    return found


_BYTE_OF_HEX = {
    f"{high}{low}".encode(): bytes([int(f"{high}{low}", 16)])
    for high in "0123456789abcdefABCDEF" for low in "0123456789abcdefABCDEF"
}


def unquote_plus(text: str) -> str:
    """`urllib.parse.unquote_plus` in fewer steps: an identifier query holds a few escapes on
    every request. Malformed escapes stay as they are, invalid UTF-8 becomes U+FFFD."""
    text = text.replace("+", " ")
    if "%" not in text:
        return text
    first, *rest = text.encode("utf-8").split(b"%")
    out = [first]
    for part in rest:
        byte = _BYTE_OF_HEX.get(part[:2])
        if byte is None:
            out.append(b"%")
            out.append(part)
        else:
            out.append(byte)
            out.append(part[2:])
    return b"".join(out).decode("utf-8", "replace")


def _too_large() -> ApiError:
    return ApiError(413, "PayloadTooLarge", "Payload too large",
                    f"Request bodies are at most {MAX_BODY_BYTES} bytes.")


async def read_json(request: Request, accepted: frozenset[str] = JSON_TYPES) -> Any:
    content_type = request.headers.get("content-type")
    if content_type is not None:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type and media_type not in accepted and media_type not in _LENIENT_TYPES:
            raise ApiError(415, "UnsupportedMediaType", "Unsupported media type",
                           f"Send one of: {', '.join(sorted(accepted))}.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, "InvalidJson", "Invalid JSON", "The request body is empty.")
    try:
        document = _decode(raw)
    except msgspec.DecodeError as error:
        raise ApiError(400, "InvalidJson", "Invalid JSON", f"The body is not valid JSON: {error}.")
    except RecursionError:
        raise ApiError(400, "InvalidJson", "Invalid JSON", "The body nests too deeply.") from None
    return document


def member(document: Any, key: str, code: str, title: str) -> Any:
    """The object under `key` of a `{key: {...}}` body."""
    if not isinstance(document, dict) or not isinstance(document.get(key), dict):
        raise ApiError(400, code, title, f"The body must be a JSON object {{\"{key}\": {{...}}}}.")
    return document[key]
