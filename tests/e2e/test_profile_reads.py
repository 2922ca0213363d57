"""Reading profiles (RULES §1, §3, §6): by id, by identifier query, by user."""

from __future__ import annotations

import re
import time

import pytest

from ..support import Api, unique
from .profile_support import PROFILES, assert_error, create, email, get, new_user, put, query

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_profile_is_rendered_with_string_properties(api: Api) -> None:
    address = email()
    with api.client() as client:
        profile = create(client, query("shop", "customer", "email", address),
                         {"attributes": {"n": 1, "nested": {"list": [1, None, "x"]}}})
    assert set(profile) == {"id", "source", "type", "name", "user_id", "identifiers",
                            "attributes", "created_at", "updated_at"}
    assert len(profile["id"]) == 26 and profile["id"].isalnum()
    for key in ("id", "source", "type", "name", "user_id", "created_at", "updated_at"):
        assert isinstance(profile[key], str), key
    assert profile["user_id"].isdigit()
    assert ISO_Z.match(profile["created_at"]) and ISO_Z.match(profile["updated_at"])
    assert profile["attributes"] == {"n": 1, "nested": {"list": [1, None, "x"]}}


def test_reads_send_stored_attributes_exactly_as_a_write_renders_them(api: Api) -> None:
    # Reads pass the stored JSON on without decoding it: byte for byte what the write sent.
    attributes = {"big": 123456789012345678901234567890, "neg": -0.0, "f": 1.5e300, "tiny": 1e-7,
                  "text": "Zoë \u2028 \"quoted\" 😀", "empty": {}, "nested": [[], {"a": [None, True]}],
                  "order": {"z": 1, "a": 2}}
    address = email()
    identifier = query("shop", "customer", "email", address)
    with api.client() as client:
        written = client.put(PROFILES, params={"identifier": identifier},
                             json={"profile": {"name": "Zoë", "attributes": attributes,
                                               "identifiers": [{"type": "phone_number",
                                                                "value": "+1 555 0100"}]}})
        assert written.status_code == 201, written.text
        profile_id = written.json()["profile"]["id"]
        by_id = client.get(f"{PROFILES}/{profile_id}")
        by_query = client.get(PROFILES, params={"identifier": identifier})
    assert by_id.content == by_query.content == written.content
    assert written.json()["profile"]["attributes"] == attributes


@pytest.mark.parametrize("suffix", ["", ".json"])
def test_get_by_id(api: Api, suffix: str) -> None:
    with api.client() as client:
        profile = create(client, query("shop", "customer", "email", email()))
        found = client.get(f"{PROFILES}/{profile['id']}{suffix}")
        assert found.status_code == 200, found.text
        assert found.json() == {"profile": profile}
        missing = client.get(f"{PROFILES}/01BX5ZZKBKACTAV9WEVGEMMVRY{suffix}")
        assert_error(missing, 404, "ProfileNotFound")


@pytest.mark.parametrize("suffix", ["", ".json"])
def test_get_by_identifier(api: Api, suffix: str) -> None:
    source = "shop"
    identifier = query(source, "customer", "member_no", unique("M"))
    with api.client() as client:
        profile = create(client, identifier)
        found = client.get(PROFILES + suffix, params={"identifier": identifier})
        assert found.status_code == 200, found.text
        assert found.json() == {"profile": profile}
        for other in (query(source, "customer", "member_no", unique("M")),
                      query(source, "other_type", *identifier.split(":")[2:]),
                      query("elsewhere", "customer", *identifier.split(":")[2:])):
            assert_error(client.get(PROFILES + suffix, params={"identifier": other}),
                         404, "ProfileNotFound")


def test_identifier_value_may_hold_colons(api: Api) -> None:
    source = "web"
    url = f"https://x.example/{unique('a')}?q=1:2"
    identifier = query(source, "visitor", "url", url)
    with api.client() as client:
        profile = create(client, identifier)
        assert profile["identifiers"] == [{"type": "url", "value": url}]
        assert get(client, identifier).json()["profile"]["id"] == profile["id"]
        # The colons are the value's own: a shorter value is another identifier.
        assert_error(get(client, query(source, "visitor", "url", "https")), 404)


BAD_QUERIES = [
    "a:b:c",
    "a:b",
    "onlyone",
    ":b:c:d",
    "a::c:d",
    "a:b::d",
    "a:b:c:",
    ":::",
    "",
]


@pytest.mark.parametrize("bad", BAD_QUERIES)
def test_malformed_identifier_query_is_400_on_every_method(api: Api, bad: str) -> None:
    with api.client() as client:
        params = {"identifier": bad}
        assert_error(client.get(PROFILES, params=params), 400, "InvalidIdentifierQuery")
        assert_error(client.put(PROFILES, params=params, json={"profile": {}}),
                     400, "InvalidIdentifierQuery")
        assert_error(client.patch(PROFILES, params=params, json={"profile": {}}),
                     400, "InvalidIdentifierQuery")
        assert_error(client.delete(PROFILES, params=params), 400, "InvalidIdentifierQuery")


def test_missing_identifier_parameter_is_400(api: Api) -> None:
    with api.client() as client:
        for path in (PROFILES, PROFILES + ".json"):
            assert_error(client.get(path), 400, "InvalidIdentifierQuery")
            assert_error(client.put(path, json={"profile": {}}), 400, "InvalidIdentifierQuery")
            assert_error(client.patch(path, json={"profile": {}}), 400, "InvalidIdentifierQuery")
            assert_error(client.delete(path), 400, "InvalidIdentifierQuery")


def test_email_with_only_spaces_is_an_empty_value(api: Api) -> None:
    with api.client() as client:
        assert_error(get(client, query("shop", "customer", "email", "   ")),
                     400, "InvalidIdentifierQuery")


@pytest.mark.parametrize("suffix", ["", ".json"])
def test_profiles_of_a_user_oldest_first(api: Api, suffix: str) -> None:
    owner_email = email()
    with api.client() as client:
        owner = new_user(client, email=owner_email)
        made = []
        for n in range(3):
            made.append(create(client, query(f"src{n}", "customer", "email", owner_email)))
            time.sleep(0.005)  # distinct creation times, so "oldest first" is observable
        assert {p["user_id"] for p in made} == {str(owner["id"])}
        listed = client.get(f"/api/v2/users/{owner['id']}/profiles{suffix}")
        assert listed.status_code == 200, listed.text
        assert listed.json() == {"profiles": made}


@pytest.mark.parametrize("suffix", ["", ".json"])
def test_profiles_of_a_user_without_any_is_empty(api: Api, suffix: str) -> None:
    with api.client() as client:
        owner = new_user(client, email=email())
        listed = client.get(f"/api/v2/users/{owner['id']}/profiles{suffix}")
        assert listed.status_code == 200, listed.text
        assert listed.json() == {"profiles": []}


@pytest.mark.parametrize("user_id", ["987654321", "0", "abc", "12345678901234567890123"])
def test_profiles_of_an_unknown_user_is_404(api: Api, user_id: str) -> None:
    with api.client() as client:
        assert_error(client.get(f"/api/v2/users/{user_id}/profiles"), 404, "UserNotFound")
        assert_error(client.get(f"/api/v2/users/{user_id}/profiles.json"), 404, "UserNotFound")


def test_reads_do_not_create(api: Api) -> None:
    identifier = query("shop", "customer", "email", email())
    with api.client() as client:
        assert_error(get(client, identifier), 404, "ProfileNotFound")
        assert_error(get(client, identifier), 404, "ProfileNotFound")
        assert put(client, identifier).status_code == 201


@pytest.mark.parametrize("value", ["a+b {tag}@example.com", "100% & #{tag}?x=1/y", "Zoë {tag} 東京"])
def test_values_with_url_special_characters(api: Api, value: str) -> None:
    identifier_type = "email" if "@" in value else "handle"
    value = value.format(tag=unique())
    identifier = query("shop", "customer", identifier_type, value)
    with api.client() as client:
        profile = create(client, identifier)
        assert profile["identifiers"] == [{"type": identifier_type, "value": value.lower()
                                           if identifier_type == "email" else value}]
        assert get(client, identifier).json()["profile"]["id"] == profile["id"]
        assert client.delete(PROFILES, params={"identifier": identifier}).status_code == 204
