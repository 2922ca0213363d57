"""Users behind profiles (RULES §5): matching, anonymous users, identities gained, conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from ..support import Api, unique
from .profile_support import (
    assert_error, create, email, get, identities, new_user, patch, put, query, row_counts, user,
)

SOURCE = "shop"


def _ids(profile: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["type"], i["value"]) for i in profile["identifiers"]]


def _value(identity_type: str) -> str:
    return email() if identity_type in ("email", "google") else unique(f"{identity_type}-")


# Matching existing users


@pytest.mark.parametrize("identity_type", ["email", "phone_number", "twitter", "facebook", "sdk"])
def test_standard_identifier_matches_an_identity(api: Api, identity_type: str) -> None:
    value = _value(identity_type)
    with api.client() as client:
        owner = new_user(client, identities=[{"type": identity_type, "value": value}])
        # Sent in another letter case: email and twitter match regardless; the others as sent.
        sent = value.upper() if identity_type in ("email", "twitter") else value
        before = row_counts(api)
        profile = create(client, query(SOURCE, "customer", identity_type, sent))
        assert profile["user_id"] == str(owner["id"])
        after = row_counts(api)
        assert after["users"] == before["users"]  # no anonymous user
        assert after["user_identities"] == before["user_identities"]  # nothing new to gain


@pytest.mark.parametrize("identity_type", ["phone_number", "facebook", "sdk"])
def test_case_sensitive_identity_types_do_not_match_other_case(api: Api, identity_type: str) -> None:
    value = unique(f"{identity_type}-Ab")
    with api.client() as client:
        owner = new_user(client, identities=[{"type": identity_type, "value": value}])
        profile = create(client, query(SOURCE, "customer", identity_type, value.upper()))
        assert profile["user_id"] != str(owner["id"])


def test_google_identity_matches_an_email_identifier(api: Api) -> None:
    address = email()
    with api.client() as client:
        owner = new_user(client, identities=[{"type": "google", "value": address.upper()}])
        before = row_counts(api)
        profile = create(client, query(SOURCE, "customer", "email", address))
        assert profile["user_id"] == str(owner["id"])
        # The google identity stands for the address: no separate email identity is added.
        assert row_counts(api)["user_identities"] == before["user_identities"]


def test_user_email_field_matches(api: Api) -> None:
    address = email()
    with api.client() as client:
        owner = new_user(client, email=address)
        profile = create(client, query(SOURCE, "customer", "email", address))
        assert profile["user_id"] == str(owner["id"])


def test_external_id_matches_case_insensitively(api: Api) -> None:
    external_id = unique("Ext-AbC-")
    with api.client() as client:
        owner = new_user(client, external_id=external_id)
        for profile_type, sent in (("customer", external_id.upper()), ("lead", external_id.lower())):
            profile = create(client, query(SOURCE, profile_type, "external_id", sent))
            assert profile["user_id"] == str(owner["id"])
        # The user's own external id is untouched.
        assert user(client, owner["id"])["external_id"] == external_id


def test_no_match_creates_an_anonymous_end_user_named_after_the_profile(api: Api) -> None:
    address = email()
    with api.client() as client:
        before = row_counts(api)
        profile = create(client, query(SOURCE, "customer", "member_no", unique("M")),
                         {"name": "Jane Smith", "identifiers": [{"type": "email", "value": address}]})
        after = row_counts(api)
        assert after["users"] == before["users"] + 1
        anonymous = user(client, profile["user_id"])
        assert anonymous["role"] == "end-user"
        assert anonymous["name"] == "Jane Smith"
        assert identities(client, profile["user_id"]) == {("email", address)}
        listed = client.get(f"/api/v2/users/{profile['user_id']}/profiles").json()["profiles"]
        assert [p["id"] for p in listed] == [profile["id"]]


def test_profile_without_standard_identifiers_gets_its_own_user(api: Api) -> None:
    with api.client() as client:
        first = create(client, query(SOURCE, "customer", "member_no", unique("M")))
        second = create(client, query(SOURCE, "customer", "member_no", unique("M")))
        assert first["user_id"] != second["user_id"]
        assert identities(client, first["user_id"]) == set()
        assert user(client, first["user_id"])["name"] == first["name"]


def test_profiles_of_one_person_in_several_sources_share_the_user(api: Api) -> None:
    address = email()
    with api.client() as client:
        first = create(client, query("src0", "customer", "email", address))
        second = create(client, query("src1", "lead", "email", address))
        third = create(client, query(SOURCE, "customer", "member_no", unique("M")),
                       {"identifiers": [{"type": "email", "value": address.upper()}]})
        assert first["user_id"] == second["user_id"] == third["user_id"]
        listed = client.get(f"/api/v2/users/{first['user_id']}/profiles").json()["profiles"]
        assert [p["id"] for p in listed] == [first["id"], second["id"], third["id"]]


# Identities gained


def test_identities_are_gained_on_create(api: Api) -> None:
    values = {t: _value(t) for t in ("email", "phone_number", "twitter", "facebook", "sdk")}
    external_id = unique("Ext-")
    with api.client() as client:
        owner = new_user(client, email=values["email"])
        sent = [{"type": t, "value": v} for t, v in values.items()]
        sent += [{"type": "external_id", "value": external_id}, {"type": "custom", "value": unique("c")}]
        profile = create(client, query(SOURCE, "customer", "member_no", unique("M")),
                         {"identifiers": sent})
        assert profile["user_id"] == str(owner["id"])
        assert identities(client, owner["id"]) == set(values.items())
        assert user(client, owner["id"])["external_id"] == external_id


@pytest.mark.parametrize("write", ["replace", "patch_by_identifier", "patch_by_id", "replace_by_id"])
def test_identities_are_gained_on_later_writes(api: Api, write: str) -> None:
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    phone = _value("phone_number")
    twitter = unique("Tw")
    external_id = unique("Ext-")
    with api.client() as client:
        profile = create(client, identifier)
        owner_id = profile["user_id"]
        assert identities(client, owner_id) == set()
        assert user(client, owner_id)["external_id"] is None
        body = {"identifiers": [{"type": "phone_number", "value": phone},
                                {"type": "twitter", "value": twitter},
                                {"type": "external_id", "value": external_id}]}
        if write == "replace":
            response = put(client, identifier, body)
        elif write == "replace_by_id":
            body["identifiers"] += profile["identifiers"]
            response = client.put(f"/api/v2/user_profiles/{profile['id']}", json={"profile": body})
        elif write == "patch_by_id":
            response = client.patch(f"/api/v2/user_profiles/{profile['id']}", json={"profile": body})
        else:
            response = patch(client, identifier, body)
        assert response.status_code == 200, response.text
        assert response.json()["profile"]["user_id"] == owner_id
        assert identities(client, owner_id) == {("phone_number", phone), ("twitter", twitter.lower())}
        assert user(client, owner_id)["external_id"] == external_id


def test_user_keeps_its_external_id(api: Api) -> None:
    address = email()
    kept = unique("Kept-")
    with api.client() as client:
        owner = new_user(client, email=address, external_id=kept)
        create(client, query(SOURCE, "customer", "email", address),
               {"identifiers": [{"type": "external_id", "value": unique("Other-")}]})
        assert user(client, owner["id"])["external_id"] == kept


def test_user_never_loses_identities_on_replace(api: Api) -> None:
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    address = email()
    phone = _value("phone_number")
    with api.client() as client:
        profile = create(client, identifier, {"identifiers": [
            {"type": "email", "value": address}, {"type": "phone_number", "value": phone}]})
        owned = identities(client, profile["user_id"])
        assert owned == {("email", address), ("phone_number", phone)}
        shrunk = put(client, identifier, {}).json()["profile"]
        assert _ids(shrunk) == [("member_no", identifier.split(":")[3])]
        assert identities(client, profile["user_id"]) == owned
        by_id = client.put(f"/api/v2/user_profiles/{profile['id']}",
                           json={"profile": {"identifiers": [{"type": "nick", "value": unique("n")}]}})
        assert by_id.status_code == 200, by_id.text
        assert identities(client, profile["user_id"]) == owned
        # The dropped identifiers still name the user: a new profile with them joins it.
        other = create(client, query("web", "visitor", "phone_number", phone))
        assert other["user_id"] == profile["user_id"]


# Conflicts: nothing written


def test_identifiers_of_two_users_is_400_and_writes_nothing(api: Api) -> None:
    first_email, second_email = email(), email()
    external_id = unique("Ext-")
    with api.client() as client:
        first = new_user(client, email=first_email)
        second = new_user(client, email=second_email)
        third = new_user(client, external_id=external_id)
        before = row_counts(api)
        attempts = [
            (query(SOURCE, "customer", "email", first_email),
             [{"type": "email", "value": second_email}]),
            (query(SOURCE, "customer", "member_no", unique("M")),
             [{"type": "phone_number", "value": _value("phone_number")},  # would be gained
              {"type": "email", "value": first_email},
              {"type": "external_id", "value": external_id.upper()}]),
        ]
        for identifier, sent in attempts:
            response = put(client, identifier, {"identifiers": sent})
            assert_error(response, 400, "IdentifiersForMultipleUsers")
            assert_error(get(client, identifier), 404)
        assert row_counts(api) == before
        for owner in (first, second, third):
            assert client.get(f"/api/v2/users/{owner['id']}/profiles").json() == {"profiles": []}


@pytest.mark.parametrize("identifier_type", ["email", "phone_number", "external_id"])
@pytest.mark.parametrize("write", ["replace", "patch_by_identifier", "patch_by_id", "replace_by_id"])
def test_identifier_of_another_user_on_a_later_write_is_400(
    api: Api, identifier_type: str, write: str
) -> None:
    taken = _value(identifier_type)
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    with api.client() as client:
        if identifier_type == "external_id":
            other = new_user(client, external_id=taken)
        else:
            other = new_user(client, identities=[{"type": identifier_type, "value": taken}])
        profile = create(client, identifier, {"attributes": {"a": 1}})
        before = row_counts(api)
        fresh_phone = _value("phone_number")  # would be gained first, were the write allowed
        body = {"name": "Changed", "attributes": {"b": 2},
                "identifiers": [{"type": "phone_number", "value": fresh_phone},
                                {"type": identifier_type, "value": taken}, *profile["identifiers"]]}
        if write == "replace":
            response = put(client, identifier, body)
        elif write == "replace_by_id":
            response = client.put(f"/api/v2/user_profiles/{profile['id']}", json={"profile": body})
        elif write == "patch_by_id":
            response = client.patch(f"/api/v2/user_profiles/{profile['id']}", json={"profile": body})
        else:
            response = patch(client, identifier, body)
        assert_error(response, 400)
        assert row_counts(api) == before
        assert get(client, identifier).json()["profile"] == profile
        assert identities(client, profile["user_id"]) == set()
        assert user(client, profile["user_id"])["external_id"] is None
        assert client.get(f"/api/v2/users/{other['id']}/profiles").json() == {"profiles": []}


def test_identifier_of_another_profile_of_the_same_source_and_type_is_400(api: Api) -> None:
    taken = unique("M")
    with api.client() as client:
        holder = create(client, query(SOURCE, "customer", "member_no", taken))
        other_identifier = query(SOURCE, "customer", "member_no", unique("M"))
        other = create(client, other_identifier)
        before = row_counts(api)
        clash = {"identifiers": [{"type": "email", "value": email()},
                                 {"type": "member_no", "value": taken}]}
        # A create whose body names the taken identifier.
        new_identifier = query(SOURCE, "customer", "member_no", unique("M"))
        assert_error(put(client, new_identifier, clash), 400, "IdentifierInUse")
        assert_error(get(client, new_identifier), 404)
        # A replace and a merge of the other profile.
        assert_error(put(client, other_identifier, clash), 400, "IdentifierInUse")
        assert_error(patch(client, other_identifier, clash), 400, "IdentifierInUse")
        assert_error(client.put(f"/api/v2/user_profiles/{other['id']}", json={"profile": clash}),
                     400, "IdentifierInUse")
        assert_error(client.patch(f"/api/v2/user_profiles/{other['id']}", json={"profile": clash}),
                     400, "IdentifierInUse")
        assert row_counts(api) == before
        assert get(client, other_identifier).json()["profile"] == other
        assert client.get(f"/api/v2/user_profiles/{holder['id']}").json()["profile"] == holder


def test_same_identifier_in_another_source_or_type_is_fine(api: Api) -> None:
    value = unique("M")
    with api.client() as client:
        first = create(client, query(SOURCE, "customer", "member_no", value))
        other_type = create(client, query(SOURCE, "lead", "member_no", value))
        other_source = create(client, query("web", "customer", "member_no", value))
        assert len({first["id"], other_type["id"], other_source["id"]}) == 3
        # And through a body, on a profile of another type.
        third = create(client, query(SOURCE, "partner", "member_no", unique("M")),
                       {"identifiers": [{"type": "member_no", "value": value}]})
        assert third["id"] not in {first["id"], other_type["id"], other_source["id"]}


# PUT /api/v2/users/{user_id}/profiles


@pytest.mark.parametrize("suffix", ["", ".json"])
def test_put_for_user_creates_then_replaces(api: Api, suffix: str) -> None:
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    address = email()
    with api.client() as client:
        owner = new_user(client)
        path = f"/api/v2/users/{owner['id']}/profiles{suffix}"
        created = put(client, identifier, {"identifiers": [{"type": "email", "value": address}],
                                           "attributes": {"a": 1}}, path=path)
        assert created.status_code == 201, created.text
        profile = created.json()["profile"]
        assert profile["user_id"] == str(owner["id"])
        assert created.headers["location"].endswith(f"/api/v2/user_profiles/{profile['id']}")
        assert identities(client, owner["id"]) == {("email", address)}
        replaced = put(client, identifier, {"attributes": {"b": 2}}, path=path)
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["profile"]["id"] == profile["id"]
        assert replaced.json()["profile"]["attributes"] == {"b": 2}
        listed = client.get(f"/api/v2/users/{owner['id']}/profiles").json()["profiles"]
        assert listed == [replaced.json()["profile"]]


def test_put_for_user_on_a_profile_of_another_user_is_400(api: Api) -> None:
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    with api.client() as client:
        profile = create(client, identifier, {"attributes": {"a": 1}})
        someone = new_user(client)
        before = row_counts(api)
        response = put(client, identifier, {"attributes": {"b": 2}},
                       path=f"/api/v2/users/{someone['id']}/profiles")
        assert_error(response, 400)
        assert row_counts(api) == before
        assert get(client, identifier).json()["profile"] == profile


def test_put_for_user_with_identifiers_of_another_user_is_400(api: Api) -> None:
    address = email()
    with api.client() as client:
        taken_by = new_user(client, email=address)
        owner = new_user(client)
        identifier = query(SOURCE, "customer", "email", address)
        before = row_counts(api)
        assert_error(put(client, identifier, path=f"/api/v2/users/{owner['id']}/profiles"), 400)
        assert row_counts(api) == before
        assert client.get(f"/api/v2/users/{taken_by['id']}/profiles").json() == {"profiles": []}


@pytest.mark.parametrize("user_id", ["987654321", "abc"])
def test_put_for_unknown_user_is_404(api: Api, user_id: str) -> None:
    identifier = query(SOURCE, "customer", "email", email())
    with api.client() as client:
        before = row_counts(api)
        for suffix in ("", ".json"):
            response = put(client, identifier, path=f"/api/v2/users/{user_id}/profiles{suffix}")
            assert_error(response, 404, "UserNotFound")
        assert row_counts(api) == before
        assert_error(get(client, identifier), 404)
