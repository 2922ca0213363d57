"""What the SQLite store tests share: a database file at the latest schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from openprofiles.store.migrate import upgrade
from openprofiles.store.urls import DatabaseUrl


@pytest.fixture
def path(tmp_path: Path) -> str:
    file = tmp_path / "store.db"
    upgrade(DatabaseUrl.parse(f"sqlite:///{file}"))
    return str(file)
