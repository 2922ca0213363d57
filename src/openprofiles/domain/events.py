"""Events (EVENTS.md): the event body, times, list filters and the cursors of pages.

Lists are newest first: ordered by `created_at` descending, then by `id` descending, so that
events sharing a `created_at` still have one fixed order. A cursor names one position in that
order, `(created_at, id)`, not an offset: pages fetched from a cursor stay the same while new
events arrive before or after it.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ulid import ULID

from . import limits
from .errors import InvalidEvent, InvalidParameter, ReservedSource
from .identifiers import NUL_MESSAGE, storable
from .profile import RESERVED_SOURCE

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100
# Per account, as published; a (source, type) pair counts from its first event, for good.
MAX_EVENT_SOURCES = 50
MAX_EVENT_TYPES = 2500

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
# The times `format_time` can write: the years 1 to 9999, in UTC.
_MIN_MS = (datetime(1, 1, 1, tzinfo=timezone.utc) - _EPOCH) // timedelta(milliseconds=1)
_MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc) - _EPOCH) // timedelta(
    milliseconds=1
)


@dataclass(slots=True)
class Event:
    id: str  # a ULID, set by the server
    profile_id: str
    user_id: int
    source: str
    type: str
    description: str | None
    properties: dict[str, Any]
    created_at: int  # milliseconds since the epoch, UTC
    received_at: int


@dataclass(frozen=True, slots=True)
class EventInput:
    """What an `{"event": {...}}` body says, checked. `created_at` is None when not given."""

    source: str
    type: str
    description: str | None
    properties: dict[str, Any]
    created_at: int | None


# Times


def parse_time(text: str, *, round_up: bool = False) -> int:
    """An ISO 8601 time as milliseconds since the epoch; a time without an offset is UTC.

    Raises ValueError. Finer than millisecond precision is rounded down, or up with
    `round_up`: an inclusive lower bound of 00:00:00.0005 must not take in an event of
    00:00:00.000.
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    micros = (moment - _EPOCH) // _MICROSECOND
    millis, rest = divmod(micros, 1000)
    if round_up and rest:
        millis += 1
    if not _MIN_MS <= millis <= _MAX_MS:
        raise ValueError("outside the years 1 to 9999 in UTC")
    return millis


def _time_parameter(value: str, name: str, *, round_up: bool = False) -> int:
    try:
        return parse_time(value, round_up=round_up)
    except ValueError:
        raise InvalidParameter(
            f"{name} is not an ISO 8601 time, such as 2020-01-31T00:44:07Z.", code="InvalidTime"
        ) from None


def format_time(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with a `Z`, for any year 1 to 9999."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


# The event body


def check_event_source(source: object) -> str:
    if not isinstance(source, str) or not source:
        raise InvalidEvent("An event needs a non-empty string 'source'.")
    if not storable(source):
        raise InvalidEvent(NUL_MESSAGE)
    if len(source) > limits.MAX_SOURCE_LENGTH:
        raise InvalidEvent(
            f"The event source is longer than {limits.MAX_SOURCE_LENGTH} characters.",
            code="InvalidEventSourceLength",
        )
    if source.lower() == RESERVED_SOURCE:
        raise ReservedSource("The event source 'zendesk' is reserved for Zendesk's own events.")
    return source


def check_event_type(event_type: object) -> str:
    if not isinstance(event_type, str) or not event_type:
        raise InvalidEvent("An event needs a non-empty string 'type'.")
    if not storable(event_type):
        raise InvalidEvent(NUL_MESSAGE)
    if len(event_type) > limits.MAX_TYPE_LENGTH:
        raise InvalidEvent(
            f"The event type is longer than {limits.MAX_TYPE_LENGTH} characters.",
            code="InvalidEventTypeLength",
        )
    return event_type


def parse_event(body: object) -> EventInput:
    """Checks the inside of an `{"event": {...}}` body. `id`, `received_at` and unknown keys
    are ignored: the server sets the first two."""
    if not isinstance(body, dict):
        raise InvalidEvent('The body must hold an object "event": {...}.')
    source = check_event_source(body.get("source"))
    event_type = check_event_type(body.get("type"))
    properties = body.get("properties")
    if not isinstance(properties, dict):
        raise InvalidEvent("An event needs 'properties', a JSON object.")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidEvent("'description' must be a string.")
    if description is not None and not storable(description):
        raise InvalidEvent(NUL_MESSAGE)
    raw_created_at = body.get("created_at")
    created_at = None
    if raw_created_at is not None:
        if not isinstance(raw_created_at, str):
            raise InvalidEvent("'created_at' must be an ISO 8601 time string.")
        try:
            created_at = parse_time(raw_created_at)
        except ValueError:
            raise InvalidEvent(
                "'created_at' is not an ISO 8601 time, such as 2020-01-31T00:44:07Z.",
                code="InvalidTime",
            ) from None
    return EventInput(source, event_type, description, properties, created_at)


def new_event(
    data: EventInput, *, event_id: str, profile_id: str, user_id: int, received_at: int
) -> Event:
    return Event(
        id=event_id, profile_id=profile_id, user_id=user_id, source=data.source, type=data.type,
        description=data.description, properties=data.properties,
        created_at=data.created_at if data.created_at is not None else received_at,
        received_at=received_at,
    )


# Cursors

_CURSOR_VERSION = 1
_CURSOR = struct.Struct(">Bq16s")  # version, created_at, the id's 128 bits


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in the newest-first order of events."""

    created_at: int
    id: str


def cursor_of(event: Event) -> Cursor:
    return Cursor(event.created_at, event.id)


def encode_cursor(cursor: Cursor) -> str:
    packed = _CURSOR.pack(_CURSOR_VERSION, cursor.created_at, ULID.from_str(cursor.id).bytes)
    return base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode_cursor(text: str, *, name: str) -> Cursor:
    """The position a cursor names. Only what `encode_cursor` makes is accepted."""
    invalid = InvalidParameter(
        f"'{name}' is not a cursor given by this API: use after_cursor or before_cursor "
        "of a previous page.",
        code="InvalidCursor",
    )
    if not text.isascii():
        raise invalid
    try:
        packed = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise invalid from None
    if len(packed) != _CURSOR.size:
        raise invalid
    version, created_at, id_bytes = _CURSOR.unpack(packed)
    if version != _CURSOR_VERSION:
        raise invalid
    cursor = Cursor(created_at, str(ULID.from_bytes(id_bytes)))
    if encode_cursor(cursor) != text:  # one spelling per position
        raise invalid
    return cursor


# Listing: filters and pages

_PAGE_SIZE = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True, slots=True)
class EventQuery:
    """The filters and page of a list request, checked."""

    source: str | None = None
    type: str | None = None
    start_time: int | None = None  # inclusive bounds on created_at
    end_time: int | None = None
    size: int = DEFAULT_PAGE_SIZE
    after: Cursor | None = None  # older than this position
    before: Cursor | None = None  # newer than this position


def parse_event_query(params: Mapping[str, str]) -> EventQuery:
    """Reads `filter[...]` and `page[...]` query parameters. An empty value counts as absent,
    as clients often send `page[after]=` on the first request; unknown parameters are ignored."""

    def get(key: str) -> str | None:
        value = params.get(key)
        if value and not storable(value):
            raise InvalidParameter(f"{key}: {NUL_MESSAGE}")
        return value if value else None

    source = get("filter[source]")
    event_type = get("filter[type]")
    if event_type is not None and source is None:
        raise InvalidParameter(
            "filter[type] needs filter[source]: a type is only meaningful within its source."
        )
    start = get("filter[start_time]")
    end = get("filter[end_time]")
    start_time = _time_parameter(start, "filter[start_time]", round_up=True) if start else None
    end_time = _time_parameter(end, "filter[end_time]") if end else None
    if start_time is not None and end_time is not None and start_time > end_time:
        raise InvalidParameter("filter[start_time] is later than filter[end_time].")
    size = DEFAULT_PAGE_SIZE
    raw_size = get("page[size]")
    if raw_size is not None:
        if not _PAGE_SIZE.fullmatch(raw_size) or not 1 <= int(raw_size) <= MAX_PAGE_SIZE:
            raise InvalidParameter(
                f"page[size] must be a whole number from 1 to {MAX_PAGE_SIZE}."
            )
        size = int(raw_size)
    raw_after = get("page[after]")
    raw_before = get("page[before]")
    if raw_after is not None and raw_before is not None:
        raise InvalidParameter("Send page[after] or page[before], not both.")
    return EventQuery(
        source=source, type=event_type, start_time=start_time, end_time=end_time, size=size,
        after=decode_cursor(raw_after, name="page[after]") if raw_after else None,
        before=decode_cursor(raw_before, name="page[before]") if raw_before else None,
    )


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[Event]  # newest first
    has_more: bool  # more events lie beyond this page in the direction it was fetched
    after_cursor: Cursor | None  # the page's last (oldest) event; None for an empty page
    before_cursor: Cursor | None  # the page's first (newest) event


def page_of(fetched: list[Event], query: EventQuery) -> EventPage:
    """The page from up to `size + 1` events read in the direction of the query: newest first,
    or, for `page[before]`, oldest first from the cursor. The extra event tells `has_more`."""
    has_more = len(fetched) > query.size
    events = fetched[: query.size]
    if query.before is not None:
        events.reverse()
    return EventPage(
        events=events,
        has_more=has_more,
        after_cursor=cursor_of(events[-1]) if events else None,
        before_cursor=cursor_of(events[0]) if events else None,
    )
