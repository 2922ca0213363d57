"""`query_value` reads one parameter exactly as the framework's full query parsing would."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams
from starlette.requests import Request

from openprofiles.api.bodies import query_value

CASES = [
    "identifier=shop%3Acustomer%3Aemail%3Aa%40b.com",
    "identifier=shop:customer:email:a@b.com",
    "a=1&identifier=x:y:z:w&identifier=q",
    "identifier=a+b%2Bc",
    "identifier",
    "x=%E2%82%AC&identifier=%E2%82%AC%ZZ",
    "identifier=&identifier=v=w",
    "id%65ntifier=k",
    "other=1",
    "",
]


@pytest.mark.parametrize("query", CASES)
def test_matches_the_framework(query: str) -> None:
    request = Request({"type": "http", "query_string": query.encode("latin-1")})
    assert query_value(request, "identifier") == QueryParams(query).get("identifier")


UNQUOTE_CASES = [
    "", "plain", "a+b", "%41%42", "%e2%82%ac", "%E2%82", "%ZZ%4", "%", "100%", "%%41",
    "caf\u00e9%20ok", "%F0%9F%98%80+x", "%00", "a%2Bb%2bc", "%C3%28", "%3A%3a:",
]


@pytest.mark.parametrize("text", UNQUOTE_CASES)
def test_unquote_plus_matches_the_standard_library(text: str) -> None:
    from urllib.parse import unquote_plus as standard

    from openprofiles.api.bodies import unquote_plus

    assert unquote_plus(text) == standard(text)
