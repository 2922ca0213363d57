"""Pages of events (EVENTS.md): page[size], cursors both ways, links, stability under writes."""

from __future__ import annotations

from typing import Any

import httpx

from ..support import Api
from .events_support import email, event, profile_events, target, track, track_to, user_events

SHOP = "shop"


def _person(client: httpx.Client, count: int, *, source: str = SHOP) -> dict[str, str]:
    """A new profile with events e1..e{count}, e{count} the newest (one second apart)."""
    body = track(client, target(SHOP, "customer", ("email", email())),
                 event(source, "e1", created_at="2020-01-01T00:00:01Z"))
    for n in range(2, count + 1):
        track_to(client, body["profile_id"],
                 event(source, f"e{n}", created_at=f"2020-01-01T00:{n // 60:02d}:{n % 60:02d}Z"))
    return body


def _types(page: dict[str, Any]) -> list[str]:
    return [e["type"] for e in page["events"]]


def _follow(client: httpx.Client, link: str) -> dict[str, Any]:
    response = client.get(link)
    assert response.status_code == 200, response.text
    return response.json()


def test_walking_forward_and_back(api: Api) -> None:
    with api.client() as client:
        person = _person(client, 7)
        pid = person["profile_id"]
        first = profile_events(client, pid, **{"page[size]": "3"})
        assert _types(first) == ["e7", "e6", "e5"]
        assert first["meta"]["has_more"] is True
        second = profile_events(client, pid, **{"page[size]": "3",
                                                "page[after]": first["meta"]["after_cursor"]})
        assert _types(second) == ["e4", "e3", "e2"] and second["meta"]["has_more"] is True
        # links.next is the same request from the page's after_cursor, page size kept.
        assert _follow(client, first["links"]["next"]) == second
        assert "page[size]=3" in first["links"]["next"]
        last = _follow(client, second["links"]["next"])
        assert _types(last) == ["e1"] and last["meta"]["has_more"] is False
        # Past the end: an empty page.
        beyond = _follow(client, last["links"]["next"])
        assert beyond["events"] == [] and beyond["meta"]["has_more"] is False
        assert beyond["links"] == {"next": None, "prev": None}
        # Back: page[before] gives the page of newer events next to the cursor, newest first;
        # has_more then says whether still newer events exist.
        back = _follow(client, last["links"]["prev"])
        assert _types(back) == ["e4", "e3", "e2"] and back["meta"]["has_more"] is True
        top = _follow(client, back["links"]["prev"])
        assert _types(top) == ["e7", "e6", "e5"] and top["meta"]["has_more"] is False
        assert top["meta"]["before_cursor"] == first["meta"]["before_cursor"]
        newest = _follow(client, top["links"]["prev"])
        assert newest["events"] == [] and newest["meta"]["has_more"] is False
        # A short page going back: only the events there are.
        short = profile_events(client, pid, **{"page[size]": "3",
                                               "page[before]": second["meta"]["before_cursor"]})
        assert _types(short) == ["e7", "e6", "e5"] and short["meta"]["has_more"] is False
        two = profile_events(client, pid, **{"page[size]": "2",
                                             "page[before]": second["meta"]["after_cursor"]})
        assert _types(two) == ["e4", "e3"] and two["meta"]["has_more"] is True


def test_cursors_are_stable_while_events_arrive(api: Api) -> None:
    with api.client() as client:
        person = _person(client, 5)
        pid, uid = person["profile_id"], person["user_id"]
        first = user_events(client, uid, **{"page[size]": "2"})
        assert _types(first) == ["e5", "e4"]
        # New events arrive, stamped by the server (newer than all) and one back-dated
        # behind the first page.
        track_to(client, pid, event(SHOP, "new1"))
        track_to(client, pid, event(SHOP, "new2"))
        track_to(client, pid, event(SHOP, "late", created_at="2020-01-01T00:00:04.500Z"))
        # The pages from the cursors are where they were: no repeats, no gaps.
        second = _follow(client, first["links"]["next"])
        assert _types(second) == ["e3", "e2"]
        rest = _follow(client, second["links"]["next"])
        assert _types(rest) == ["e1"] and rest["meta"]["has_more"] is False
        # The new events are found going back from the first page.
        newer = _follow(client, first["links"]["prev"])
        # (Two events stamped in the same millisecond are ordered by id, so not by arrival.)
        assert set(_types(newer)) == {"new1", "new2"} and newer["meta"]["has_more"] is False
        # The back-dated one landed between e5 and e4, which a fresh first page shows.
        fresh = user_events(client, uid, **{"page[size]": "5"})
        assert _types(fresh)[2:] == ["e5", "late", "e4"]


def test_page_size_default_and_bounds(api: Api) -> None:
    with api.client() as client:
        person = _person(client, 101)
        pid = person["profile_id"]
        default = profile_events(client, pid)
        assert len(default["events"]) == 100 and default["meta"]["has_more"] is True
        assert _types(default)[0] == "e101" and _types(default)[-1] == "e2"
        full = profile_events(client, pid, **{"page[size]": "100",
                                              "page[after]": default["meta"]["after_cursor"]})
        assert _types(full) == ["e1"] and full["meta"]["has_more"] is False
        one = profile_events(client, pid, **{"page[size]": "1"})
        assert _types(one) == ["e101"] and one["meta"]["has_more"] is True
        assert one["meta"]["after_cursor"] == one["meta"]["before_cursor"]
        # Every page of one, forward: each event once, in order.
        seen, page = [], one
        while True:
            seen += _types(page)
            if not page["meta"]["has_more"]:
                break
            page = _follow(client, page["links"]["next"])
        assert seen == [f"e{n}" for n in range(101, 0, -1)]


def test_cursors_with_filters(api: Api) -> None:
    with api.client() as client:
        person = _person(client, 9)
        pid = person["profile_id"]
        for n in (3, 6, 9):  # events of another source between them
            track_to(client, pid, event("web", f"w{n}", created_at=f"2020-01-01T00:00:{n:02d}.5Z"))
        params = {"filter[source]": SHOP, "filter[start_time]": "2020-01-01T00:00:02Z",
                  "filter[end_time]": "2020-01-01T00:00:08Z", "page[size]": "3"}
        first = profile_events(client, pid, **params)
        assert _types(first) == ["e8", "e7", "e6"] and first["meta"]["has_more"] is True
        assert "filter[source]=shop" in first["links"]["next"]
        second = _follow(client, first["links"]["next"])
        assert _types(second) == ["e5", "e4", "e3"] and second["meta"]["has_more"] is True
        third = _follow(client, second["links"]["next"])
        assert _types(third) == ["e2"] and third["meta"]["has_more"] is False
        back = _follow(client, third["links"]["prev"])
        assert _types(back) == ["e5", "e4", "e3"]
        top = _follow(client, back["links"]["prev"])
        assert _types(top) == ["e8", "e7", "e6"] and top["meta"]["has_more"] is False
        # A cursor taken outside a time range still pages within it.
        outside = profile_events(client, pid, **{"filter[end_time]": "2020-01-01T00:00:04Z",
                                                 "page[after]": first["meta"]["before_cursor"]})
        assert _types(outside) == ["e4", "w3", "e3", "e2", "e1"]
        below = profile_events(client, pid, **{"filter[start_time]": "2020-01-01T00:00:06Z",
                                               "page[before]": third["meta"]["after_cursor"],
                                               "page[size]": "2"})
        assert _types(below) == ["w6", "e6"] and below["meta"]["has_more"] is True
        # Source and type together, walked by the user's index.
        typed = user_events(client, person["user_id"], **{
            "filter[source]": "web", "filter[type]": "w6", "page[size]": "1"})
        assert _types(typed) == ["w6"] and typed["meta"]["has_more"] is False


def test_a_cursor_is_opaque_and_checked(api: Api) -> None:
    with api.client() as client:
        person = _person(client, 3)
        pid = person["profile_id"]
        cursor = profile_events(client, pid, **{"page[size]": "1"})["meta"]["after_cursor"]
        assert cursor.isascii() and "=" not in cursor
        for bad in (cursor[:-1], cursor + "A", cursor[:-2] + "!!", "AAAA", cursor.lower()):
            response = client.get(f"/api/v2/user_profiles/{pid}/events",
                                  params={"page[after]": bad})
            assert response.status_code == 400, bad
            assert response.json()["errors"][0]["code"] == "InvalidCursor"
        # A cursor names a position, so it serves the user's list as well.
        by_user = user_events(client, person["user_id"], **{"page[after]": cursor})
        assert _types(by_user) == ["e2", "e1"]
