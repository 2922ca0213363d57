"""The endpoints of the Events API (EVENTS.md)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from ..domain.errors import UserNotFound
from ..domain.events import (
    Event, EventInput, EventPage, EventQuery, encode_cursor, format_time, parse_event,
    parse_event_query,
)
from ..domain.identifiers import IdentifierQuery
from ..domain.profile import ProfileInput, parse_profile_input
from ..service import events
from . import render
from .bodies import member, read_json
from .context import Call
from .responses import JsonResponse

_PAGE_KEYS = ("page[after]", "page[before]")


def _json(document: Any, status: int = 200) -> Response:
    return JsonResponse(render.encode(document), status)


def _user_id(call: Call) -> int:
    raw = call.request.path_params["user_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise UserNotFound(f"No user has the id {raw}.")
    return int(raw)


def _event(document: Any) -> EventInput:
    return parse_event(member(document, "event", "InvalidEvent", "Invalid event"))


_TARGET_KEYS = ("source", "type", "identifiers", "name")


def _target(document: Any) -> ProfileInput:
    """The profile an event names. Only these keys count: `attributes` and the rest are not
    part of an event's profile, and are ignored rather than checked."""
    profile = member(document, "profile", "InvalidProfile", "Invalid profile")
    return parse_profile_input({k: profile[k] for k in _TARGET_KEYS if k in profile})


def _received(received: events.Received) -> Response:
    return _json(
        {"profile_id": received.profile_id, "status": "received",
         "user_id": str(received.user_id)},
        202,
    )


def render_event(event: Event) -> dict[str, Any]:
    rendered: dict[str, Any] = {"id": event.id, "source": event.source, "type": event.type}
    if event.description is not None:
        rendered["description"] = event.description
    rendered["properties"] = event.properties
    rendered["created_at"] = format_time(event.created_at)
    rendered["received_at"] = format_time(event.received_at)
    return rendered


def _page_link(call: Call, key: str, cursor: str) -> str:
    """This request's URL, filters and page size kept, turned to the page past `cursor`."""
    kept = [(k, v) for k, v in call.request.query_params.multi_items() if k not in _PAGE_KEYS]
    query = urlencode([*kept, (key, cursor)], safe="[]")
    return str(call.request.url.replace(query=query))


def _page(call: Call, page: EventPage) -> Response:
    after = encode_cursor(page.after_cursor) if page.after_cursor else None
    before = encode_cursor(page.before_cursor) if page.before_cursor else None
    return _json({
        "events": [render_event(e) for e in page.events],
        "meta": {"has_more": page.has_more, "after_cursor": after, "before_cursor": before},
        "links": {
            "next": _page_link(call, "page[after]", after) if after else None,
            "prev": _page_link(call, "page[before]", before) if before else None,
        },
    })


def _query(call: Call) -> EventQuery:
    return parse_event_query(call.request.query_params)


# Tracking


async def track(call: Call) -> Response:
    document = await read_json(call.request)
    target, event = _target(document), _event(document)
    return _received(await events.track(
        call.store, call.account_id, call.settings.limits, target, event
    ))


async def track_for_user(call: Call) -> Response:
    user_id = _user_id(call)
    document = await read_json(call.request)
    target, event = _target(document), _event(document)
    return _received(await events.track(
        call.store, call.account_id, call.settings.limits, target, event, user_id=user_id
    ))


async def track_for_profile(call: Call) -> Response:
    profile_id = call.request.path_params["profile_id"]
    event = _event(await read_json(call.request))
    return _received(await events.track_for_profile(call.store, call.account_id, profile_id, event))


# Listing


async def list_for_user(call: Call) -> Response:
    user_id = _user_id(call)
    page = await events.list_for_user(call.store, call.account_id, user_id, _query(call))
    return _page(call, page)


async def list_for_profile(call: Call) -> Response:
    profile_id = call.request.path_params["profile_id"]
    page = await events.list_for_profile(call.store, call.account_id, profile_id, _query(call))
    return _page(call, page)


async def list_for_query(call: Call) -> Response:
    identifier = IdentifierQuery.parse(call.request.query_params.get("identifier"))
    page = await events.list_for_query(call.store, call.account_id, identifier, _query(call))
    return _page(call, page)
