"""Writing profiles (RULES §2, §4, §6): create, replace, merge, delete, and their semantics."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ..support import Api, unique
from .profile_support import (
    PROFILES, assert_error, create, email, get, identities, new_user, patch, put, query, row_counts,
)


def _ids(profile: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["type"], i["value"]) for i in profile["identifiers"]]


# Create


@pytest.mark.parametrize("suffix", ["", ".json"])
def test_put_by_identifier_creates_with_location(api: Api, suffix: str) -> None:
    source = "shop"
    address = email()
    identifier = query(source, "customer", "email", address)
    with api.client() as client:
        response = put(client, identifier, {"attributes": {"tier": "gold"}}, path=PROFILES + suffix)
        assert response.status_code == 201, response.text
        profile = response.json()["profile"]
        assert profile["source"] == source and profile["type"] == "customer"
        assert _ids(profile) == [("email", address)]
        assert profile["attributes"] == {"tier": "gold"}
        assert profile["created_at"] == profile["updated_at"]
        location = response.headers["location"]
        assert location.endswith(f"/api/v2/user_profiles/{profile['id']}")
        assert location.startswith("http")
        followed = client.get(location)
        assert followed.status_code == 200 and followed.json() == {"profile": profile}


def test_create_adds_the_query_identifier_after_the_body_ones(api: Api) -> None:
    l1 = unique("L1")
    l2 = unique("L2")
    source = "shop"
    member = unique("M")
    with api.client() as client:
        profile = create(client, query(source, "customer", "member_no", member), {
            "identifiers": [{"type": "loyalty", "value": l1}, {"type": "loyalty", "value": l2}],
        })
        assert _ids(profile) == [("loyalty", l1), ("loyalty", l2), ("member_no", member)]
        # Each identifier now finds the same profile.
        for value in (l1, l2):
            found = get(client, query(source, "customer", "loyalty", value))
            assert found.json()["profile"]["id"] == profile["id"]


def test_create_keeps_the_query_identifier_once_when_the_body_repeats_it(api: Api) -> None:
    address = email()
    phone = unique("+1555")
    with api.client() as client:
        profile = create(client, query("shop", "customer", "email", address.upper()), {
            "identifiers": [{"type": "phone_number", "value": phone},
                            {"type": "email", "value": address},
                            {"type": "email", "value": f"  {address.title()} "}],
        })
        assert _ids(profile) == [("phone_number", phone), ("email", address)]


def test_attributes_default_to_empty_object(api: Api) -> None:
    with api.client() as client:
        profile = create(client, query("shop", "customer", "member_no", unique("M")))
        assert profile["attributes"] == {}


def test_body_may_repeat_source_and_type(api: Api) -> None:
    source = "shop"
    with api.client() as client:
        profile = create(client, query(source, "customer", "member_no", unique("M")),
                         {"source": source, "type": "customer"})
        assert (profile["source"], profile["type"]) == (source, "customer")


@pytest.mark.parametrize("body", [{"source": "other"}, {"type": "other"},
                                  {"source": "other", "type": "customer"}, {"source": ""}])
def test_body_source_or_type_differing_from_query_is_400(api: Api, body: dict[str, str]) -> None:
    identifier = query("shop", "customer", "member_no", unique("M"))
    with api.client() as client:
        before = row_counts(api)
        assert_error(put(client, identifier, body), 400)
        assert row_counts(api) == before
        assert_error(get(client, identifier), 404)
        created = create(client, identifier)
        # Nor may a replace contradict them.
        assert_error(put(client, identifier, body), 400)
        assert get(client, identifier).json()["profile"] == created


# Replace


def test_put_by_identifier_replaces(api: Api) -> None:
    zed = unique("ZED")
    source = "shop"
    member = unique("M")
    identifier = query(source, "customer", "member_no", member)
    with api.client() as client:
        created = create(client, identifier, {
            "name": "First", "attributes": {"a": 1, "b": 2},
            "identifiers": [{"type": "loyalty", "value": unique("L")}],
        })
        time.sleep(0.01)
        response = put(client, identifier, {"attributes": {"c": 3},
                                             "identifiers": [{"type": "nick", "value": zed}]})
        assert response.status_code == 200, response.text
        assert "location" not in response.headers
        replaced = response.json()["profile"]
        for kept in ("id", "user_id", "source", "type", "created_at"):
            assert replaced[kept] == created[kept], kept
        assert replaced["attributes"] == {"c": 3}
        # The query's identifier stays; the loyalty one, not sent again, is gone.
        assert _ids(replaced) == [("nick", zed), ("member_no", member)]
        assert replaced["name"] == f"nick user {zed}"  # no name sent: derived again
        assert replaced["updated_at"] > created["updated_at"]
        dropped = query(source, "customer", "loyalty", created["identifiers"][0]["value"])
        assert_error(get(client, dropped), 404)
        assert get(client, identifier).json()["profile"] == replaced


def test_replace_without_attributes_empties_them(api: Api) -> None:
    identifier = query("shop", "customer", "member_no", unique("M"))
    with api.client() as client:
        create(client, identifier, {"attributes": {"a": 1}, "name": "Kept?"})
        replaced = put(client, identifier, {}).json()["profile"]
        assert replaced["attributes"] == {}
        assert replaced["name"] == f"member_no user {identifier.split(':')[3]}"


@pytest.mark.parametrize("suffix", ["", ".json"])
def test_put_by_id_replaces(api: Api, suffix: str) -> None:
    n1 = unique("N1")
    source = "shop"
    member = unique("M")
    with api.client() as client:
        created = create(client, query(source, "customer", "member_no", member),
                         {"attributes": {"old": True}})
        time.sleep(0.01)
        body = {"profile": {"name": "Renamed", "attributes": {"new": True},
                            "identifiers": [{"type": "nick", "value": n1}],
                            "id": "SOMETHINGELSE", "user_id": "1"}}
        response = client.put(f"{PROFILES}/{created['id']}{suffix}", json=body)
        assert response.status_code == 200, response.text
        replaced = response.json()["profile"]
        for kept in ("id", "user_id", "source", "type", "created_at"):
            assert replaced[kept] == created[kept], kept
        assert replaced["name"] == "Renamed"
        assert replaced["attributes"] == {"new": True}
        # By id there is no query identifier to keep: the identifiers are the body's.
        assert _ids(replaced) == [("nick", n1)]
        assert replaced["updated_at"] > created["updated_at"]
        assert_error(get(client, query(source, "customer", "member_no", member)), 404)


def test_put_by_unknown_id_is_404_and_creates_nothing(api: Api) -> None:
    with api.client() as client:
        before = row_counts(api)
        response = client.put(f"{PROFILES}/01BX5ZZKBKACTAV9WEVGEMMVRY",
                              json={"profile": {"identifiers": [{"type": "email", "value": email()}]}})
        assert_error(response, 404, "ProfileNotFound")
        assert_error(client.put(f"{PROFILES}/01BX5ZZKBKACTAV9WEVGEMMVRY.json",
                                json={"profile": {}}), 404)
        assert row_counts(api) == before


def test_put_by_id_cannot_change_source_or_type(api: Api) -> None:
    with api.client() as client:
        created = create(client, query("shop", "customer", "member_no", unique("M")))
        for body in ({"source": "else"}, {"type": "else"}):
            body = {**body, "identifiers": created["identifiers"]}
            assert_error(client.put(f"{PROFILES}/{created['id']}", json={"profile": body}), 400)
        assert client.get(f"{PROFILES}/{created['id']}").json()["profile"] == created


# Merge


@pytest.mark.parametrize("by", ["id", "identifier"])
@pytest.mark.parametrize("suffix", ["", ".json"])
def test_patch_merges(api: Api, by: str, suffix: str) -> None:
    l1 = unique("L1")
    l2 = unique("L2")
    source = "shop"
    member = unique("M")
    identifier = query(source, "customer", "member_no", member)
    with api.client() as client:
        created = create(client, identifier, {
            "name": "Original",
            "identifiers": [{"type": "loyalty", "value": l1}],
            "attributes": {"keep": 1, "drop": 2, "nested": {"a": 1, "b": {"c": 1, "d": 2}},
                           "list": [1, 2]},
        })
        body = {"profile": {
            "attributes": {"drop": None, "nested": {"b": {"d": None, "e": 5}, "f": None},
                           "list": [3], "added": {"x": None, "y": 1}},
            "identifiers": [{"type": "loyalty", "value": l2}, {"type": "loyalty", "value": l1}],
            "source": "ignored", "type": "ignored", "user_id": "1", "id": "ignored",
        }}
        time.sleep(0.01)
        if by == "id":
            response = client.patch(f"{PROFILES}/{created['id']}{suffix}", json=body)
        else:
            response = client.patch(PROFILES + suffix, params={"identifier": identifier}, json=body)
        assert response.status_code == 200, response.text
        merged = response.json()["profile"]
        assert merged["attributes"] == {"keep": 1, "nested": {"a": 1, "b": {"c": 1, "e": 5}},
                                        "list": [3], "added": {"y": 1}}
        assert _ids(merged) == [("loyalty", l1), ("member_no", member), ("loyalty", l2)]
        for kept in ("id", "user_id", "source", "type", "created_at", "name"):
            assert merged[kept] == created[kept], kept
        assert merged["updated_at"] > created["updated_at"]
        assert client.get(f"{PROFILES}/{created['id']}").json()["profile"] == merged
        found = get(client, query(source, "customer", "loyalty", l2))
        assert found.json()["profile"]["id"] == created["id"]


def test_patch_replaces_the_name_when_given(api: Api) -> None:
    identifier = query("shop", "customer", "member_no", unique("M"))
    with api.client() as client:
        create(client, identifier, {"name": "Before"})
        assert patch(client, identifier, {"name": "After"}).json()["profile"]["name"] == "After"
        # Without a name (absent, null or empty), the stored one stays.
        for body in ({}, {"name": None}, {"name": ""},
                     {"identifiers": [{"type": "email", "value": email()}]}):
            assert patch(client, identifier, body).json()["profile"]["name"] == "After"


def test_patch_never_removes_identifiers(api: Api) -> None:
    l1 = unique("L1")
    source = "shop"
    member = unique("M")
    identifier = query(source, "customer", "member_no", member)
    with api.client() as client:
        create(client, identifier, {"identifiers": [{"type": "loyalty", "value": l1}]})
        merged = patch(client, identifier, {"identifiers": []}).json()["profile"]
        assert _ids(merged) == [("loyalty", l1), ("member_no", member)]
        merged = patch(client, identifier, {"identifiers": None}).json()["profile"]
        assert _ids(merged) == [("loyalty", l1), ("member_no", member)]


def test_patch_with_empty_attributes_changes_nothing_there(api: Api) -> None:
    identifier = query("shop", "customer", "member_no", unique("M"))
    with api.client() as client:
        created = create(client, identifier, {"attributes": {"a": {"b": [1, {"c": None}]}}})
        merged = patch(client, identifier, {"attributes": {}}).json()["profile"]
        assert merged["attributes"] == created["attributes"]


def test_patch_accepts_merge_patch_media_type(api: Api) -> None:
    identifier = query("shop", "customer", "member_no", unique("M"))
    with api.client() as client:
        created = create(client, identifier, {"attributes": {"a": 1}})
        content = b'{"profile": {"attributes": {"a": null, "b": 2}}}'
        for media_type in ("application/merge-patch+json", "application/merge-patch+json; charset=utf-8",
                           "application/json"):
            response = client.patch(f"{PROFILES}/{created['id']}", content=content,
                                    headers={"content-type": media_type})
            assert response.status_code == 200, response.text
            assert response.json()["profile"]["attributes"] == {"b": 2}
        response = client.patch(PROFILES, params={"identifier": identifier}, content=content,
                                headers={"content-type": "application/merge-patch+json"})
        assert response.status_code == 200, response.text
        assert_error(client.patch(f"{PROFILES}/{created['id']}", content=content,
                                  headers={"content-type": "text/plain"}), 415)


def test_put_does_not_take_merge_patch_media_type(api: Api) -> None:
    identifier = query("shop", "customer", "member_no", unique("M"))
    with api.client() as client:
        response = client.put(PROFILES, params={"identifier": identifier},
                              content=b'{"profile": {}}',
                              headers={"content-type": "application/merge-patch+json"})
        assert_error(response, 415, "UnsupportedMediaType")
        assert_error(get(client, identifier), 404)


def test_patch_never_creates(api: Api) -> None:
    identifier = query("shop", "customer", "email", email())
    with api.client() as client:
        before = row_counts(api)
        body = {"profile": {"attributes": {"a": 1}}}
        assert_error(patch(client, identifier, body["profile"]), 404, "ProfileNotFound")
        assert_error(client.patch(PROFILES + ".json", params={"identifier": identifier}, json=body),
                     404, "ProfileNotFound")
        for suffix in ("", ".json"):
            assert_error(client.patch(f"{PROFILES}/01BX5ZZKBKACTAV9WEVGEMMVRY{suffix}", json=body),
                         404, "ProfileNotFound")
        assert_error(get(client, identifier), 404)
        assert row_counts(api) == before


# Delete


@pytest.mark.parametrize("by", ["id", "identifier"])
@pytest.mark.parametrize("suffix", ["", ".json"])
def test_delete(api: Api, by: str, suffix: str) -> None:
    address = email()
    source = "shop"
    identifier = query(source, "customer", "email", address)
    with api.client() as client:
        created = create(client, identifier, {"identifiers": [{"type": "twitter", "value": unique("t")}]})
        owned = identities(client, created["user_id"])
        assert ("email", address) in owned
        if by == "id":
            response = client.delete(f"{PROFILES}/{created['id']}{suffix}")
        else:
            response = client.delete(PROFILES + suffix, params={"identifier": identifier})
        assert response.status_code == 204, response.text
        assert response.content == b""
        assert_error(client.get(f"{PROFILES}/{created['id']}"), 404)
        assert_error(get(client, identifier), 404)
        # Deleting again finds nothing, both ways.
        assert_error(client.delete(f"{PROFILES}/{created['id']}{suffix}"), 404, "ProfileNotFound")
        assert_error(client.delete(PROFILES + suffix, params={"identifier": identifier}),
                     404, "ProfileNotFound")
        # The user and its identities stay.
        assert client.get(f"/api/v2/users/{created['user_id']}").status_code == 200
        assert identities(client, created["user_id"]) == owned
        assert client.get(f"/api/v2/users/{created['user_id']}/profiles").json() == {"profiles": []}
        # The identifiers are free again: the same query now creates a new profile, for the
        # same user, whom the email still names.
        again = create(client, identifier)
        assert again["id"] != created["id"]
        assert again["user_id"] == created["user_id"]


# Normalisation (RULES §2)


def test_email_and_twitter_are_lower_cased_on_write_and_query(api: Api) -> None:
    source = "shop"
    local = unique("Mixed")
    handle = unique("Handle")
    with api.client() as client:
        profile = create(client, query(source, "customer", "email", f"  {local}@Example.COM "), {
            "identifiers": [{"type": "twitter", "value": handle.upper()}],
        })
        assert _ids(profile) == [("twitter", handle.lower()), ("email", f"{local}@example.com".lower())]
        for identifier in (query(source, "customer", "email", f"{local.upper()}@EXAMPLE.com"),
                           query(source, "customer", "email", f" {local}@example.com  "),
                           query(source, "customer", "twitter", handle.swapcase())):
            found = get(client, identifier)
            assert found.status_code == 200, (identifier, found.text)
            assert found.json()["profile"]["id"] == profile["id"]
        # A write through a differently cased query replaces rather than creates.
        response = put(client, query(source, "customer", "twitter", handle.upper()))
        assert response.status_code == 200


def test_other_values_and_source_and_type_are_case_sensitive(api: Api) -> None:
    source = "Shop"
    value = unique("abc")
    mixed = f"MiXeD{unique()}@x.example"
    with api.client() as client:
        lower = create(client, query(source, "customer", "member_no", value))
        upper = create(client, query(source, "customer", "member_no", value.upper()))
        assert lower["id"] != upper["id"]
        not_email = create(client, query(source, "customer", "Email", mixed))
        assert _ids(not_email) == [("Email", mixed)]  # `Email` is not `email`
        other_source = create(client, query(source.lower(), "customer", "member_no", value))
        other_type = create(client, query(source, "Customer", "member_no", value))
        assert len({lower["id"], other_source["id"], other_type["id"]}) == 3
        assert other_source["source"] == source.lower() and other_type["type"] == "Customer"
        assert_error(get(client, query(source, "customer", "member_no", value.title())), 404)


@pytest.mark.parametrize("source", ["zendesk", "Zendesk", "ZENDESK", "zenDesk"])
def test_zendesk_source_is_reserved(api: Api, source: str) -> None:
    identifier = query(source, "customer", "email", email())
    with api.client() as client:
        owner = new_user(client, email=email())
        before = row_counts(api)
        assert_error(put(client, identifier), 400, "ReservedSource")
        assert_error(put(client, identifier, path=PROFILES + ".json"), 400, "ReservedSource")
        assert_error(put(client, identifier, {"source": source}), 400, "ReservedSource")
        assert_error(put(client, identifier, path=f"/api/v2/users/{owner['id']}/profiles"),
                     400, "ReservedSource")
        assert row_counts(api) == before


# Naming (RULES §4)

NAMING = [
    ([("email", "A@X.example")], "a@x.example"),
    ([("external_id", "Ext-1")], "User Ext-1"),
    ([("phone_number", "+15550100")], "User +15550100"),
    ([("twitter", "TwitName")], "Twitter user twitname"),
    ([("facebook", "fb.1")], "Facebook user fb.1"),
    ([("sdk", "device-9")], "SDK user device-9"),
    ([("Shado", "FooBar")], "Shado user FooBar"),
    # Priority: the first type present in the table's order wins, whatever the order sent.
    ([("sdk", "s"), ("facebook", "f"), ("twitter", "t"), ("phone_number", "p"),
      ("external_id", "e"), ("email", "m@x.example")], "m@x.example"),
    ([("sdk", "s"), ("phone_number", "p"), ("external_id", "e")], "User e"),
    ([("sdk", "s"), ("facebook", "f"), ("phone_number", "p")], "User p"),
    ([("custom", "c"), ("sdk", "s"), ("facebook", "f"), ("twitter", "t")], "Twitter user t"),
    ([("custom", "c"), ("sdk", "s"), ("facebook", "f")], "Facebook user f"),
    ([("custom", "c"), ("sdk", "s")], "SDK user s"),
    # Within one type, the first identifier of it.
    ([("email", "first@x.example"), ("email", "second@x.example")], "first@x.example"),
    # Falling back: the first identifier, whatever its type.
    ([("custom", "c1"), ("other", "o1")], "custom user c1"),
]


@pytest.mark.parametrize(("sent", "expected"), NAMING)
def test_name_is_derived_on_create(api: Api, sent: list[tuple[str, str]], expected: str) -> None:
    # Values are made unique per test by the source: standard identifiers must not collide
    # with other tests' users, so each value gets a unique suffix where it would.
    tag = unique("")
    identifiers = [{"type": t, "value": _tagged(t, v, tag)} for t, v in sent]
    first = identifiers[0]
    with api.client() as client:
        profile = create(client, query("shop", "customer", first["type"], first["value"]),
                         {"identifiers": identifiers})
        assert profile["name"] == _tagged_name(expected, tag)
        # An anonymous user is named after the profile.
        assert client.get(f"/api/v2/users/{profile['user_id']}").json()["user"]["name"] == profile["name"]


def _tagged(identifier_type: str, value: str, tag: str) -> str:
    if "@" in value:
        local, domain = value.split("@")
        return f"{local}{tag}@{domain}"
    return f"{value}{tag}"


def _tagged_name(expected: str, tag: str) -> str:
    if "@" in expected:
        local, domain = expected.split("@")
        return f"{local}{tag}@{domain}"
    return f"{expected}{tag}"


def test_given_name_wins_and_empty_or_null_name_is_derived(api: Api) -> None:
    with api.client() as client:
        member = unique("M")
        named = create(client, query("shop", "customer", "member_no", member),
                       {"name": "Jane Smith", "identifiers": [{"type": "email", "value": email()}]})
        assert named["name"] == "Jane Smith"
        for name in (None, ""):
            member = unique("M")
            profile = create(client, query("shop", "customer", "member_no", member),
                             {"name": name})
            assert profile["name"] == f"member_no user {member}"


def test_query_identifier_counts_for_the_name(api: Api) -> None:
    address = email()
    with api.client() as client:
        profile = create(client, query("shop", "customer", "email", address),
                         {"identifiers": [{"type": "custom", "value": unique("c")}]})
        assert profile["name"] == address


# Malformed bodies


@pytest.mark.parametrize("content", [
    b"", b"   ", b"not json", b"{", b"[]", b"null", b'"profile"', b"{}", b'{"profile": null}',
    b'{"profile": []}', b'{"profile": "x"}', b'{"user": {}}',
    b'{"profile": {"identifiers": {"type": "a", "value": "b"}}}',
    b'{"profile": {"identifiers": ["a:b"]}}',
    b'{"profile": {"identifiers": [{"value": "b"}]}}',
    b'{"profile": {"identifiers": [{"type": "", "value": "b"}]}}',
    b'{"profile": {"identifiers": [{"type": 5, "value": "b"}]}}',
    b'{"profile": {"attributes": []}}', b'{"profile": {"attributes": "x"}}',
    b'{"profile": {"attributes": 1}}',
    b'{"profile": {"name": 5}}', b'{"profile": {"name": {"a": 1}}}',
    b'{"profile": {"source": 5}}', b'{"profile": {"type": ["x"]}}',
])
def test_malformed_bodies_are_400(api: Api, content: bytes) -> None:
    identifier = query("shop", "customer", "member_no", unique("M"))
    headers = {"content-type": "application/json"}
    with api.client() as client:
        existing = create(client, query("shop", "customer", "member_no", unique("M")))
        before = row_counts(api)
        responses = [
            client.put(PROFILES, params={"identifier": identifier}, content=content, headers=headers),
            client.put(f"{PROFILES}/{existing['id']}", content=content, headers=headers),
            client.patch(f"{PROFILES}/{existing['id']}", content=content, headers=headers),
            client.put(f"/api/v2/users/{existing['user_id']}/profiles",
                       params={"identifier": identifier}, content=content, headers=headers),
        ]
        for response in responses:
            assert_error(response, 400)
        assert row_counts(api) == before
        assert client.get(f"{PROFILES}/{existing['id']}").json()["profile"] == existing
