"""The OpenAPI 3.1 document of the API, served at /api/v2/openapi.json.

The document is plain Python data built from parts. Each part is a function returning
`{"paths": {...}, "components": {...}, "tags": [...]}`; `document()` merges them and refuses
two parts that define the same path or the same component differently. The core part below
describes the Profiles API and the Users API subset; other modules add theirs by being named
in `PART_MODULES` (each exposes `def part() -> dict`) or by calling `register(part)`.

Shapes are built from the domain's own limits and vocabularies, so that a limit changes in
one place. Component names other parts may reference: schemas `Errors`, `Error`, `Profile`,
`ProfileInput`, `Identifier`; parameters `ProfileId`, `UserId`, `IdentifierQuery`; responses
`BadRequest`, `Unauthorized`, `Forbidden`, `NotFound`, `Conflict`, `PayloadTooLarge`,
`UnsupportedMediaType`, `UnprocessableEntity`, `TooManyRequests`.
"""

from __future__ import annotations

import copy
import functools
import importlib
from collections.abc import Callable
from typing import Any

import msgspec

from .. import __version__
from ..domain import limits
from ..domain.identifiers import MAX_IDENTIFIER_TYPE_LENGTH, MAX_IDENTIFIER_VALUE_LENGTH
from ..domain.users import MAX_NAME_LENGTH, ROLES, USER_IDENTITY_TYPES

Json = dict[str, Any]
Part = Callable[[], Json]

# Modules that contribute a part when they are installed; a missing one is skipped.
PART_MODULES = ("openprofiles.api.openapi_events",)

_registered: list[Part] = []


def register(part: Part) -> Part:
    """Adds a part to the document (usable as a decorator). The cached bytes are rebuilt."""
    if part not in _registered:
        _registered.append(part)
        document_bytes.cache_clear()
    return part


def unregister(part: Part) -> None:
    if part in _registered:
        _registered.remove(part)
        document_bytes.cache_clear()


# Small builders for the repeated bits


def ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def schema_ref(name: str) -> Json:
    return ref("schemas", name)


def json_content(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def json_response(description: str, schema: Json, headers: Json | None = None,
                  links: Json | None = None) -> Json:
    response: Json = {"description": description, "content": json_content(schema)}
    if headers:
        response["headers"] = headers
    if links:
        response["links"] = links
    return response


def links_to(operation_ids: list[str], parameter: str, expression: str) -> Json:
    """OpenAPI links: where the id in this response can be used next."""
    return {operation_id: {"operationId": operation_id, "parameters": {parameter: expression}}
            for operation_id in operation_ids}


def error_response(description: str, headers: Json | None = None) -> Json:
    return json_response(description, schema_ref("Errors"), headers)


def obj(properties: Json, *, required: list[str] | tuple[str, ...] = (), closed: bool = False,
        **extra: Any) -> Json:
    """An object schema; `closed` ones (what the server emits) allow no other properties."""
    schema: Json = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    schema.update(extra)
    return schema


def wrapper(key: str, inner: Json, description: str | None = None) -> Json:
    """`{key: inner}`, the envelope every body of the API uses."""
    schema = obj({key: inner}, required=[key], closed=True)
    if description:
        schema["description"] = description
    return schema


TIMESTAMP: Json = {"type": "string", "format": "date-time",
                   "description": "UTC, ISO 8601 with milliseconds and a `Z` suffix."}
ULID: Json = {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{26}$",
              "description": "A 26-character ULID set by the server."}

# The shared error responses (components/responses) and their statuses.
STATUS_OF = {
    "BadRequest": "400", "Unauthorized": "401", "Forbidden": "403", "NotFound": "404",
    "Conflict": "409", "PayloadTooLarge": "413", "UnsupportedMediaType": "415",
    "UnprocessableEntity": "422", "TooManyRequests": "429", "ServiceUnavailable": "503",
}
# Failures every authenticated operation can give.
# Every one of them reads the database, so each can find it unavailable.
AUTH_FAILURES = ("Unauthorized", "Forbidden", "TooManyRequests", "ServiceUnavailable")
# Failures every operation with a JSON request body can give.
BODY_FAILURES = ("BadRequest", "PayloadTooLarge", "UnsupportedMediaType")


def responses(success: Json, *failures: str, agents_only: bool = True) -> Json:
    """The responses of an authenticated operation: its successes, then the shared failures."""
    table = dict(success)
    names = [*failures, *AUTH_FAILURES]
    if not agents_only:
        names.remove("Forbidden")
    for name in names:
        table[STATUS_OF[name]] = ref("responses", name)
    return dict(sorted(table.items()))


def operation(operation_id: str, summary: str, tag: str, resp: Json, *,
              parameters: list[Json] | None = None, body: Json | None = None,
              description: str | None = None) -> Json:
    op: Json = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = body
    op["responses"] = resp
    return op


def json_body(schema_name: str, *, merge_patch: bool = False) -> Json:
    content = json_content(schema_ref(schema_name))
    if merge_patch:
        content["application/merge-patch+json"] = {"schema": schema_ref(schema_name)}
    return {"required": True, "content": content}


# The core part: the Profiles API and the Users API subset


def _schemas() -> Json:
    value_text = {"type": "string", "minLength": 1, "maxLength": MAX_IDENTIFIER_VALUE_LENGTH}
    return {
        "Error": obj({
            "code": {"type": "string", "description": "A stable, machine-readable code."},
            "title": {"type": "string"},
            "detail": {"type": "string"},
            "status": {"type": "string", "pattern": "^[1-5][0-9]{2}$",
                       "description": "The HTTP status, as a string."},
            "id": {"type": "string", "description": "An id for this occurrence."},
        }, required=["code", "title", "status", "id"], closed=True),
        "Errors": obj({"errors": {"type": "array", "minItems": 1, "items": schema_ref("Error")}},
                      required=["errors"], closed=True),
        "Identifier": obj({
            "type": {"type": "string", "minLength": 1, "maxLength": MAX_IDENTIFIER_TYPE_LENGTH},
            "value": value_text,
        }, required=["type", "value"], closed=True),
        "IdentifierInput": obj({
            "type": {"type": "string", "minLength": 1, "maxLength": MAX_IDENTIFIER_TYPE_LENGTH},
            "value": {"type": ["string", "number"], "minLength": 1,
                      "maxLength": MAX_IDENTIFIER_VALUE_LENGTH,
                      "description": "A number is stored as its decimal string. `email` and "
                                     "`twitter` values are lower-cased, emails also trimmed."},
        }, required=["type", "value"]),
        "Profile": obj({
            "id": ULID,
            "source": {"type": "string", "minLength": 1, "maxLength": limits.MAX_SOURCE_LENGTH},
            "type": {"type": "string", "minLength": 1, "maxLength": limits.MAX_TYPE_LENGTH},
            "name": {"type": "string"},
            "user_id": {"type": "string", "pattern": "^[0-9]+$",
                        "description": "The owning user's id, as a string."},
            "identifiers": {"type": "array", "minItems": 1, "maxItems": limits.MAX_IDENTIFIERS,
                            "items": schema_ref("Identifier")},
            "attributes": {"type": "object"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        }, required=["id", "source", "type", "name", "user_id", "identifiers", "attributes",
                     "created_at", "updated_at"], closed=True),
        "ProfileInput": obj({
            "source": {"type": ["string", "null"], "minLength": 1,
                       "maxLength": limits.MAX_SOURCE_LENGTH,
                       "description": "Must equal the identifier query's source when both are "
                                      "given; `zendesk` (any case) is reserved."},
            "type": {"type": ["string", "null"], "minLength": 1,
                     "maxLength": limits.MAX_TYPE_LENGTH,
                     "description": "Must equal the identifier query's type when both are given."},
            "name": {"type": ["string", "null"],
                     "description": "Derived from the identifiers when absent, null or empty."},
            "identifiers": {"type": ["array", "null"], "maxItems": limits.MAX_IDENTIFIERS,
                            "items": schema_ref("IdentifierInput"),
                            "description": "At least one on create and replace. PATCH adds them."},
            "attributes": {"type": ["object", "null"],
                           "description": f"Any JSON object, at most "
                                          f"{limits.MAX_ATTRIBUTES_BYTES} bytes as JSON. PATCH "
                                          "applies it as a JSON merge patch (RFC 7396)."},
        }, description="A null property is the same as an absent one. Other properties (`id`, "
                       "`user_id`, timestamps) are read-only and ignored."),
        "ProfileRequest": wrapper("profile", schema_ref("ProfileInput")),
        "ProfileResponse": wrapper("profile", schema_ref("Profile")),
        "ProfilesResponse": wrapper("profiles", {"type": "array", "items": schema_ref("Profile")},
                                    "Oldest first."),
        "User": obj({
            "id": {"type": "integer", "minimum": 1},
            "url": {"type": "string", "format": "uri"},
            "name": {"type": "string"},
            "email": {"type": ["string", "null"]},
            "role": {"enum": list(ROLES)},
            "external_id": {"type": ["string", "null"]},
            "active": {"type": "boolean"},
            "suspended": {"type": "boolean"},
            "verified": {"type": "boolean"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        }, required=["id", "url", "name", "email", "role", "external_id", "active", "suspended",
                     "verified", "created_at", "updated_at"], closed=True),
        "UserInput": obj({
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
            "email": {"type": ["string", "null"], "minLength": 1,
                      "maxLength": MAX_IDENTIFIER_VALUE_LENGTH},
            "role": {"enum": [*ROLES, None], "description": "Defaults to `end-user`."},
            "external_id": {"type": ["string", "null"], "minLength": 1,
                            "maxLength": MAX_IDENTIFIER_VALUE_LENGTH},
            "identities": {"type": ["array", "null"], "items": schema_ref("IdentityInput")},
        }, required=["name"]),
        "UserRequest": wrapper("user", schema_ref("UserInput")),
        "UserResponse": wrapper("user", schema_ref("User")),
        "Identity": obj({
            "id": {"type": "integer", "minimum": 1},
            "url": {"type": "string", "format": "uri"},
            "user_id": {"type": "integer", "minimum": 1},
            "type": {"enum": sorted(USER_IDENTITY_TYPES)},
            "value": {"type": "string"},
            "primary": {"type": "boolean"},
            "verified": {"type": "boolean"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        }, required=["id", "url", "user_id", "type", "value", "primary", "verified",
                     "created_at", "updated_at"], closed=True),
        "IdentityInput": obj({
            "type": {"enum": sorted(USER_IDENTITY_TYPES)},
            "value": {**value_text, "description": "`email` values are lower-cased and trimmed."},
        }, required=["type", "value"]),
        "IdentityRequest": wrapper("identity", schema_ref("IdentityInput")),
        "IdentityResponse": wrapper("identity", schema_ref("Identity")),
        "IdentitiesResponse": wrapper("identities",
                                      {"type": "array", "items": schema_ref("Identity")}),
    }


def _parameters() -> Json:
    return {
        "ProfileId": {"name": "profile_id", "in": "path", "required": True,
                      "description": "The profile's id.", "schema": {"type": "string"}},
        "UserId": {"name": "user_id", "in": "path", "required": True,
                   "description": "The user's id.",
                   "schema": {"type": "integer", "format": "int64", "minimum": 1}},
        "IdentifierQuery": {
            "name": "identifier", "in": "query", "required": True,
            "description": "`source:type:identifier_type:identifier_value`. Only the first "
                           "three colons split: the value may contain colons.",
            "schema": {"type": "string", "pattern": "^[^:]+:[^:]+:[^:]+:.+$"},
            "example": "coolbikes:rider:email:jane@example.com",
        },
    }


def _responses() -> Json:
    return {
        "BadRequest": error_response(
            "The request is invalid: malformed JSON, a wrong type, a broken rule."),
        "Unauthorized": error_response("No or bad credentials.", {
            "WWW-Authenticate": {"required": True, "schema": {"const": 'Basic realm="openprofiles"'}},
        }),
        "Forbidden": error_response("The caller's role may not use this operation."),
        "NotFound": error_response("The profile or user does not exist."),
        "Conflict": error_response("The write raced with concurrent writes too often; retry it."),
        "PayloadTooLarge": error_response(f"The body is over {limits.MAX_BODY_BYTES} bytes."),
        "UnsupportedMediaType": error_response("The body's media type is not accepted."),
        "UnprocessableEntity": error_response("A value that must be unique is taken."),
        "TooManyRequests": error_response("Over the rate limit (when rate limiting is enabled).", {
            "Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 0},
                            "description": "Seconds to wait."},
        }),
        "ServiceUnavailable": error_response("The database cannot be reached; retry later.", {
            "Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 0},
                            "description": "Seconds to wait."},
        }),
    }


def _profile_paths() -> Json:
    tag = "Profiles"
    then = links_to(["getProfile", "replaceProfile", "patchProfile", "deleteProfile"],
                    "profile_id", "$response.body#/profile/id")
    one = json_response("The profile.", schema_ref("ProfileResponse"), links=then)
    created = json_response("The profile was created.", schema_ref("ProfileResponse"), {
        "Location": {"required": True, "description": "The new profile's URL.",
                     "schema": {"type": "string", "format": "uri"}},
    }, then)
    deleted = {"description": "Deleted; the body is empty."}
    by_query = [ref("parameters", "IdentifierQuery")]
    by_id = [ref("parameters", "ProfileId")]
    put_body = json_body("ProfileRequest")
    patch_body = json_body("ProfileRequest", merge_patch=True)
    return {
        "/api/v2/user_profiles": {
            "get": operation("getProfileByIdentifier", "Get the profile an identifier query selects",
                             tag, responses({"200": one}, "BadRequest", "NotFound"),
                             parameters=by_query),
            "put": operation("putProfileByIdentifier", "Replace or create a profile", tag,
                             responses({"200": one, "201": created}, *BODY_FAILURES, "Conflict"),
                             parameters=by_query, body=put_body,
                             description="Replaces the selected profile (200) or creates it (201)."),
            "patch": operation("patchProfileByIdentifier", "Merge into a profile", tag,
                               responses({"200": one}, *BODY_FAILURES, "NotFound", "Conflict"),
                               parameters=by_query, body=patch_body,
                               description="Attributes by JSON merge patch, identifiers added, "
                                           "name replaced when given. Never creates."),
            "delete": operation("deleteProfileByIdentifier", "Delete a profile", tag,
                                responses({"204": deleted}, "BadRequest", "NotFound", "Conflict"),
                                parameters=by_query),
        },
        "/api/v2/user_profiles/{profile_id}": {
            "parameters": by_id,
            "get": operation("getProfile", "Get a profile by id", tag,
                             responses({"200": one}, "NotFound")),
            "put": operation("replaceProfile", "Replace a profile", tag,
                             responses({"200": one}, *BODY_FAILURES, "NotFound", "Conflict"),
                             body=put_body),
            "patch": operation("patchProfile", "Merge into a profile", tag,
                               responses({"200": one}, *BODY_FAILURES, "NotFound", "Conflict"),
                               body=patch_body),
            "delete": operation("deleteProfile", "Delete a profile", tag,
                                responses({"204": deleted}, "NotFound", "Conflict")),
        },
        "/api/v2/users/{user_id}/profiles": {
            "parameters": [ref("parameters", "UserId")],
            "get": operation("listUserProfiles", "List a user's profiles", tag,
                             responses({"200": json_response("The user's profiles.",
                                                             schema_ref("ProfilesResponse"))},
                                       "NotFound")),
            "put": operation("putUserProfile", "Replace or create a profile of a user", tag,
                             responses({"200": one, "201": created}, *BODY_FAILURES, "NotFound",
                                       "Conflict"),
                             parameters=by_query, body=put_body,
                             description="Creates the profile linked to the user (201), or "
                                         "replaces it (200); a profile of another user is a 400."),
        },
    }


def _user_paths() -> Json:
    tag = "Users"
    then = links_to(["getUser", "listUserIdentities", "createUserIdentity", "listUserProfiles",
                     "putUserProfile"], "user_id", "$response.body#/user/id")
    user = json_response("The user.", schema_ref("UserResponse"), links=then)
    location = {"Location": {"required": True, "description": "The new user's URL.",
                             "schema": {"type": "string", "format": "uri"}}}
    by_user = [ref("parameters", "UserId")]
    return {
        "/api/v2/users": {
            "post": operation("createUser", "Create a user", tag,
                              responses({"201": json_response("The user was created.",
                                                              schema_ref("UserResponse"), location,
                                                              then)},
                                        *BODY_FAILURES, "Conflict", "UnprocessableEntity"),
                              body=json_body("UserRequest"),
                              description="A taken email, identity or external_id is a 422."),
        },
        "/api/v2/users/me": {
            "get": operation("getCurrentUser", "The authenticated user", tag,
                             responses({"200": user}, agents_only=False),
                             description="Open to every role."),
        },
        "/api/v2/users/{user_id}": {
            "parameters": by_user,
            "get": operation("getUser", "Get a user", tag, responses({"200": user}, "NotFound")),
        },
        "/api/v2/users/{user_id}/identities": {
            "parameters": by_user,
            "get": operation("listUserIdentities", "List a user's identities", tag,
                             responses({"200": json_response("The identities.",
                                                             schema_ref("IdentitiesResponse"))},
                                       "NotFound")),
            "post": operation("createUserIdentity", "Add an identity to a user", tag,
                              responses({"201": json_response("The identity was added.",
                                                              schema_ref("IdentityResponse"))},
                                        *BODY_FAILURES, "NotFound", "Conflict",
                                        "UnprocessableEntity"),
                              body=json_body("IdentityRequest"),
                              description="An identity another user holds is a 422."),
        },
    }


def _meta_paths() -> Json:
    return {
        "/api/v2/openapi.json": {
            "get": {"operationId": "getOpenApiDocument", "summary": "This document",
                    "tags": ["Meta"], "security": [],
                    "responses": {"200": json_response("The OpenAPI document.",
                                                       {"type": "object"})}},
        },
    }


def core_part() -> Json:
    return {
        "paths": {**_profile_paths(), **_user_paths(), **_meta_paths()},
        "components": {
            "schemas": _schemas(),
            "parameters": _parameters(),
            "responses": _responses(),
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic",
                              "description": "`{email}/token:{api_token}` of an active user, or "
                                             "`{email}:{password}` where the account allows "
                                             "passwords."},
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "OAuth access tokens with scopes: a read needs "
                                              "any of read, write, users:read, users:write; a "
                                              "write needs write or users:write."},
            },
        },
        "tags": [{"name": "Profiles"}, {"name": "Users"}, {"name": "Meta"}],
    }


# Assembly


def parts() -> list[Part]:
    found: list[Part] = [core_part]
    for name in PART_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # the module exists but one of its imports is broken
                raise
            continue
        found.append(module.part)
    found.extend(p for p in _registered if p not in found)
    return found


def _merge_named(target: Json, extra: Json, where: str) -> None:
    for name, value in extra.items():
        if name in target and target[name] != value:
            raise ValueError(f"OpenAPI parts disagree on {where}/{name}")
        target[name] = copy.deepcopy(value)


def merge(base: Json, part: Json) -> Json:
    """Adds a part's paths, components and tags to `base` (in place) and returns it."""
    _merge_named(base.setdefault("paths", {}), part.get("paths", {}), "paths")
    components = base.setdefault("components", {})
    for kind, named in part.get("components", {}).items():
        _merge_named(components.setdefault(kind, {}), named, f"components/{kind}")
    tags = base.setdefault("tags", [])
    for tag in part.get("tags", []):
        if all(t["name"] != tag["name"] for t in tags):
            tags.append(tag)
    return base


DESCRIPTION = """\
A self-hostable server for the Sunshine Profiles API.

Every path also answers with a `.json` suffix (`/api/v2/user_profiles.json?identifier=...`).
Every error, of every status, has the body `{"errors": [{"code", "title", "detail", "status",
"id"}]}`; an unknown route is a 404 `RouteNotFound`, a method a path does not define is a 405
`MethodNotAllowed` with an `Allow` header. A request body without a `Content-Type` is read as
JSON. No string in a request body or identifier query may contain U+0000: such a request is
a 400. When rate limiting is enabled, responses carry `X-Rate-Limit` and
`X-Rate-Limit-Remaining`.
"""


def document() -> Json:
    doc: Json = {
        "openapi": "3.1.0",
        "info": {"title": "openprofiles", "version": __version__, "description": DESCRIPTION,
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "servers": [{"url": "/"}],
        "security": [{"basicAuth": []}, {"bearerAuth": []}],
    }
    for part in parts():
        merge(doc, part())
    return doc


@functools.cache
def document_bytes() -> bytes:
    return msgspec.json.encode(document())
