"""What may be a profile id: 26 characters of Crockford's base 32, and nothing else."""

from __future__ import annotations

import pytest

from openprofiles.domain.profile import is_profile_id


@pytest.mark.parametrize("text", ["01HZX4Q4WZ6M0R8G3N1C5V7B9D", "0" * 26, "Z" * 26])
def test_ulids_may_be_profile_ids(text: str) -> None:
    assert is_profile_id(text)


@pytest.mark.parametrize("text", [
    "",
    "01HZX4Q4WZ6M0R8G3N1C5V7B9",  # 25 characters
    "01HZX4Q4WZ6M0R8G3N1C5V7B9DD",  # 27
    "01hzx4q4wz6m0r8g3n1c5v7b9d",  # lower case
    "01HZX4Q4WZ6M0R8G3N1C5V7B9I",  # I, L, O and U are not in the alphabet
    "01HZX4Q4WZ6M0R8G3N1C5V7B9L",
    "01HZX4Q4WZ6M0R8G3N1C5V7B9O",
    "01HZX4Q4WZ6M0R8G3N1C5V7B9U",
    "01HZX4Q4WZ6M0R8G3N1C5V7B9-",
    "01HZX4Q4WZ6M0R8G3N1C5V7B9\u0660",  # a digit, but not an ASCII one
])
def test_anything_else_is_not(text: str) -> None:
    assert not is_profile_id(text)
