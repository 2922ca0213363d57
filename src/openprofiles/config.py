"""Settings, read from the command line and the environment in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .domain.limits import Limits

DEFAULT_DATABASE_URL = "sqlite:///./openprofiles.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    pool_size: int = 10
    limits: Limits = field(default_factory=Limits)
    migrate_on_start: bool = True

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": os.environ.get("OPENPROFILES_DATABASE_URL", DEFAULT_DATABASE_URL),
            "pool_size": int(os.environ.get("OPENPROFILES_POOL_SIZE", "10")),
            "limits": Limits(
                max_profiles_per_user=int(
                    os.environ.get("OPENPROFILES_MAX_PROFILES_PER_USER", "100")
                ),
                max_sources=int(os.environ.get("OPENPROFILES_MAX_SOURCES", "50")),
                max_types=int(os.environ.get("OPENPROFILES_MAX_TYPES", "2500")),
            ),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
