"""The error format (RULES §7) for requests the API cannot take, over HTTP, on each engine."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from ..support import Api, unique

MIB = 1024 * 1024


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["errors"]
    [error] = body["errors"]
    assert error["code"] == code
    assert error["status"] == str(status)
    assert error["title"] and re.fullmatch(r"[0-9a-f]{16}", error["id"])
    assert set(error) <= {"code", "title", "detail", "status", "id"}
    return error


def as_json(body: object) -> dict[str, object]:
    """Request arguments for a JSON body, `null` included (httpx sends no body for json=None)."""
    return {"content": json.dumps(body).encode(), "headers": {"Content-Type": "application/json"}}


def profile_query() -> dict[str, str]:
    return {"identifier": f"shop:customer:member:{unique()}"}


@pytest.mark.parametrize("path", [
    "/", "/api", "/api/v2", "/api/v2/nothing", "/api/v2/user_profiles/a/b",
    "/api/v2/users/1/tickets", "/api/v3/user_profiles", "/api/v2/nothing.json",
])
def test_unknown_routes_are_404(client: httpx.Client, path: str) -> None:
    assert_error(client.get(path), 404, "RouteNotFound")
    # The route is unknown whoever asks.
    assert_error(httpx.get(client.base_url.join(path)), 404, "RouteNotFound")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("POST", "/api/v2/user_profiles", {"GET", "HEAD", "PUT", "PATCH", "DELETE"}),
    ("POST", "/api/v2/user_profiles/01BX5ZZKBKACTAV9WEVGEMMVRY",
     {"GET", "HEAD", "PUT", "PATCH", "DELETE"}),
    ("GET", "/api/v2/users", {"POST"}),
    ("DELETE", "/api/v2/users/me", {"GET", "HEAD"}),
    ("PUT", "/api/v2/users/1", {"GET", "HEAD"}),
    ("DELETE", "/api/v2/users/1/profiles", {"GET", "HEAD", "PUT"}),
    ("PUT", "/api/v2/users/1/identities.json", {"GET", "HEAD", "POST"}),
    ("POST", "/api/v2/openapi.json", {"GET", "HEAD"}),
])
def test_wrong_methods_are_405(client: httpx.Client, method: str, path: str,
                               allowed: set[str]) -> None:
    response = client.request(method, path)
    assert_error(response, 405, "MethodNotAllowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


def test_head_answers_like_get_without_a_body(client: httpx.Client, api: Api) -> None:
    head = client.head("/api/v2/users/me")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == "application/json"
    assert client.head("/api/v2/users/999999999").status_code == 404
    assert httpx.head(f"{api.base_url}/api/v2/users/me").status_code == 401


@pytest.mark.parametrize("raw", [
    b"{", b"{\"profile\": }", b"{'profile': {}}", b"profile=1", b"\xff\xfe", b"{\"profile\": {}} x",
    b"NaN",
])
def test_malformed_json_is_400(client: httpx.Client, raw: bytes) -> None:
    response = client.put("/api/v2/user_profiles", params=profile_query(), content=raw,
                          headers={"Content-Type": "application/json"})
    assert_error(response, 400, "InvalidJson")


def test_empty_body_is_400(client: httpx.Client) -> None:
    for content_type in ("application/json", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.put("/api/v2/user_profiles", params=profile_query(), content=b"",
                              headers=headers)
        assert_error(response, 400, "InvalidJson")


@pytest.mark.parametrize("body", [
    [], "profile", 1, None, True, {}, {"profile": None}, {"profile": []}, {"profile": "x"},
    {"profiles": {}}, {"user": {}},
])
def test_non_object_bodies_are_400(client: httpx.Client, body: object) -> None:
    for method in ("PUT", "PATCH"):
        response = client.request(method, "/api/v2/user_profiles", params=profile_query(),
                                  **as_json(body))
        assert_error(response, 400, "InvalidProfile")


@pytest.mark.parametrize("body", [[], "user", None, {}, {"users": {}}, {"user": ["x"]}])
def test_non_object_user_bodies_are_400(client: httpx.Client, body: object) -> None:
    assert_error(client.post("/api/v2/users", **as_json(body)), 400, "InvalidUser")


@pytest.mark.parametrize("body", [[], 1, None, {}, {"identities": {}}, {"identity": "email"}])
def test_non_object_identity_bodies_are_400(client: httpx.Client, api: Api, body: object) -> None:
    response = client.post(f"/api/v2/users/{api.admin.user_id}/identities", **as_json(body))
    assert_error(response, 400, "InvalidIdentity")


@pytest.mark.parametrize("profile", [
    {"source": 1}, {"type": ["x"]}, {"name": 5}, {"name": {"a": 1}},
    {"identifiers": "email"}, {"identifiers": {"type": "email"}}, {"identifiers": ["x"]},
    {"identifiers": [{"type": 1, "value": "x"}]}, {"identifiers": [{"type": "t", "value": True}]},
    {"identifiers": [{"type": "t", "value": None}]}, {"identifiers": [{"type": "t", "value": []}]},
    {"identifiers": [{"type": "t", "value": ""}]}, {"identifiers": [{"type": "", "value": "v"}]},
    {"identifiers": [{"value": "v"}]}, {"identifiers": [{"type": "t" * 61, "value": "v"}]},
    {"identifiers": [{"type": "t", "value": "v" * 513}]},
    {"attributes": []}, {"attributes": "x"}, {"attributes": 1},
])
def test_wrong_types_are_400_and_write_nothing(client: httpx.Client,
                                               profile: dict[str, object]) -> None:
    query = profile_query()
    for method in ("PUT", "PATCH"):
        response = client.request(method, "/api/v2/user_profiles", params=query,
                                  json={"profile": profile})
        assert_error(response, 400, "InvalidProfile")
    assert_error(client.get("/api/v2/user_profiles", params=query), 404, "ProfileNotFound")


@pytest.mark.parametrize("identifier", [
    "", "a", "a:b", "a:b:c", "a:b:c:", ":b:c:d", "a::c:d", "a:b::d", "a:b:" + "t" * 61 + ":v",
    "a:b:c:" + "v" * 513, "a:b:c:d\0e",
])
def test_bad_identifier_queries_are_400(client: httpx.Client, identifier: str) -> None:
    assert_error(client.get("/api/v2/user_profiles", params={"identifier": identifier}), 400,
                 "InvalidIdentifierQuery")
    response = client.put("/api/v2/user_profiles", params={"identifier": identifier},
                          json={"profile": {}})
    assert_error(response, 400, "InvalidIdentifierQuery")
    assert_error(client.get("/api/v2/user_profiles"), 400, "InvalidIdentifierQuery")


@pytest.mark.parametrize("body", [
    {"profile": {"name": "a\u0000b"}},
    {"profile": {"identifiers": [{"type": "t", "value": "\u0000"}]}},
    {"profile": {"identifiers": [{"type": "t\u0000", "value": "v"}]}},
])
def test_nul_characters_in_stored_text_are_400(client: httpx.Client, body: dict[str, object]) -> None:
    query = profile_query()
    response = client.put("/api/v2/user_profiles", params=query, json=body)
    assert_error(response, 400, "InvalidProfile")
    assert_error(client.get("/api/v2/user_profiles", params=query), 404, "ProfileNotFound")


def test_nul_characters_inside_attributes_round_trip(client: httpx.Client) -> None:
    attributes = {"k": ["x", {"deep": "\u0000"}], "k\u0000": 1}
    response = client.put("/api/v2/user_profiles", params=profile_query(),
                          json={"profile": {"attributes": attributes}})
    assert response.status_code == 201, response.text
    assert response.json()["profile"]["attributes"] == attributes


def test_escaped_backslash_before_u0000_is_not_nul(client: httpx.Client) -> None:
    response = client.put("/api/v2/user_profiles", params=profile_query(),
                          json={"profile": {"attributes": {"path": "C:\\u0000"}}})
    assert response.status_code == 201, response.text
    assert response.json()["profile"]["attributes"] == {"path": "C:\\u0000"}


def test_nul_in_ids_is_404(client: httpx.Client) -> None:
    assert_error(client.get("/api/v2/user_profiles/01BX5ZZKBKACTAV9WEVGEMM%00RY"), 404,
                 "ProfileNotFound")
    assert_error(client.delete("/api/v2/user_profiles/%00"), 404, "ProfileNotFound")
    assert_error(client.get("/api/v2/users/1%00"), 404, "UserNotFound")


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/xml", "multipart/form-data; boundary=x", "application/jsonx",
])
def test_unsupported_media_types_are_415(client: httpx.Client, content_type: str) -> None:
    body = b'{"profile": {}}'
    headers = {"Content-Type": content_type}
    query = profile_query()
    assert_error(client.put("/api/v2/user_profiles", params=query, content=body, headers=headers),
                 415, "UnsupportedMediaType")
    assert_error(client.patch("/api/v2/user_profiles", params=query, content=body,
                              headers=headers), 415, "UnsupportedMediaType")
    assert_error(client.post("/api/v2/users", content=b'{"user": {"name": "x"}}',
                             headers=headers), 415, "UnsupportedMediaType")


def test_merge_patch_is_only_for_patch(client: httpx.Client) -> None:
    query = profile_query()
    headers = {"Content-Type": "application/merge-patch+json"}
    assert_error(client.put("/api/v2/user_profiles", params=query, content=b'{"profile": {}}',
                            headers=headers), 415, "UnsupportedMediaType")
    assert client.put("/api/v2/user_profiles", params=query,
                      content=b'{"profile": {}}',
                      headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 201
    patched = client.patch("/api/v2/user_profiles", params=query,
                           content=b'{"profile": {"attributes": {"a": 1}}}', headers=headers)
    assert patched.status_code == 200, patched.text


def big_body(size: int) -> bytes:
    head, tail = b'{"profile": {"attributes": {"blob": "', b'"}}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_body_over_one_mib_is_413(client: httpx.Client) -> None:
    query = profile_query()
    body = big_body(MIB + 1)
    assert_error(client.put("/api/v2/user_profiles", params=query, content=body,
                            headers={"Content-Type": "application/json"}),
                 413, "PayloadTooLarge")

    def chunks():  # no Content-Length: the server counts as it reads
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    assert_error(client.put("/api/v2/user_profiles", params=query, content=chunks(),
                            headers={"Content-Type": "application/json"}),
                 413, "PayloadTooLarge")
    assert_error(client.post("/api/v2/users", content=b" " * (MIB + 1),
                             headers={"Content-Type": "application/json"}),
                 413, "PayloadTooLarge")
    assert_error(client.get("/api/v2/user_profiles", params=query), 404, "ProfileNotFound")


def test_body_of_exactly_one_mib_is_read(client: httpx.Client) -> None:
    # A body at the limit is read; its attributes are then over their own 64 KiB limit.
    response = client.put("/api/v2/user_profiles", params=profile_query(), content=big_body(MIB),
                          headers={"Content-Type": "application/json"})
    assert_error(response, 400, "AttributesTooLarge")


def test_errors_with_json_suffix(client: httpx.Client) -> None:
    assert_error(client.get("/api/v2/user_profiles/nope.json"), 404, "ProfileNotFound")
    assert_error(client.get("/api/v2/user_profiles.json", params={"identifier": "x"}), 400,
                 "InvalidIdentifierQuery")
