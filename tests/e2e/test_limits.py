"""Limits (RULES §1, §10): counts, lengths, value types, sizes, account-wide kinds.

Every refused write is checked to leave the database exactly as it was.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from openprofiles.domain import limits

from ..support import Api, served, unique
from .profile_support import (
    PROFILES, assert_error, create, email, get, new_user, patch, put, query, row_counts,
)

SOURCE = "shop"


def _many(n: int, prefix: str = "k") -> list[dict[str, str]]:
    tag = unique("")
    return [{"type": "loyalty", "value": f"{prefix}{i}-{tag}"} for i in range(n)]


# Identifier count


def test_twenty_identifiers_are_allowed_twenty_one_are_not(api: Api) -> None:
    with api.client() as client:
        # 19 in the body plus the query's own: 20.
        profile = create(client, query(SOURCE, "customer", "member_no", unique("M")),
                         {"identifiers": _many(19)})
        assert len(profile["identifiers"]) == 20
        # 20 in the body, the query's own among them: 20.
        sent = _many(20)
        profile = create(client, query(SOURCE, "customer", "loyalty", sent[7]["value"]),
                         {"identifiers": sent})
        assert len(profile["identifiers"]) == 20
        # Exact duplicates count once.
        sent = _many(19)
        profile = create(client, query(SOURCE, "customer", "member_no", unique("M")),
                         {"identifiers": [*sent, sent[0], sent[3]]})
        assert len(profile["identifiers"]) == 20
        before = row_counts(api)
        for body_count in (20, 21, 40):
            identifier = query(SOURCE, "customer", "member_no", unique("M"))
            assert_error(put(client, identifier, {"identifiers": _many(body_count)}),
                         400, "TooManyIdentifiers")
            assert_error(get(client, identifier), 404)
        assert row_counts(api) == before


def test_replace_beyond_twenty_identifiers_is_400(api: Api) -> None:
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    with api.client() as client:
        profile = create(client, identifier)
        assert put(client, identifier, {"identifiers": _many(19)}).status_code == 200
        before = row_counts(api)
        assert_error(put(client, identifier, {"identifiers": _many(20)}), 400, "TooManyIdentifiers")
        sent = [*_many(20), profile["identifiers"][0]]
        assert_error(client.put(f"{PROFILES}/{profile['id']}", json={"profile": {"identifiers": sent}}),
                     400, "TooManyIdentifiers")
        assert row_counts(api) == before
        assert len(get(client, identifier).json()["profile"]["identifiers"]) == 20


def test_patch_may_grow_identifiers_to_twenty_but_not_beyond(api: Api) -> None:
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    with api.client() as client:
        profile = create(client, identifier, {"identifiers": _many(15)})
        grown = patch(client, identifier, {"identifiers": _many(4, "a")})
        assert grown.status_code == 200 and len(grown.json()["profile"]["identifiers"]) == 20
        stored = grown.json()["profile"]
        before = row_counts(api)
        # Identifiers already held do not count twice...
        again = patch(client, identifier, {"identifiers": stored["identifiers"][:5]})
        assert again.status_code == 200, again.text
        stored = again.json()["profile"]
        # ...a new one is the twenty-first.
        assert_error(patch(client, identifier, {"identifiers": _many(1, "b"), "name": "X"}),
                     400, "TooManyIdentifiers")
        assert_error(client.patch(f"{PROFILES}/{profile['id']}",
                                  json={"profile": {"identifiers": _many(1, "c")}}),
                     400, "TooManyIdentifiers")
        assert row_counts(api) == before
        assert get(client, identifier).json()["profile"] == stored


# Source, type and identifier type lengths


def test_source_and_type_lengths(api: Api) -> None:
    with api.client() as client:
        long_source = "s" * 40  # one fixed source: sources are limited per account
        profile = create(client, query(long_source, "customer", "member_no", unique("M")))
        assert profile["source"] == long_source
        profile = create(client, query(SOURCE, "t" * 40, "member_no", unique("M")))
        assert profile["type"] == "t" * 40
        # Characters are counted, not bytes.
        profile = create(client, query(SOURCE, "é" * 40, "member_no", unique("M")))
        assert profile["type"] == "é" * 40
        before = row_counts(api)
        owner = new_user(client)
        for source, profile_type, code in (("s" * 41, "customer", "InvalidProfileSourceLength"),
                                           (SOURCE, "t" * 41, "InvalidProfileTypeLength"),
                                           ("é" * 41, "customer", "InvalidProfileSourceLength")):
            identifier = query(source, profile_type, "member_no", unique("M"))
            assert_error(put(client, identifier), 400, code)
            assert_error(put(client, identifier, path=f"/api/v2/users/{owner['id']}/profiles"), 400, code)
        after = row_counts(api)
        assert after == {**before, "users": before["users"] + 1}


def test_identifier_type_length(api: Api) -> None:
    with api.client() as client:
        profile = create(client, query(SOURCE, "customer", "i" * 60, unique("v")),
                         {"identifiers": [{"type": "j" * 60, "value": unique("v")}]})
        assert [i["type"] for i in profile["identifiers"]] == ["j" * 60, "i" * 60]
        before = row_counts(api)
        assert_error(put(client, query(SOURCE, "customer", "i" * 61, unique("v"))),
                     400, "InvalidIdentifierQuery")
        assert_error(get(client, query(SOURCE, "customer", "i" * 61, unique("v"))),
                     400, "InvalidIdentifierQuery")
        assert_error(put(client, query(SOURCE, "customer", "member_no", unique("M")),
                         {"identifiers": [{"type": "j" * 61, "value": "v"}]}), 400, "InvalidProfile")
        assert_error(patch(client, query(SOURCE, "customer", "i" * 60,
                                         profile["identifiers"][1]["value"]),
                           {"identifiers": [{"type": "j" * 61, "value": "v"}]}), 400)
        assert row_counts(api) == before


# Identifier values


def test_number_value_is_kept_as_its_decimal_string(api: Api) -> None:
    number = random.randrange(10**7, 10**8)
    big = 10**30 + random.randrange(10**6)
    ratio = random.randrange(10**6) + 0.5
    with api.client() as client:
        profile = create(client, query(SOURCE, "customer", "member_no", unique("M")), {
            "identifiers": [{"type": "phone_number", "value": number},
                            {"type": "card", "value": big},
                            {"type": "ratio", "value": ratio}],
        })
        assert profile["identifiers"][:3] == [
            {"type": "phone_number", "value": str(number)},
            {"type": "card", "value": str(big)},
            {"type": "ratio", "value": str(ratio)},
        ]
        found = get(client, query(SOURCE, "customer", "phone_number", str(number)))
        assert found.json()["profile"]["id"] == profile["id"]


@pytest.mark.parametrize("value", [True, False, None, {"a": 1}, [], ["x"], "", "   "])
def test_non_string_or_empty_value_is_400(api: Api, value: object) -> None:
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    with api.client() as client:
        existing = create(client, query(SOURCE, "customer", "member_no", unique("M")))
        before = row_counts(api)
        items = [{"type": "email", "value": value}] if value == "   " else [{"type": "k", "value": value}]
        if value == "":
            items.append({"type": "email", "value": ""})
        for item in items:
            body = {"identifiers": [item]}
            assert_error(put(client, identifier, body), 400, "InvalidProfile")
            assert_error(client.patch(f"{PROFILES}/{existing['id']}", json={"profile": body}),
                         400, "InvalidProfile")
        assert row_counts(api) == before
        assert client.get(f"{PROFILES}/{existing['id']}").json()["profile"] == existing


def test_identifier_without_value_is_400(api: Api) -> None:
    with api.client() as client:
        assert_error(put(client, query(SOURCE, "customer", "member_no", unique("M")),
                         {"identifiers": [{"type": "k"}]}), 400, "InvalidProfile")


@pytest.mark.parametrize("where", ["query value", "query source", "query type", "query type of identifier",
                                   "body value", "body type", "name", "body source"])
def test_nul_characters_are_refused(api: Api, where: str) -> None:
    """No text column of either engine stores U+0000 alike; a clear 400 rather than a failure."""
    parts = [SOURCE, "customer", "member_no", unique("M")]
    body: dict[str, object] = {}
    if where.startswith("query"):
        index = ["query source", "query type", "query type of identifier", "query value"].index(where)
        parts[index] = parts[index][:2] + "\x00" + parts[index][2:]
    elif where == "body value":
        body = {"identifiers": [{"type": "k", "value": "a\x00b"}]}
    elif where == "body type":
        body = {"identifiers": [{"type": "k\x00", "value": "ab"}]}
    elif where == "body source":
        body = {"source": "sh\x00op"}
    else:
        body = {"name": "Jane\x00"}
    identifier = query(*parts)
    with api.client() as client:
        existing = create(client, query(SOURCE, "customer", "member_no", unique("M")))
        before = row_counts(api)
        assert_error(put(client, identifier, body), 400)
        if where.startswith("query"):
            assert_error(get(client, identifier), 400, "InvalidIdentifierQuery")
            assert_error(client.delete(PROFILES, params={"identifier": identifier}), 400)
        elif where != "body source":  # PATCH ignores a body's source
            assert_error(client.patch(f"{PROFILES}/{existing['id']}", json={"profile": body}), 400)
        assert row_counts(api) == before


def test_malformed_profile_ids_are_404(api: Api) -> None:
    with api.client() as client:
        for profile_id in ("nope", "a%00b", "x" * 300, "01bx5zzkbkactav9wevgemmvry"):
            assert_error(client.get(f"{PROFILES}/{profile_id}"), 404, "ProfileNotFound")
            assert_error(client.delete(f"{PROFILES}/{profile_id}"), 404, "ProfileNotFound")
            assert_error(client.patch(f"{PROFILES}/{profile_id}", json={"profile": {}}), 404)


def test_user_ids_are_ascii_digits(api: Api) -> None:
    with api.client() as client:
        # U+0661 ARABIC-INDIC DIGIT ONE is a digit to Python, but not a user id.
        assert_error(client.get("/api/v2/users/\u0661/profiles"), 404, "UserNotFound")
        assert_error(client.get("/api/v2/users/\u0661"), 404, "UserNotFound")


def _random_text(length: int, alphabet: str) -> str:
    rng = random.Random()
    return "".join(rng.choice(alphabet) for _ in range(length))


def test_identifier_value_length(api: Api) -> None:
    """Values up to MAX_IDENTIFIER_VALUE_LENGTH characters are stored, in the widest key there
    is: the longest source, type and identifier type, written in four-byte characters."""
    wide = "\U0001f600\U0001f680\U0001f4a1\U0001f40d"
    max_chars = limits.MAX_IDENTIFIER_VALUE_LENGTH
    widest_type = _random_text(40, wide)
    widest_identifier_type = _random_text(60, wide)
    with api.client() as client:
        for alphabet in (string.ascii_letters, wide):
            value = _random_text(max_chars, alphabet)
            profile = create(client, query(SOURCE, widest_type, widest_identifier_type, value))
            assert profile["identifiers"] == [{"type": widest_identifier_type, "value": value}]
            email_value = _random_text(max_chars - len("@x.example"), string.ascii_lowercase) + "@x.example"
            profile = create(client, query(SOURCE, widest_type, "email", email_value))
            assert profile["identifiers"] == [{"type": "email", "value": email_value}]
        before = row_counts(api)
        too_long = _random_text(max_chars + 1, string.ascii_letters)
        assert_error(put(client, query(SOURCE, "customer", "member_no", too_long)),
                     400, "InvalidIdentifierQuery")
        assert_error(get(client, query(SOURCE, "customer", "member_no", too_long)),
                     400, "InvalidIdentifierQuery")
        too_wide = _random_text(max_chars + 1 - len("@x.example"), wide)
        assert_error(put(client, query(SOURCE, "customer", "member_no", unique("M")),
                         {"identifiers": [{"type": "email", "value": too_wide + "@x.example"}]}),
                     400, "InvalidProfile")
        assert row_counts(api) == before


# Sizes


def test_attributes_up_to_64_kib(api: Api) -> None:
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    limit = limits.MAX_ATTRIBUTES_BYTES
    filler = limit - len('{"a":""}')
    with api.client() as client:
        profile = create(client, identifier, {"attributes": {"a": "x" * filler}})
        assert len(profile["attributes"]["a"]) == filler
        before = row_counts(api)
        new_identifier = query(SOURCE, "customer", "member_no", unique("M"))
        assert_error(put(client, new_identifier, {"attributes": {"a": "x" * (filler + 1)}}), 400)
        assert_error(get(client, new_identifier), 404)
        # A merge that would grow the stored attributes past the limit is refused too.
        assert_error(patch(client, identifier, {"attributes": {"b": 1}}), 400)
        assert_error(put(client, identifier, {"attributes": {"a": "y" * (filler + 1)}}), 400)
        assert row_counts(api) == before
        assert get(client, identifier).json()["profile"] == profile
        # Shrinking through a merge is fine.
        shrunk = patch(client, identifier, {"attributes": {"a": None, "b": 1}})
        assert shrunk.status_code == 200 and shrunk.json()["profile"]["attributes"] == {"b": 1}


def test_body_over_one_mib_is_413(api: Api) -> None:
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    body = b'{"profile": {"attributes": {"a": "' + b"x" * limits.MAX_BODY_BYTES + b'"}}}'
    with api.client() as client:
        before = row_counts(api)
        headers = {"content-type": "application/json"}
        assert_error(client.put(PROFILES, params={"identifier": identifier}, content=body,
                                headers=headers), 413, "PayloadTooLarge")

        def chunks():  # no Content-Length: the server must count as it reads
            for start in range(0, len(body), 65536):
                yield body[start:start + 65536]

        assert_error(client.put(PROFILES, params={"identifier": identifier}, content=chunks(),
                                headers=headers), 413, "PayloadTooLarge")
        assert row_counts(api) == before
        assert_error(get(client, identifier), 404)


@pytest.mark.parametrize("depth", [985, 5000])
def test_deeply_nested_attributes_are_400(api: Api, depth: int) -> None:
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    content = b'{"profile": {"attributes": ' + nested + b"}}"
    headers = {"content-type": "application/json"}
    with api.client() as client:
        create(client, identifier)
        before = row_counts(api)
        assert_error(client.put(PROFILES, params={"identifier": identifier}, content=content,
                                headers=headers), 400)
        assert_error(client.patch(PROFILES, params={"identifier": identifier}, content=content,
                                  headers=headers), 400)
        assert row_counts(api) == before


def test_attributes_nested_to_the_limit_are_stored(api: Api) -> None:
    depth = limits.MAX_ATTRIBUTES_DEPTH
    nested: object = 1
    for _ in range(depth):
        nested = {"a": nested}
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    with api.client() as client:
        profile = create(client, identifier, {"attributes": nested})
        assert profile["attributes"] == nested
        merged = patch(client, identifier, {"attributes": nested})
        assert merged.status_code == 200 and merged.json()["profile"]["attributes"] == nested
        assert_error(patch(client, identifier, {"attributes": {"b": nested}}), 400)


def test_nul_characters_in_users_are_refused(api: Api) -> None:
    with api.client() as client:
        before = row_counts(api)
        for body in ({"name": "Ja\x00ne"}, {"name": "Jane", "external_id": "e\x00"},
                     {"name": "Jane", "identities": [{"type": "phone_number", "value": "+1\x00"}]},
                     {"name": "Jane", "email": f"a\x00{email()}"}):
            assert_error(client.post("/api/v2/users", json={"user": body}), 400, "InvalidUser")
        assert row_counts(api) == before


def test_nul_characters_in_attributes_round_trip(api: Api) -> None:
    identifier = query(SOURCE, "customer", "member_no", unique("M"))
    attributes = {"k\x00ey": "va\x00lue", "list": ["\x00"]}
    with api.client() as client:
        profile = create(client, identifier, {"attributes": attributes})
        assert profile["attributes"] == attributes
        assert get(client, identifier).json()["profile"]["attributes"] == attributes


# Limits that need a server of their own: account-wide counts, and configured limits.

MAX_TYPES = 60
MAX_PROFILES_PER_USER = 3


@pytest.fixture(scope="module")
def limited_api(engine: str, work_dir: Path) -> Iterator[Api]:
    """One server per engine on an empty database, with a small type and profiles-per-user limit
    (the 50-source limit stays at its default). Its tests do not depend on their order."""
    with served(engine, work_dir, env={
        "OPENPROFILES_MAX_TYPES": str(MAX_TYPES),
        "OPENPROFILES_MAX_PROFILES_PER_USER": str(MAX_PROFILES_PER_USER),
    }) as api:
        yield api


def test_sources_and_types_per_account(limited_api: Api) -> None:
    """The default 50 sources, through the API; the type limit as configured (a small one, so
    that it is reached in a few requests: the mechanism is the same at the default 2,500)."""
    api = limited_api
    with api.client() as client:
        for n in range(50):
            create(client, query(f"source{n}", "customer", "member_no", unique("M")))
        before = row_counts(api)
        assert before["profile_kinds"] == 50
        extra = query("source50", "customer", "member_no", unique("M"))
        assert_error(put(client, extra), 400, "LimitExceeded")
        assert_error(get(client, extra), 404)
        assert row_counts(api) == before
        # A known source takes new types until the account's type limit.
        for n in range(MAX_TYPES - 50):
            create(client, query("source0", f"type{n}", "member_no", unique("M")))
        assert row_counts(api)["profile_kinds"] == MAX_TYPES
        before = row_counts(api)
        assert_error(put(client, query("source0", "one_too_many", "member_no", unique("M"))),
                     400, "LimitExceeded")
        assert_error(put(client, query("source50", "customer", "member_no", unique("M"))), 400)
        assert row_counts(api) == before
        # Kinds in use take new profiles; a deleted profile does not free its kind.
        create(client, query("source49", "customer", "member_no", unique("M")))
        create(client, query("source0", "type0", "member_no", unique("M")))
        gone = create(client, query("source1", "customer", "email", email()))
        assert client.delete(f"{PROFILES}/{gone['id']}").status_code == 204
        assert_error(put(client, query("source0", "one_too_many", "member_no", unique("M"))), 400)


def test_profiles_per_user_limit(limited_api: Api) -> None:
    api = limited_api
    address = email()
    sources = [f"source{n}" for n in range(MAX_PROFILES_PER_USER + 1)]
    with api.client() as client:
        owner = new_user(client, email=address)
        for source in sources[:-1]:
            create(client, query(source, "customer", "email", address))
        before = row_counts(api)
        extra = query(sources[-1], "customer", "email", address)
        assert_error(put(client, extra), 400, "ProfileLimitExceeded")
        assert_error(put(client, query(sources[-1], "customer", "member_no", unique("M")),
                         path=f"/api/v2/users/{owner['id']}/profiles"), 400, "ProfileLimitExceeded")
        assert row_counts(api) == before
        assert_error(get(client, extra), 404)
        # Replacing and merging the user's profiles is still allowed.
        assert put(client, query(sources[0], "customer", "email", address)).status_code == 200
        assert patch(client, query(sources[1], "customer", "email", address),
                     {"attributes": {"a": 1}}).status_code == 200
        # Another user is not held back by the first one's count.
        assert put(client, extra.replace(address, email())).status_code == 201
        # Deleting one frees a place.
        assert client.delete(PROFILES, params={
            "identifier": query(sources[0], "customer", "email", address)}).status_code == 204
        assert put(client, extra).status_code == 201
