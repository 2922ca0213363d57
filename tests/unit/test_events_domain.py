"""The pure rules of events: times, cursors, the event body, list parameters and pages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ulid import ULID

from openprofiles.domain.errors import InvalidEvent, InvalidParameter, ReservedSource
from openprofiles.domain.events import (
    Cursor, Event, EventQuery, decode_cursor, encode_cursor, format_time, page_of, parse_event,
    parse_event_query, parse_time,
)

_MIN = datetime(1, 1, 1, tzinfo=timezone.utc)
_MAX = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

cursors = st.builds(
    Cursor,
    created_at=st.integers(-(2**63), 2**63 - 1),
    id=st.binary(min_size=16, max_size=16).map(lambda b: str(ULID.from_bytes(b))),
)


# Times


def test_parse_time_examples() -> None:
    assert parse_time("2020-01-31T00:44:07Z") == 1580431447000
    assert parse_time("2020-01-31T00:44:07") == 1580431447000  # no offset: UTC
    assert parse_time("2020-01-31T02:44:07.123+02:00") == 1580431447123
    assert parse_time("2020-01-31") == 1580428800000
    assert parse_time("1969-12-31T23:59:59.999Z") == -1
    assert parse_time("2020-01-31T00:44:07.0004Z") == 1580431447000
    assert parse_time("2020-01-31T00:44:07.0004Z", round_up=True) == 1580431447001
    assert parse_time("2020-01-31T00:44:07.001Z", round_up=True) == 1580431447001


@pytest.mark.parametrize("text", [
    "", "yesterday", "2020-02-30", "2020-01-31T25:00:00Z", "1580431447", "2020-01-31T00:44:07Zulu",
    "0001-01-01T00:00:00+01:00",  # before the year 1 in UTC
    "9999-12-31T23:59:59-01:00",  # after the year 9999 in UTC
])
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


@given(st.datetimes(min_value=_MIN.replace(tzinfo=None), max_value=_MAX.replace(tzinfo=None)))
def test_times_round_trip_to_the_millisecond(moment: datetime) -> None:
    moment = moment.replace(tzinfo=timezone.utc, microsecond=moment.microsecond // 1000 * 1000)
    text = format_time((moment - _EPOCH) // timedelta(milliseconds=1))
    assert text.endswith("Z") and len(text) == 24
    assert parse_time(text) == (moment - _EPOCH) // timedelta(milliseconds=1)
    assert datetime.fromisoformat(text) == moment


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9000, 1, 1)),
       st.integers(-23 * 60, 23 * 60))
def test_an_offset_names_the_same_instant(moment: datetime, minutes: int) -> None:
    zone = timezone(timedelta(minutes=minutes))
    local = moment.replace(tzinfo=timezone.utc).astimezone(zone)
    assert parse_time(local.isoformat()) == parse_time(moment.isoformat())


# Cursors


@given(cursors)
def test_cursor_round_trip(cursor: Cursor) -> None:
    text = encode_cursor(cursor)
    assert text.isascii() and "=" not in text and "/" not in text and "+" not in text
    assert decode_cursor(text, name="page[after]") == cursor


@given(cursors, st.data())
def test_an_altered_cursor_is_refused_or_names_another_position(cursor: Cursor, data: st.DataObject) -> None:
    text = encode_cursor(cursor)
    index = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.characters(codec="ascii"))
    altered = text[:index] + replacement + text[index + 1:]
    try:
        decoded = decode_cursor(altered, name="page[after]")
    except InvalidParameter as error:
        assert error.code == "InvalidCursor"
    else:
        assert (decoded == cursor) == (altered == text)


@pytest.mark.parametrize("text", [
    "", "x", "AAAA", "not a cursor", "é" * 34, "AQAAAW_45bAAAXBbbylHjw5iFnSTvJZ3Eg==",
    "AgAAAW_45bAAAXBbbylHjw5iFnSTvJZ3Eg",  # version 2
    "AQAAAW_45bAAAXBbbylHjw5iFnSTvJZ3Eh",  # the last character's spare bits set
])
def test_decode_cursor_refuses(text: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        decode_cursor(text, name="page[before]")
    assert raised.value.code == "InvalidCursor" and "page[before]" in raised.value.detail


def test_a_known_cursor_decodes() -> None:
    assert decode_cursor("AQAAAW_45bAAAXBbbylHjw5iFnSTvJZ3Eg", name="c") == Cursor(
        1580428800000, "01E1DPYAA7HW7645KMJEY9CXRJ")


# The event body


def test_parse_event() -> None:
    parsed = parse_event({"source": "shop", "type": "checkout", "properties": {"a": [1]},
                          "description": "Done", "created_at": "2020-01-31T00:44:07Z",
                          "id": "ignored", "received_at": "ignored"})
    assert (parsed.source, parsed.type, parsed.description) == ("shop", "checkout", "Done")
    assert parsed.properties == {"a": [1]} and parsed.created_at == 1580431447000
    bare = parse_event({"source": "s" * 40, "type": "t" * 40, "properties": {}})
    assert bare.description is None and bare.created_at is None


@pytest.mark.parametrize(("body", "error", "code"), [
    ("event", InvalidEvent, "InvalidEvent"),
    ({"type": "t", "properties": {}}, InvalidEvent, "InvalidEvent"),
    ({"source": "s" * 41, "type": "t", "properties": {}}, InvalidEvent, "InvalidEventSourceLength"),
    ({"source": "ZENDESK", "type": "t", "properties": {}}, ReservedSource, "ReservedSource"),
    ({"source": "s", "type": "", "properties": {}}, InvalidEvent, "InvalidEvent"),
    ({"source": "s", "type": "t" * 41, "properties": {}}, InvalidEvent, "InvalidEventTypeLength"),
    ({"source": "s", "type": "t"}, InvalidEvent, "InvalidEvent"),
    ({"source": "s", "type": "t", "properties": [1]}, InvalidEvent, "InvalidEvent"),
    ({"source": "s", "type": "t", "properties": {}, "description": []}, InvalidEvent, "InvalidEvent"),
    ({"source": "s", "type": "t", "properties": {}, "created_at": "soon"}, InvalidEvent,
     "InvalidTime"),
    ({"source": "s", "type": "t", "properties": {}, "created_at": 12}, InvalidEvent,
     "InvalidEvent"),
])
def test_parse_event_refuses(body: object, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as raised:
        parse_event(body)
    assert raised.value.code == code  # type: ignore[attr-defined]


# List parameters


def test_parse_event_query() -> None:
    cursor = Cursor(5, str(ULID()))
    query = parse_event_query({
        "filter[source]": "shop", "filter[type]": "checkout",
        "filter[start_time]": "2020-01-01", "filter[end_time]": "2020-01-02",
        "page[size]": "7", "page[after]": encode_cursor(cursor), "page[before]": "",
        "sort": "ignored",
    })
    assert query == EventQuery(source="shop", type="checkout", start_time=1577836800000,
                               end_time=1577923200000, size=7, after=cursor)
    assert parse_event_query({}) == EventQuery(size=100)
    assert parse_event_query({"page[size]": "", "filter[source]": ""}) == EventQuery()


@pytest.mark.parametrize("params", [
    {"filter[type]": "checkout"},
    {"page[size]": "0"}, {"page[size]": "101"}, {"page[size]": "+5"}, {"page[size]": " 5"},
    {"page[size]": "٣"}, {"page[size]": "1_0"}, {"page[size]": "1000000000"},
    {"filter[start_time]": "nope"},
    {"filter[start_time]": "2020-01-02", "filter[end_time]": "2020-01-01"},
    {"page[after]": "AAAA"},
    {"page[after]": "AQAAAW_45bAAAXBbbylHjw5iFnSTvJZ3Eg",
     "page[before]": "AQAAAW_45bAAAXBbbylHjw5iFnSTvJZ3Eg"},
])
def test_parse_event_query_refuses(params: dict[str, str]) -> None:
    with pytest.raises(InvalidParameter):
        parse_event_query(params)


# Pages


def _events(*keys: tuple[int, str]) -> list[Event]:
    return [Event(id=i, profile_id="p", user_id=1, source="s", type="t", description=None,
                  properties={}, created_at=c, received_at=c) for c, i in keys]


def test_page_of() -> None:
    a, b, c = (3, "A" * 26), (2, "B" * 26), (1, "C" * 26)
    forward = page_of(_events(a, b, c), EventQuery(size=2))
    assert [e.created_at for e in forward.events] == [3, 2] and forward.has_more
    assert forward.before_cursor == Cursor(*a) and forward.after_cursor == Cursor(*b)
    # page[before] reads oldest first from its cursor; the page is turned round.
    back = page_of(_events(c, b), EventQuery(size=2, before=Cursor(0, "0" * 26)))
    assert [e.created_at for e in back.events] == [2, 1] and not back.has_more
    assert back.before_cursor == Cursor(*b) and back.after_cursor == Cursor(*c)
    empty = page_of([], EventQuery())
    assert empty.events == [] and not empty.has_more
    assert empty.after_cursor is None and empty.before_cursor is None


def test_the_nul_character_is_refused_everywhere() -> None:
    for body in ({"source": "a\x00", "type": "t", "properties": {}},
                 {"source": "s", "type": "\x00", "properties": {}},
                 {"source": "s", "type": "t", "properties": {}, "description": "x\x00y"}):
        with pytest.raises(InvalidEvent):
            parse_event(body)
    parse_event({"source": "s", "type": "t", "properties": {"a": "\x00"}})  # inside JSON: fine
    for params in ({"filter[source]": "\x00"}, {"filter[source]": "s", "filter[type]": "t\x00"},
                   {"filter[end_time]": "2020-01-01\x00"}):
        with pytest.raises(InvalidParameter):
            parse_event_query(params)
