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
