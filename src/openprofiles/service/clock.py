"""Time and ids: the only sources of values the rules do not decide."""

from __future__ import annotations

import time

from ulid import ULID


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_profile_id() -> str:
    return str(ULID())
