"""Database URLs as openprofiles accepts them: `sqlite:///path` and `postgresql://...`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


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
    def sqlalchemy(self) -> URL:
        """The same database, named for SQLAlchemy's synchronous drivers (used by migrations).
        A file's path is taken as it is: as a URL's text, `%`, `#` or `?` in it would be read
        as escapes, a fragment or a query."""
        from sqlalchemy.engine import URL, make_url  # only migrations need it

        if self.engine == "sqlite":
            return URL.create("sqlite", database=self.sqlite_path)
        rest = self.raw.split("://", 1)[1]
        return make_url("postgresql+psycopg://" + rest)

    @property
    def asyncpg(self) -> str:
        rest = self.raw.split("://", 1)[1]
        return "postgresql://" + rest
