"""Callers of each role, made once per server: creating one takes two CLI runs."""

from __future__ import annotations

import pytest

from ..support import Api, Credentials


@pytest.fixture(scope="session")
def end_user(api: Api) -> Credentials:
    return api.user("end-user")


@pytest.fixture(scope="session")
def agent(api: Api) -> Credentials:
    return api.user("agent")


@pytest.fixture(scope="session")
def readonly_agent(api: Api) -> Credentials:
    return api.user("agent", "--people-access", "readonly")
