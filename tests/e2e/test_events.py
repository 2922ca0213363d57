"""The Events API (EVENTS.md): tracking, listing, filters, validation, roles and deletion."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ..support import Api, unique
from .events_support import (
    BY_QUERY, TRACK, email, event, profile_events, received, sql_rows, target, track, track_to,
    user_events,
)
from .profile_support import assert_error

# The server is shared by the whole suite and an account has at most 50 sources of profiles
# and of events: tests use these few and keep apart by unique identifiers.
SHOP, CRM, WEB = "shop", "crm", "web"

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def _new_user(client: Any, **fields: Any) -> int:
    response = client.post("/api/v2/users", json={"user": {"name": "Events Person", **fields}})
    assert response.status_code == 201, response.text
    return response.json()["user"]["id"]


# Tracking by profile


def test_track_creates_the_profile_and_its_user(api: Api) -> None:
    address, source = email(), SHOP
    with api.client() as client:
        body = track(client, target(source, "customer", ("email", address.upper()),
                                    attributes="not part of an event's profile"),
                     event(source, "checkout", description="Order complete",
                           properties={"item": {"name": "Swag", "price": 1.5}},
                           created_at="2020-01-31T00:44:07Z"))
        profile = client.get(f"/api/v2/user_profiles/{body['profile_id']}").json()["profile"]
        identities = client.get(f"/api/v2/users/{body['user_id']}/identities").json()
        listed = profile_events(client, body["profile_id"])
    # Created by the rules of the Profiles API: normalised email, derived name, user linked.
    assert profile["source"] == source and profile["type"] == "customer"
    assert profile["identifiers"] == [{"type": "email", "value": address}]
    assert profile["name"] == address and profile["attributes"] == {}
    assert profile["user_id"] == body["user_id"]
    assert [(i["type"], i["value"]) for i in identities["identities"]] == [("email", address)]
    [stored] = listed["events"]
    assert set(stored) == {"id", "source", "type", "description", "properties", "created_at",
                           "received_at"}
    assert ULID.match(stored["id"])
    assert stored["source"] == source and stored["type"] == "checkout"
    assert stored["description"] == "Order complete"
    assert stored["properties"] == {"item": {"name": "Swag", "price": 1.5}}
    assert stored["created_at"] == "2020-01-31T00:44:07.000Z"
    assert ISO_Z.match(stored["received_at"]) and stored["received_at"] > "2024"


def test_track_extends_an_existing_profile_like_a_patch(api: Api) -> None:
    address, source = email(), SHOP
    external = unique("ext")
    with api.client() as client:
        created = client.put("/api/v2/user_profiles",
                             params={"identifier": f"{source}:customer:email:{address}"},
                             json={"profile": {"name": "Jane", "attributes": {"tier": "gold"}}})
        assert created.status_code == 201
        before = created.json()["profile"]
        body = track(client, target(source, "customer", ("external_id", external),
                                    ("email", address), name="Ignored",
                                    attributes={"tier": "ignored"}),
                     event(source))
        after = client.get(f"/api/v2/user_profiles/{before['id']}").json()["profile"]
        user = client.get(f"/api/v2/users/{before['user_id']}").json()["user"]
        again = track(client, target(source, "customer", ("email", address)), event(source))
        unchanged = client.get(f"/api/v2/user_profiles/{before['id']}").json()["profile"]
    assert body == {"profile_id": before["id"], "status": "received", "user_id": before["user_id"]}
    # The missing identifier is added after the stored ones; name and attributes stay.
    assert after["identifiers"] == [{"type": "email", "value": address},
                                    {"type": "external_id", "value": external}]
    assert after["name"] == "Jane" and after["attributes"] == {"tier": "gold"}
    assert after["updated_at"] >= before["updated_at"]
    assert user["external_id"] == external  # the user gains it, as on a PATCH
    # Nothing to add: the profile is left as it was.
    assert again["profile_id"] == before["id"]
    assert unchanged == after


def test_track_links_a_new_profile_to_the_user_its_identifiers_match(api: Api) -> None:
    address, source = email(), SHOP
    with api.client() as client:
        user_id = _new_user(client, email=address)
        body = track(client, target(source, "customer", ("email", address)), event(source))
    assert body["user_id"] == str(user_id)


def test_track_with_identifiers_of_two_profiles_is_refused(api: Api) -> None:
    source, first, second = SHOP, email(), email()
    with api.client() as client:
        one = track(client, target(source, "customer", ("email", first)), event(source))
        two = track(client, target(source, "customer", ("email", second)), event(source))
        refused = client.post(TRACK, json={
            "profile": target(source, "customer", ("email", first), ("email", second)),
            "event": event(source, "refused")})
        assert_error(refused, 400, "IdentifierInUse")
        for body in (one, two):
            listed = profile_events(client, body["profile_id"])
            assert [e["type"] for e in listed["events"]] == ["checkout"]


def test_track_with_identifiers_of_two_users_writes_nothing(api: Api) -> None:
    source, first, second = SHOP, email(), email()
    with api.client() as client:
        users = [_new_user(client, email=first), _new_user(client, email=second)]
        refused = client.post(TRACK, json={
            "profile": target(source, "customer", ("email", first), ("email", second)),
            "event": event(source)})
        assert_error(refused, 400, "IdentifiersForMultipleUsers")
        missing = client.get("/api/v2/user_profiles",
                             params={"identifier": f"{source}:customer:email:{first}"})
        assert missing.status_code == 404
        for user in users:
            assert user_events(client, user)["events"] == []
            assert client.get(f"/api/v2/users/{user}/profiles").json()["profiles"] == []


# Tracking by user and by profile id


def test_track_by_user_creates_a_profile_of_that_user(api: Api) -> None:
    source, address = SHOP, email()
    with api.client() as client:
        user_id = _new_user(client)
        response = client.post(f"/api/v2/users/{user_id}/events", json={
            "profile": target(source, "customer", ("email", address)), "event": event(source)})
        body = received(response)
        identities = client.get(f"/api/v2/users/{user_id}/identities").json()["identities"]
        listed = user_events(client, user_id)
        # Tracked again by the same identifier: the same profile.
        again = received(client.post(f"/api/v2/users/{user_id}/events", json={
            "profile": target(source, "customer", ("email", address)), "event": event(source)}))
    assert body["user_id"] == str(user_id)
    assert again == body
    assert ("email", address) in [(i["type"], i["value"]) for i in identities]
    assert [e["source"] for e in listed["events"]] == [source]


def test_track_by_user_refusals(api: Api) -> None:
    source, address = SHOP, email()
    with api.client() as client:
        owner = _new_user(client)
        other = _new_user(client)
        body = {"profile": target(source, "customer", ("email", address)), "event": event(source)}
        assert_error(client.post("/api/v2/users/999999999/events", json=body), 404, "UserNotFound")
        assert_error(client.post("/api/v2/users/not-a-number/events", json=body), 404,
                     "UserNotFound")
        received(client.post(f"/api/v2/users/{owner}/events", json=body))
        # The profile exists and belongs to another user: 400, and no event is stored.
        assert_error(client.post(f"/api/v2/users/{other}/events", json=body), 400,
                     "ProfileOfAnotherUser")
        assert user_events(client, other)["events"] == []
        assert len(user_events(client, owner)["events"]) == 1
        # A standard identifier that belongs to another user.
        taken = email()
        _new_user(client, email=taken)
        clash = {"profile": target(SHOP, "customer", ("email", taken)),
                 "event": event(source)}
        assert_error(client.post(f"/api/v2/users/{owner}/events", json=clash), 400,
                     "IdentifierInUse")


def test_track_by_profile_id(api: Api) -> None:
    source = SHOP
    with api.client() as client:
        first = track(client, target(source, "customer", ("email", email())), event(source))
        body = track_to(client, first["profile_id"], event(source, "refund"))
        assert body == first
        listed = profile_events(client, first["profile_id"])
        assert [e["type"] for e in listed["events"]] == ["refund", "checkout"]
        missing = client.post("/api/v2/user_profiles/01BX5ZZKBKACTAV9WEVGEMMVRY/events",
                              json={"event": event(source)})
        assert_error(missing, 404, "ProfileNotFound")


def test_created_at_defaults_to_received_at_and_is_kept_as_utc(api: Api) -> None:
    source = SHOP
    with api.client() as client:
        body = track(client, target(source, "customer", ("email", email())), event(source, "a"))
        track_to(client, body["profile_id"],
                 event(source, "b", created_at="2021-06-01T12:00:00.250+02:00"))
        track_to(client, body["profile_id"], event(source, "c", created_at="2021-06-01"))
        by_type = {e["type"]: e for e in profile_events(client, body["profile_id"])["events"]}
    assert by_type["a"]["created_at"] == by_type["a"]["received_at"]
    assert by_type["b"]["created_at"] == "2021-06-01T10:00:00.250Z"
    assert by_type["c"]["created_at"] == "2021-06-01T00:00:00.000Z"
    assert "description" not in by_type["a"]


def test_paths_answer_with_a_json_suffix(api: Api) -> None:
    source, address = SHOP, email()
    with api.client() as client:
        body = received(client.post(TRACK + ".json", json={
            "profile": target(source, "customer", ("email", address)), "event": event(source)}))
        received(client.post(f"/api/v2/user_profiles/{body['profile_id']}/events.json",
                             json={"event": event(source)}))
        by_query = client.get(BY_QUERY + ".json",
                              params={"identifier": f"{source}:customer:email:{address}"})
        by_user = client.get(f"/api/v2/users/{body['user_id']}/events.json")
    assert by_query.status_code == 200 and len(by_query.json()["events"]) == 2
    assert by_user.status_code == 200 and len(by_user.json()["events"]) == 2


def test_other_methods_are_405(api: Api) -> None:
    with api.client() as client:
        for method, path, allowed in (
            ("DELETE", "/api/v2/users/1/events", {"GET", "POST"}),
            ("PUT", "/api/v2/user_profiles/01BX5ZZKBKACTAV9WEVGEMMVRY/events", {"GET", "POST"}),
            ("PATCH", "/api/v2/users/1/events.json", {"GET", "POST"}),
        ):
            response = client.request(method, path, json={})
            assert_error(response, 405, "MethodNotAllowed")
            assert allowed <= {m.strip() for m in response.headers["allow"].split(",")}


# Validation: every bad body is a 400 in the error format and writes nothing

_BAD_EVENTS: list[tuple[str, dict[str, Any], str]] = [
    ("no source", {"type": "t", "properties": {}}, "InvalidEvent"),
    ("empty source", {"source": "", "type": "t", "properties": {}}, "InvalidEvent"),
    ("numeric source", {"source": 7, "type": "t", "properties": {}}, "InvalidEvent"),
    ("long source", {"source": "s" * 41, "type": "t", "properties": {}},
     "InvalidEventSourceLength"),
    ("zendesk", {"source": "zendesk", "type": "t", "properties": {}}, "ReservedSource"),
    ("ZenDesk", {"source": "ZenDesk", "type": "t", "properties": {}}, "ReservedSource"),
    ("no type", {"source": "s", "properties": {}}, "InvalidEvent"),
    ("long type", {"source": "s", "type": "t" * 41, "properties": {}}, "InvalidEventTypeLength"),
    ("no properties", {"source": "s", "type": "t"}, "InvalidEvent"),
    ("null properties", {"source": "s", "type": "t", "properties": None}, "InvalidEvent"),
    ("array properties", {"source": "s", "type": "t", "properties": [1]}, "InvalidEvent"),
    ("string properties", {"source": "s", "type": "t", "properties": "{}"}, "InvalidEvent"),
    ("numeric description", {"source": "s", "type": "t", "properties": {}, "description": 1},
     "InvalidEvent"),
    ("bad time", {"source": "s", "type": "t", "properties": {}, "created_at": "yesterday"},
     "InvalidTime"),
    ("impossible date", {"source": "s", "type": "t", "properties": {},
                         "created_at": "2020-02-30T00:00:00Z"}, "InvalidTime"),
    ("epoch number", {"source": "s", "type": "t", "properties": {}, "created_at": 1580431447},
     "InvalidEvent"),
]


@pytest.mark.parametrize(("case", "bad", "code"), _BAD_EVENTS, ids=[c[0] for c in _BAD_EVENTS])
def test_invalid_events_are_refused_on_every_track_path(
    api: Api, case: str, bad: dict[str, Any], code: str
) -> None:
    source, address = SHOP, email()
    with api.client() as client:
        existing = track(client, target(source, "customer", ("email", email())), event(source))
        profile = target(source, "customer", ("email", address))
        for path, body in (
            (TRACK, {"profile": profile, "event": bad}),
            (f"/api/v2/users/{existing['user_id']}/events", {"profile": profile, "event": bad}),
            (f"/api/v2/user_profiles/{existing['profile_id']}/events", {"event": bad}),
        ):
            assert_error(client.post(path, json=body), 400, code)
        # Nothing written: no profile for the new identifier, no second event.
        missing = client.get("/api/v2/user_profiles",
                             params={"identifier": f"{source}:customer:email:{address}"})
        assert missing.status_code == 404
        assert len(user_events(client, existing["user_id"])["events"]) == 1


def test_forty_characters_and_unknown_keys_are_accepted(api: Api) -> None:
    source = "forty-characters".ljust(40, "x")
    with api.client() as client:
        body = track(client, target(SHOP, "customer", ("email", email())),
                     event(source, "t" * 40, id="mine", received_at="2000-01-01T00:00:00Z",
                           extra=True, description=None, properties={}))
        [stored] = profile_events(client, body["profile_id"])["events"]
    assert stored["source"] == source and stored["type"] == "t" * 40
    assert stored["id"] != "mine" and stored["received_at"] > "2024"
    assert stored["properties"] == {} and "description" not in stored


_BAD_PROFILES: list[tuple[str, Any, str]] = [
    ("no profile", None, "InvalidProfile"),
    ("profile array", [], "InvalidProfile"),
    ("no source", {"type": "c", "identifiers": [{"type": "email", "value": "a@b.c"}]},
     "InvalidProfile"),
    ("no type", {"source": "s", "identifiers": [{"type": "email", "value": "a@b.c"}]},
     "InvalidProfile"),
    ("no identifiers", {"source": "s", "type": "c"}, "InvalidProfile"),
    ("empty identifiers", {"source": "s", "type": "c", "identifiers": []}, "InvalidProfile"),
    ("bad identifier", {"source": "s", "type": "c", "identifiers": [{"type": "email"}]},
     "InvalidProfile"),
    ("zendesk profile", {"source": "Zendesk", "type": "c",
                         "identifiers": [{"type": "email", "value": "a@b.c"}]}, "ReservedSource"),
    ("long profile source", {"source": "s" * 41, "type": "c",
                             "identifiers": [{"type": "email", "value": "a@b.c"}]},
     "InvalidProfileSourceLength"),
    ("too many identifiers", {"source": "s", "type": "c", "identifiers": [
        {"type": "external_id", "value": str(n)} for n in range(21)]}, "TooManyIdentifiers"),
]


@pytest.mark.parametrize(("case", "bad", "code"), _BAD_PROFILES, ids=[c[0] for c in _BAD_PROFILES])
def test_invalid_profiles_are_refused(api: Api, case: str, bad: Any, code: str) -> None:
    body: dict[str, Any] = {"event": event(SHOP)}
    if bad is not None:
        body["profile"] = bad
    with api.client() as client:
        assert_error(client.post(TRACK, json=body), 400, code)


def test_adding_identifiers_beyond_the_limit_is_refused(api: Api) -> None:
    source = SHOP
    many = [("external_id", unique("x")) for _ in range(20)]
    with api.client() as client:
        body = track(client, target(source, "customer", *many), event(source))
        refused = client.post(TRACK, json={
            "profile": target(source, "customer", many[0], ("email", email())),
            "event": event(source, "second")})
        assert_error(refused, 400, "TooManyIdentifiers")
        assert len(profile_events(client, body["profile_id"])["events"]) == 1


def test_bodies_that_are_not_events(api: Api) -> None:
    with api.client() as client:
        existing = track(client, target(SHOP, "c", ("email", email())), event("shop"))
        for path in (TRACK, f"/api/v2/users/{existing['user_id']}/events",
                     f"/api/v2/user_profiles/{existing['profile_id']}/events"):
            assert_error(client.post(path, content=b"{not json",
                                     headers={"Content-Type": "application/json"}),
                         400, "InvalidJson")
            assert_error(client.post(path, content=b"",
                                     headers={"Content-Type": "application/json"}),
                         400, "InvalidJson")
            assert_error(client.post(path, json=[1, 2]), 400)
            assert_error(client.post(path, json={"profile": target("s", "c", ("email", "a@b.c"))}),
                         400, "InvalidEvent")
            assert_error(client.post(path, json={"event": "checkout"}), 400)
            assert_error(client.post(path, content=b'{"event": {}}',
                                     headers={"Content-Type": "text/plain"}),
                         415, "UnsupportedMediaType")
            big = {"profile": target("s", "c", ("email", "a@b.c")),
                   "event": event("s", properties={"blob": "x" * (1024 * 1024)})}
            assert_error(client.post(path, json=big), 413, "PayloadTooLarge")
        assert len(user_events(client, existing["user_id"])["events"]) == 1


# Reading


def test_list_by_identifier_query(api: Api) -> None:
    source, address = SHOP, email()
    with api.client() as client:
        body = track(client, target(source, "customer", ("email", address)), event(source))
        found = client.get(BY_QUERY, params={"identifier": f"{source}:customer:email:{address.upper()}"})
        assert found.status_code == 200, found.text
        by_id = profile_events(client, body["profile_id"])
        assert found.json()["events"] == by_id["events"] and len(by_id["events"]) == 1
        assert found.json()["meta"] == by_id["meta"]
        # The links keep the identifier query.
        assert "identifier=" in found.json()["links"]["prev"]
        assert_error(client.get(BY_QUERY), 400, "InvalidIdentifierQuery")
        assert_error(client.get(BY_QUERY, params={"identifier": f"{source}:customer:email"}), 400,
                     "InvalidIdentifierQuery")
        assert_error(client.get(BY_QUERY, params={"identifier": f"{source}:customer:email:{email()}"}),
                     404, "ProfileNotFound")
        # A bad filter is a 400 before the lookup.
        assert_error(client.get(BY_QUERY, params={
            "identifier": f"{source}:customer:email:{address}", "filter[type]": "checkout"}), 400,
            "InvalidParameter")


def test_a_users_events_span_its_profiles(api: Api) -> None:
    address = email()
    shop, crm = SHOP, CRM
    with api.client() as client:
        one = track(client, target(shop, "customer", ("email", address)),
                    event(shop, "checkout", created_at="2020-01-01T00:00:01Z"))
        two = track(client, target(crm, "lead", ("email", address)),
                    event(crm, "call", created_at="2020-01-01T00:00:02Z"))
        assert one["user_id"] == two["user_id"] and one["profile_id"] != two["profile_id"]
        by_user = user_events(client, one["user_id"])
        by_first = profile_events(client, one["profile_id"])
        by_second = profile_events(client, two["profile_id"])
    assert [e["type"] for e in by_user["events"]] == ["call", "checkout"]
    assert [e["type"] for e in by_first["events"]] == ["checkout"]
    assert [e["type"] for e in by_second["events"]] == ["call"]


def test_lists_of_unknown_owners_are_404_and_empty_lists_are_empty(api: Api) -> None:
    with api.client() as client:
        assert_error(client.get("/api/v2/users/999999999/events"), 404, "UserNotFound")
        assert_error(client.get("/api/v2/users/nope/events"), 404, "UserNotFound")
        assert_error(client.get("/api/v2/user_profiles/01BX5ZZKBKACTAV9WEVGEMMVRY/events"), 404,
                     "ProfileNotFound")
        user_id = _new_user(client)
        empty = user_events(client, user_id)
    assert empty == {"events": [],
                     "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
                     "links": {"next": None, "prev": None}}


def test_events_are_listed_newest_first(api: Api) -> None:
    source = SHOP
    times = ["2020-01-01T00:00:03Z", "2019-12-31T23:59:59Z", "2020-01-01T00:00:05Z",
             "2020-01-01T00:00:03Z", "2020-01-01T00:00:04.500Z"]
    with api.client() as client:
        body = track(client, target(source, "c", ("email", email())),
                     event(source, "e0", created_at=times[0]))
        for n, moment in enumerate(times[1:], 1):
            track_to(client, body["profile_id"], event(source, f"e{n}", created_at=moment))
        listed = profile_events(client, body["profile_id"])["events"]
    keys = [(e["created_at"], e["id"]) for e in listed]
    assert keys == sorted(keys, reverse=True)  # ties on created_at: the larger id first
    assert [e["type"] for e in listed][:2] == ["e2", "e4"]
    assert [e["type"] for e in listed][-1] == "e1"
    assert {e["type"] for e in listed[2:4]} == {"e0", "e3"}


def test_filters(api: Api) -> None:
    source, other = SHOP, WEB
    with api.client() as client:
        body = track(client, target(source, "c", ("email", email())),
                     event(source, "checkout", created_at="2020-01-01T00:00:00Z"))
        pid = body["profile_id"]
        for ev in (event(source, "refund", created_at="2020-01-02T00:00:00Z"),
                   event(source, "checkout", created_at="2020-01-03T00:00:00Z"),
                   event(other, "checkout", created_at="2020-01-04T00:00:00Z"),
                   event(other, "view", created_at="2020-01-05T00:00:00.001Z")):
            track_to(client, pid, ev)

        def kinds(**params: str) -> list[str]:
            """The events a filter selects, the same through the profile and through the user."""
            by_profile, by_user = (
                [f"{'s' if e['source'] == source else 'o'}:{e['type']}:{e['created_at'][8:10]}"
                 for e in listed["events"]]
                for listed in (profile_events(client, pid, **params),
                               user_events(client, body["user_id"], **params))
            )
            assert by_profile == by_user
            return by_profile

        assert kinds(**{"filter[source]": source}) == ["s:checkout:03", "s:refund:02",
                                                       "s:checkout:01"]
        assert kinds(**{"filter[source]": source, "filter[type]": "checkout"}) == [
            "s:checkout:03", "s:checkout:01"]
        assert kinds(**{"filter[source]": other, "filter[type]": "refund"}) == []
        # Inclusive bounds on created_at, in any offset.
        assert kinds(**{"filter[start_time]": "2020-01-02T00:00:00Z",
                        "filter[end_time]": "2020-01-04T01:00:00+01:00"}) == [
            "o:checkout:04", "s:checkout:03", "s:refund:02"]
        assert kinds(**{"filter[start_time]": "2020-01-05T00:00:00.0005Z"}) == ["o:view:05"]
        assert kinds(**{"filter[start_time]": "2020-01-05T00:00:00.0015Z"}) == []
        assert kinds(**{"filter[end_time]": "2020-01-01"}) == ["s:checkout:01"]
        assert kinds(**{"filter[source]": other, "filter[start_time]": "2020-01-05"}) == [
            "o:view:05"]
        # Empty values count as absent.
        assert len(kinds(**{"filter[source]": "", "filter[start_time]": ""})) == 5


_BAD_QUERIES: list[tuple[str, dict[str, str], str]] = [
    ("type without source", {"filter[type]": "checkout"}, "InvalidParameter"),
    ("bad start", {"filter[start_time]": "last week"}, "InvalidTime"),
    ("bad end", {"filter[end_time]": "2020-13-01"}, "InvalidTime"),
    ("start after end", {"filter[start_time]": "2020-01-02", "filter[end_time]": "2020-01-01"},
     "InvalidParameter"),
    ("size 0", {"page[size]": "0"}, "InvalidParameter"),
    ("size 101", {"page[size]": "101"}, "InvalidParameter"),
    ("size -1", {"page[size]": "-1"}, "InvalidParameter"),
    ("size word", {"page[size]": "ten"}, "InvalidParameter"),
    ("size fraction", {"page[size]": "1.5"}, "InvalidParameter"),
    ("garbled cursor", {"page[after]": "not a cursor!"}, "InvalidCursor"),
    ("short cursor", {"page[before]": "AQAAAW"}, "InvalidCursor"),
    ("two cursors", {"page[after]": "AQAAAW_45bAAAXBbbylHjw5iFnSTvJZ3Eg",
                     "page[before]": "AQAAAW_45bAAAXBbbylHjw5iFnSTvJZ3Eg"}, "InvalidParameter"),
]


@pytest.mark.parametrize(("case", "params", "code"), _BAD_QUERIES, ids=[c[0] for c in _BAD_QUERIES])
def test_bad_list_parameters_are_400_on_every_list_path(
    api: Api, case: str, params: dict[str, str], code: str
) -> None:
    source, address = SHOP, email()
    with api.client() as client:
        body = track(client, target(source, "c", ("email", address)), event(source))
        for path, extra in ((f"/api/v2/users/{body['user_id']}/events", {}),
                            (f"/api/v2/user_profiles/{body['profile_id']}/events", {}),
                            (BY_QUERY, {"identifier": f"{source}:c:email:{address}"})):
            assert_error(client.get(path, params={**params, **extra}), 400, code)


# Roles


def test_roles(api: Api) -> None:
    source = SHOP
    readonly = api.user("agent", "--people-access", "readonly")
    end_user = api.user("end-user")
    with api.client() as admin:
        body = track(admin, target(source, "c", ("email", email())), event(source))
    paths = {
        "track": (TRACK, {"profile": target(source, "c", ("email", email())),
                          "event": event(source)}),
        "by user": (f"/api/v2/users/{body['user_id']}/events",
                    {"profile": target(source, "c", ("email", email())), "event": event(source)}),
        "by profile": (f"/api/v2/user_profiles/{body['profile_id']}/events",
                       {"event": event(source)}),
    }
    with api.client(readonly) as client:
        for path, payload in paths.values():
            assert_error(client.post(path, json=payload), 403, "Forbidden")
        assert len(user_events(client, body["user_id"])["events"]) == 1
        assert len(profile_events(client, body["profile_id"])["events"]) == 1
    with api.client(end_user) as client:
        for path, payload in paths.values():
            assert_error(client.post(path, json=payload), 403, "Forbidden")
        assert_error(client.get(f"/api/v2/users/{body['user_id']}/events"), 403, "Forbidden")
    with api.client() as anonymous:
        anonymous.auth = None  # type: ignore[assignment]
        for path, payload in paths.values():
            response = anonymous.post(path, json=payload)
            assert_error(response, 401, "Unauthorized")
            assert response.headers["www-authenticate"].startswith("Basic")
        assert_error(anonymous.get(f"/api/v2/user_profiles/{body['profile_id']}/events"), 401)
    with api.client() as admin:
        assert len(user_events(admin, body["user_id"])["events"]) == 1


# Deleting a profile deletes its events


@pytest.mark.parametrize("by", ["id", "identifier"])
def test_deleting_a_profile_deletes_its_events(api: Api, by: str) -> None:
    address = email()
    shop, crm = SHOP, CRM
    with api.client() as client:
        gone = track(client, target(shop, "c", ("email", address)), event(shop))
        for _ in range(3):
            track_to(client, gone["profile_id"], event(shop))
        kept = track(client, target(crm, "c", ("email", address)), event(crm))
        assert len(user_events(client, gone["user_id"])["events"]) == 5
        if by == "id":
            deleted = client.delete(f"/api/v2/user_profiles/{gone['profile_id']}")
        else:
            deleted = client.delete("/api/v2/user_profiles",
                                    params={"identifier": f"{shop}:c:email:{address}"})
        assert deleted.status_code == 204
        remaining = user_events(client, gone["user_id"])["events"]
        assert [e["source"] for e in remaining] == [crm]
        assert_error(client.get(f"/api/v2/user_profiles/{gone['profile_id']}/events"), 404)
        assert len(profile_events(client, kept["profile_id"])["events"]) == 1
        # The same identifier makes a new profile, which starts with no events.
        fresh = track(client, target(shop, "c", ("email", address)), event(shop, "again"))
        assert fresh["profile_id"] != gone["profile_id"]
        assert [e["type"] for e in profile_events(client, fresh["profile_id"])["events"]] == [
            "again"]
    assert sql_rows(api, "SELECT COUNT(*) FROM events WHERE profile_id = ?",
                    gone["profile_id"]) == [(0,)]


# The account's limits: 50 event sources and 2,500 event types


def test_event_source_and_type_limits(fresh_api: Any) -> None:
    api: Api = fresh_api(env={"OPENPROFILES_MAX_PROFILES_PER_USER": "2"})
    with api.client() as client:
        body = track(client, target("shop", "c", ("email", email())), event("source-0", "t"))
        pid = body["profile_id"]
        # A profile created by an event counts against the user's profiles, as any create.
        by_user = f"/api/v2/users/{body['user_id']}/events"
        received(client.post(by_user, json={"profile": target("crm", "c", ("email", email())),
                                            "event": event("source-0", "t")}))
        assert_error(client.post(by_user, json={"profile": target("web", "c", ("email", email())),
                                                "event": event("source-0", "t")}),
                     400, "ProfileLimitExceeded")
        for n in range(1, 50):
            track_to(client, pid, event(f"source-{n}", "t"))
        refused = client.post(f"/api/v2/user_profiles/{pid}/events",
                              json={"event": event("source-50", "t")})
        assert_error(refused, 400, "LimitExceeded")
        # Known sources and pairs go on being accepted; a refused event is not stored.
        track_to(client, pid, event("source-7", "t"))
        track_to(client, pid, event("source-7", "another"))
        assert user_events(client, body["user_id"], **{"filter[source]": "source-50"})[
            "events"] == []
        # 51 pairs so far. Filling the account up to 2,500 through the API would take thousands
        # of requests, so the pairs are written straight into the table the server counts.
        _add_event_kinds(api, [("source-1", f"type-{n}") for n in range(2500 - 52)])
        track_to(client, pid, event("source-2", "the-2500th"))
        assert_error(client.post(f"/api/v2/user_profiles/{pid}/events",
                                 json={"event": event("source-2", "the-2501st")}),
                     400, "LimitExceeded")
        assert_error(client.post("/api/v2/user_profiles/events", json={
            "profile": target("shop", "c", ("email", email())),
            "event": event("source-3", "the-2501st")}), 400, "LimitExceeded")
        track_to(client, pid, event("source-1", "type-0"))
        listed = user_events(client, body["user_id"], **{"page[size]": "2"})["events"]
        assert [e["type"] for e in listed] == ["type-0", "the-2500th"]
        assert len(profile_events(client, pid, **{"filter[source]": "source-0"})["events"]) == 1
    # The refused tracks created no profile either.
    assert sql_rows(api, "SELECT COUNT(*) FROM profiles") == [(2,)]
    assert sql_rows(api, "SELECT COUNT(*) FROM event_kinds") == [(2500,)]


def _add_event_kinds(api: Api, kinds: list[tuple[str, str]]) -> None:
    from openprofiles.store.urls import DatabaseUrl

    url = DatabaseUrl.parse(api.database_url)
    rows = [(1, source, kind) for source, kind in kinds]
    if url.engine == "sqlite":
        import sqlite3

        with sqlite3.connect(url.sqlite_path) as connection:
            connection.executemany("INSERT INTO event_kinds VALUES (?, ?, ?)", rows)
        return
    import psycopg

    with psycopg.connect(url.asyncpg) as connection, connection.cursor() as cursor:
        cursor.executemany("INSERT INTO event_kinds VALUES (%s, %s, %s)", rows)


def test_the_nul_character_is_a_400_on_both_engines(api: Api) -> None:
    address = email()
    with api.client() as client:
        body = track(client, target(SHOP, "c", ("email", address)), event(SHOP))
        for profile, ev in (
            (target(SHOP, "c", ("email", address)), event(SHOP, "t\x00")),
            (target(SHOP, "c", ("email", address)), event(SHOP, description="\x00")),
            (target(SHOP, "c\x00", ("email", address)), event(SHOP)),
            (target(SHOP, "c", ("member\x00", "1")), event(SHOP)),
            (target(SHOP, "c", ("member", "1\x00")), event(SHOP)),
            (target(SHOP, "c", ("member", "1"), name="a\x00"), event(SHOP)),
        ):
            assert_error(client.post(TRACK, json={"profile": profile, "event": ev}), 400)
        for params in ({"filter[source]": "\x00"}, {"filter[source]": SHOP, "filter[type]": "\x00"}):
            assert_error(client.get(f"/api/v2/users/{body['user_id']}/events", params=params),
                         400, "InvalidParameter")
        assert_error(client.get(BY_QUERY, params={"identifier": f"{SHOP}:c:email:a\x00"}), 400,
                     "InvalidIdentifierQuery")
        # Inside properties it is JSON like any other character.
        track_to(client, body["profile_id"], event(SHOP, "nul", properties={"k": "a\x00b"}))
        [stored] = profile_events(client, body["profile_id"],
                                  **{"filter[source]": SHOP, "filter[type]": "nul"})["events"]
        assert stored["properties"] == {"k": "a\x00b"}
        assert len(user_events(client, body["user_id"])["events"]) == 2
