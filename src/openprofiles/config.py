"""Settings, read from the command line and the environment in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .domain.limits import Limits

DEFAULT_DATABASE_URL = "sqlite:///./openprofiles.db"
DEFAULT_REDIS_PREFIX = "openprofiles:"


class InvalidSetting(ValueError):
    """A setting from the environment that cannot be used; the message names it."""


def _int_env(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidSetting(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise InvalidSetting(f"{name} must be at least {minimum}, not {value}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # A read replica of the database for the GET paths that tolerate staleness (PostgreSQL).
    read_database_url: str | None = None
    pool_size: int = 10
    # How long a SQLite write waits for another process's write lock before answering 503.
    sqlite_busy_timeout_ms: int = 10000
    limits: Limits = field(default_factory=Limits)
    # Requests a minute per account; 0 turns rate limiting off (the default).
    rate_limit: int = 0
    # Where workers and hosts share their rate-limit counts; None counts in each process.
    redis_url: str | None = None
    redis_prefix: str = DEFAULT_REDIS_PREFIX

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": os.environ.get("OPENPROFILES_DATABASE_URL", DEFAULT_DATABASE_URL),
            "read_database_url": os.environ.get("OPENPROFILES_READ_DATABASE_URL", "").strip() or None,
            "pool_size": _int_env("OPENPROFILES_POOL_SIZE", 10, minimum=1),
            "sqlite_busy_timeout_ms": _int_env("OPENPROFILES_SQLITE_BUSY_TIMEOUT_MS", 10000),
            "limits": Limits(
                max_profiles_per_user=_int_env("OPENPROFILES_MAX_PROFILES_PER_USER", 100, minimum=1),
                max_sources=_int_env("OPENPROFILES_MAX_SOURCES", 50, minimum=1),
                max_types=_int_env("OPENPROFILES_MAX_TYPES", 2500, minimum=1),
            ),
            "rate_limit": _int_env("OPENPROFILES_RATE_LIMIT", 0),
            "redis_url": os.environ.get("OPENPROFILES_REDIS_URL", "").strip() or None,
            "redis_prefix": os.environ.get("OPENPROFILES_REDIS_PREFIX", DEFAULT_REDIS_PREFIX),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
