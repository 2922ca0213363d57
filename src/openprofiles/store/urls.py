"""Database URLs as openprofiles accepts them: `sqlite:///path` and `postgresql://...`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


class InvalidDatabaseUrl(ValueError):
    pass


@dataclass(frozen=True)
class DatabaseUrl:
    raw: str
    engine: str  # "sqlite" or "postgresql"

    @classmethod
    def parse(cls, raw: str) -> DatabaseUrl:
        scheme = urlsplit(raw).scheme.split("+", 1)[0]
        if scheme == "sqlite":
            if not raw.startswith("sqlite:///") or raw == "sqlite:///":
                raise InvalidDatabaseUrl(f"expected sqlite:///PATH, got {raw!r}")
            return cls(raw, "sqlite")
        if scheme in ("postgresql", "postgres"):
            return cls(raw, "postgresql")
        raise InvalidDatabaseUrl(f"unsupported database URL {raw!r}: use sqlite:/// or postgresql://")

    @property
    def sqlite_path(self) -> str:
        return self.raw[len("sqlite:///"):]

    @property
    def sqlalchemy(self) -> str:
        """The same database, named for SQLAlchemy's synchronous drivers (used by migrations)."""
        if self.engine == "sqlite":
            return "sqlite:///" + self.sqlite_path
        rest = self.raw.split("://", 1)[1]
        return "postgresql+psycopg://" + rest

    @property
    def asyncpg(self) -> str:
        rest = self.raw.split("://", 1)[1]
        return "postgresql://" + rest
