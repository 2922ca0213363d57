"""The Events API's part of the OpenAPI 3.1 document: its six operations and their schemas.

`part()` gives `{"paths": {...}, "components": {"schemas": {...}}}` for the main document to
merge; error responses refer to the main document's `Errors` schema.
"""

from __future__ import annotations

from typing import Any

_ERRORS = {"$ref": "#/components/schemas/Errors"}
_MAX_NAME = 40


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    descriptions = {
        400: "The body, a parameter or the identifier query is invalid, or a rule refuses the"
             " write (nothing is written).",
        401: "No or bad credentials.",
        403: "The caller's role may not do this.",
        404: "The user or profile does not exist.",
        409: "The write lost a race with concurrent writes too often; retry it.",
        413: "The body is over 1 MiB.",
        415: "The body is not JSON.",
        503: "The database cannot be reached; retry later.",
    }
    return {str(status): _json(_ERRORS, descriptions[status]) for status in statuses}


_TRACK_ERRORS = _errors(400, 401, 403, 404, 409, 413, 415, 503)
_LIST_ERRORS = _errors(400, 401, 403, 404, 503)

_USER_ID = {
    "name": "user_id", "in": "path", "required": True,
    "description": "The user's id.", "schema": {"type": "integer", "minimum": 1},
}
_PROFILE_ID = {
    "name": "profile_id", "in": "path", "required": True,
    "description": "The profile's id, a ULID.", "schema": {"type": "string"},
}
_IDENTIFIER = {
    "name": "identifier", "in": "query", "required": True,
    "description": "`source:type:identifier_type:identifier_value`; only the first three colons"
                   " split.",
    "schema": {"type": "string"},
    "example": "shoppingnow:customer:email:jane@example.com",
}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


_LIST_PARAMETERS = [
    _query("filter[source]", "Only events of this source.", {"type": "string"}),
    _query("filter[type]", "Only events of this type; needs `filter[source]` (else 400).",
           {"type": "string"}),
    _query("filter[start_time]", "Only events created at or after this ISO 8601 time.",
           {"type": "string", "format": "date-time"}),
    _query("filter[end_time]", "Only events created at or before this ISO 8601 time.",
           {"type": "string", "format": "date-time"}),
    _query("page[size]", "Events per page, 1 to 100.",
           {"type": "integer", "minimum": 1, "maximum": 100, "default": 100}),
    _query("page[after]", "The `after_cursor` of a page: the page of older events after it.",
           {"type": "string"}),
    _query("page[before]", "The `before_cursor` of a page: the page of newer events before it.",
           {"type": "string"}),
]

_ACCEPTED = {"202": _json(_ref("EventReceived"), "The event is stored.")}
_LISTED = {"200": _json(_ref("EventList"), "A page of events, newest first.")}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


_TRACK_DESCRIPTION = (
    "Finds the profile of the source and type that holds any of the identifiers, adding the"
    " identifiers it lacks; or creates it by the rules of a profile create (user matching,"
    " anonymous user, derived name). Then stores the event; the answer comes once it is"
    " stored."
)


def _paths() -> dict[str, Any]:
    return {
        "/api/v2/user_profiles/events": {
            "post": {
                "operationId": "TrackEventByProfile",
                "tags": ["Events"],
                "summary": "Track an event against a profile",
                "description": _TRACK_DESCRIPTION,
                "requestBody": _body("TrackEventRequest"),
                "responses": {**_ACCEPTED, **_TRACK_ERRORS},
            },
            "get": {
                "operationId": "ListEventsByIdentifier",
                "tags": ["Events"],
                "summary": "List the events of the profile an identifier query selects",
                "parameters": [_IDENTIFIER, *_LIST_PARAMETERS],
                "responses": {**_LISTED, **_LIST_ERRORS},
            },
        },
        "/api/v2/users/{user_id}/events": {
            "post": {
                "operationId": "TrackEventByUser",
                "tags": ["Events"],
                "summary": "Track an event against a profile of a user",
                "description": _TRACK_DESCRIPTION + " A created profile belongs to the user; a"
                " found profile of another user is a 400.",
                "parameters": [_USER_ID],
                "requestBody": _body("TrackEventRequest"),
                "responses": {**_ACCEPTED, **_TRACK_ERRORS},
            },
            "get": {
                "operationId": "ListEventsByUser",
                "tags": ["Events"],
                "summary": "List the events of all of a user's profiles",
                "parameters": [_USER_ID, *_LIST_PARAMETERS],
                "responses": {**_LISTED, **_LIST_ERRORS},
            },
        },
        "/api/v2/user_profiles/{profile_id}/events": {
            "post": {
                "operationId": "TrackEventByProfileId",
                "tags": ["Events"],
                "summary": "Track an event against a profile by its id",
                "parameters": [_PROFILE_ID],
                "requestBody": _body("TrackProfileEventRequest"),
                "responses": {**_ACCEPTED, **_TRACK_ERRORS},
            },
            "get": {
                "operationId": "ListEventsByProfileId",
                "tags": ["Events"],
                "summary": "List the events of a profile",
                "parameters": [_PROFILE_ID, *_LIST_PARAMETERS],
                "responses": {**_LISTED, **_LIST_ERRORS},
            },
        },
    }


def _schemas() -> dict[str, Any]:
    name = {"type": "string", "minLength": 1, "maxLength": _MAX_NAME}
    nullable_string = {"type": ["string", "null"]}
    return {
        "Event": {
            "type": "object",
            "description": "An event as stored.",
            "properties": {
                "id": {"type": "string", "description": "A ULID set by the server."},
                "source": {"type": "string"},
                "type": {"type": "string"},
                "description": {"type": "string", "description": "Present when given."},
                "properties": {"type": "object"},
                "created_at": {"type": "string", "format": "date-time",
                               "description": "The sender's time, else the time received."},
                "received_at": {"type": "string", "format": "date-time"},
            },
            "required": ["id", "source", "type", "properties", "created_at", "received_at"],
        },
        "EventInput": {
            "type": "object",
            "properties": {
                "source": {**name, "description": "`zendesk`, in any case, is reserved."},
                "type": name,
                "description": {"type": ["string", "null"]},
                "properties": {"type": "object"},
                "created_at": {"type": ["string", "null"], "format": "date-time",
                               "description": "ISO 8601; the time received when absent."},
            },
            "required": ["source", "type", "properties"],
        },
        "EventProfileIdentifier": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "minLength": 1, "maxLength": 60},
                "value": {"type": ["string", "number"],
                          "description": "A number is stored as its decimal string."},
            },
            "required": ["type", "value"],
        },
        "EventProfile": {
            "type": "object",
            "description": "Which profile the event belongs to. `name` is used when the profile"
                           " is created; other keys are ignored.",
            "properties": {
                "source": {**name, "description": "`zendesk`, in any case, is reserved."},
                "type": name,
                "identifiers": {"type": "array", "minItems": 1, "maxItems": 20,
                                "items": _ref("EventProfileIdentifier")},
                "name": {"type": ["string", "null"]},
            },
            "required": ["source", "type", "identifiers"],
        },
        "TrackEventRequest": {
            "type": "object",
            "properties": {"profile": _ref("EventProfile"), "event": _ref("EventInput")},
            "required": ["profile", "event"],
        },
        "TrackProfileEventRequest": {
            "type": "object",
            "properties": {"event": _ref("EventInput")},
            "required": ["event"],
        },
        "EventReceived": {
            "type": "object",
            "properties": {
                "profile_id": {"type": "string"},
                "status": {"type": "string", "const": "received"},
                "user_id": {"type": "string", "description": "The user's id, as a string."},
            },
            "required": ["profile_id", "status", "user_id"],
            "additionalProperties": False,
        },
        "EventList": {
            "type": "object",
            "properties": {
                "events": {"type": "array", "items": _ref("Event")},
                "meta": {
                    "type": "object",
                    "properties": {
                        "has_more": {"type": "boolean", "description": "Whether more events lie"
                                     " beyond this page in the direction it was read."},
                        "after_cursor": {**nullable_string,
                                         "description": "The last event's position."},
                        "before_cursor": {**nullable_string,
                                          "description": "The first event's position."},
                    },
                    "required": ["has_more", "after_cursor", "before_cursor"],
                },
                "links": {
                    "type": "object",
                    "properties": {"next": nullable_string, "prev": nullable_string},
                    "required": ["next", "prev"],
                },
            },
            "required": ["events", "meta", "links"],
        },
    }


def part() -> dict[str, Any]:
    return {"paths": _paths(), "components": {"schemas": _schemas()}}
