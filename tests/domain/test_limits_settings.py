"""The limits' defaults are the published ones; the configurable ones come from the environment."""

from __future__ import annotations

import pytest

from openprofiles.config import Settings
from openprofiles.domain import limits
from openprofiles.domain.limits import Limits


def test_defaults_are_the_published_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENPROFILES_MAX_PROFILES_PER_USER", "OPENPROFILES_MAX_SOURCES",
                 "OPENPROFILES_MAX_TYPES"):
        monkeypatch.delenv(name, raising=False)
    assert Settings.from_env().limits == Limits(max_profiles_per_user=100, max_sources=50,
                                                max_types=2500)
    assert (limits.MAX_IDENTIFIERS, limits.MAX_SOURCE_LENGTH, limits.MAX_TYPE_LENGTH) == (20, 40, 40)
    assert (limits.MAX_ATTRIBUTES_BYTES, limits.MAX_BODY_BYTES) == (64 * 1024, 1024 * 1024)


def test_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENPROFILES_MAX_PROFILES_PER_USER", "3")
    monkeypatch.setenv("OPENPROFILES_MAX_SOURCES", "7")
    monkeypatch.setenv("OPENPROFILES_MAX_TYPES", "11")
    assert Settings.from_env().limits == Limits(max_profiles_per_user=3, max_sources=7, max_types=11)
