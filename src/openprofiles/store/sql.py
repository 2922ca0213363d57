"""The queries, written once for both engines.

Statements use `$1`-style parameters (PostgreSQL's); the SQLite driver rewrites them to its
own numbered form. Each backend supplies a `Driver` that runs a statement on the connection of
the current transaction, and the few statements that differ by engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from ..domain.identifiers import Identifier
from ..domain.profile import Profile
from ..domain.users import Identity, IdentityKey, User
from .base import Account, StoredProfile, TokenHolder, TokenRecord
from .sql_events import EventQueries

_identifiers_decoder = msgspec.json.Decoder(list[Identifier])
_json_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class Driver(Protocol):
    engine: str

    async def fetchrow(self, sql: str, *args: Any) -> Any: ...
    async def fetchrow_kept(self, sql: str, *args: Any) -> Any:
        """`fetchrow` for a row read on every request that rarely changes; an engine that can
        tell that nothing was committed since it last read the row may answer from memory."""
        ...
    async def fetch(self, sql: str, *args: Any) -> list[Any]: ...
    async def execute(self, sql: str, *args: Any) -> int:
        """Runs a statement and returns the number of rows it changed."""
        ...
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def new_id(self, table: str) -> str:
        """An SQL expression giving a fresh id of `table`, to insert a row with and return."""
        ...
    def take_id(self, table: str) -> int | None:
        """A fresh id of `table` the driver can hand out without asking the database, or None:
        the row is then inserted with `new_id`."""
        ...
    def forget_ids(self) -> None:
        """Rows were inserted with ids chosen by the caller: ids `take_id` would hand out next
        may be taken."""
        ...


_PROFILE_COLUMNS = "id, user_id, source, type, name, identifiers, attributes, created_at, updated_at"
_USER_COLUMNS = (
    "id, name, email, role, people_access, external_id, active, suspended, created_at, updated_at"
)
_IDENTITY_COLUMNS = "id, user_id, type, value, is_primary, created_at, updated_at"


def profile_from_row(row: Any) -> Profile:
    return Profile(
        id=row[0],
        user_id=row[1],
        source=row[2],
        type=row[3],
        name=row[4],
        identifiers=_identifiers_decoder.decode(row[5]),
        attributes=_json_decoder.decode(row[6]),
        created_at=row[7],
        updated_at=row[8],
    )


def _user_from_row(row: Any) -> User:
    return User(
        id=row[0], name=row[1], email=row[2], role=row[3], people_access=row[4],
        external_id=row[5], active=bool(row[6]), suspended=bool(row[7]),
        created_at=row[8], updated_at=row[9],
    )


def _identity_from_row(row: Any) -> Identity:
    return Identity(
        id=row[0], user_id=row[1], type=row[2], value=row[3], primary=bool(row[4]),
        created_at=row[5], updated_at=row[6],
    )


def encode_identifiers(identifiers: Sequence[Identifier]) -> str:
    return _encoder.encode(identifiers).decode()


class SqlTransaction(EventQueries):
    """Implements `store.base.Transaction` on top of a `Driver`."""

    def __init__(self, driver: Driver, account_id: int) -> None:
        self.driver = driver
        self.account_id = account_id
        self._lock_suffix = " FOR UPDATE" if driver.engine == "postgresql" else ""

    async def _insert_with_new_id(self, table: str, columns: str, values: str, *args: Any) -> int:
        """Inserts a row of `table` under a fresh id, which goes where `values` says `{id}`;
        returns the id."""
        taken = self.driver.take_id(table)
        if taken is None:
            rows = await self.driver.fetch(
                f"INSERT INTO {table} ({columns})"
                f" VALUES ({values.format(id=self.driver.new_id(table))}) RETURNING id",
                *args,
            )
            return int(rows[0][0])
        await self.driver.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({values.format(id=f'${len(args) + 1}')})",
            *args, taken,
        )
        return taken

    # Profiles

    async def get_profile(self, profile_id: str, *, for_update: bool = False) -> Profile | None:
        row = await self._profile_row(profile_id, for_update)
        return profile_from_row(row) if row else None

    async def get_stored_profile(self, profile_id: str) -> StoredProfile | None:
        row = await self._profile_row(profile_id, False)
        return StoredProfile(*row) if row else None

    async def _profile_row(self, profile_id: str, for_update: bool) -> Any:
        return await self.driver.fetchrow(
            f"SELECT {_PROFILE_COLUMNS} FROM profiles WHERE account_id = $1 AND id = $2"
            + (self._lock_suffix if for_update else ""),
            self.account_id, profile_id,
        )

    async def find_profile(
        self, source: str, profile_type: str, identifier: Identifier, *, for_update: bool = False
    ) -> Profile | None:
        row = await self._found_row(source, profile_type, identifier, for_update)
        return profile_from_row(row) if row else None

    async def find_stored_profile(
        self, source: str, profile_type: str, identifier: Identifier
    ) -> StoredProfile | None:
        row = await self._found_row(source, profile_type, identifier, False)
        return StoredProfile(*row) if row else None

    async def _found_row(
        self, source: str, profile_type: str, identifier: Identifier, for_update: bool
    ) -> Any:
        return await self.driver.fetchrow(
            "SELECT p.id, p.user_id, p.source, p.type, p.name, p.identifiers, p.attributes,"
            " p.created_at, p.updated_at"
            " FROM profile_identifiers i JOIN profiles p"
            " ON p.account_id = i.account_id AND p.id = i.profile_id"
            " WHERE i.account_id = $1 AND i.source = $2 AND i.profile_type = $3"
            " AND i.type = $4 AND i.value = $5"
            + (" FOR UPDATE OF p" if for_update and self._lock_suffix else ""),
            self.account_id, source, profile_type, identifier.type, identifier.value,
        )

    async def profile_ids_holding(
        self, source: str, profile_type: str, identifiers: Sequence[Identifier]
    ) -> set[str]:
        found: set[str] = set()
        for identifier in identifiers:
            row = await self.driver.fetchrow(
                "SELECT profile_id FROM profile_identifiers WHERE account_id = $1 AND source = $2"
                " AND profile_type = $3 AND type = $4 AND value = $5",
                self.account_id, source, profile_type, identifier.type, identifier.value,
            )
            if row:
                found.add(row[0])
        return found

    async def user_profiles(self, user_id: int) -> list[Profile]:
        rows = await self.driver.fetch(
            f"SELECT {_PROFILE_COLUMNS} FROM profiles WHERE account_id = $1 AND user_id = $2"
            " ORDER BY created_at, id",
            self.account_id, user_id,
        )
        return [profile_from_row(row) for row in rows]

    async def count_user_profiles(self, user_id: int) -> int:
        row = await self.driver.fetchrow(
            "SELECT COUNT(*) FROM profiles WHERE account_id = $1 AND user_id = $2",
            self.account_id, user_id,
        )
        return int(row[0])

    async def _insert_identifier_rows(self, profile: Profile, identifiers: Sequence[Identifier]) -> None:
        await self.driver.executemany(
            "INSERT INTO profile_identifiers (account_id, source, profile_type, type, value, profile_id)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (self.account_id, profile.source, profile.type, i.type, i.value, profile.id)
                for i in identifiers
            ],
        )

    async def _delete_identifier_rows(self, profile: Profile, identifiers: Sequence[Identifier]) -> None:
        if identifiers:
            await self.driver.executemany(
                "DELETE FROM profile_identifiers WHERE account_id = $1 AND source = $2"
                " AND profile_type = $3 AND type = $4 AND value = $5 AND profile_id = $6",
                [
                    (self.account_id, profile.source, profile.type, i.type, i.value, profile.id)
                    for i in identifiers
                ],
            )

    async def insert_profile(self, profile: Profile, attributes_json: bytes) -> None:
        await self.driver.execute(
            f"INSERT INTO profiles (account_id, {_PROFILE_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            self.account_id, profile.id, profile.user_id, profile.source, profile.type,
            profile.name, encode_identifiers(profile.identifiers), attributes_json.decode(),
            profile.created_at, profile.updated_at,
        )
        await self._insert_identifier_rows(profile, profile.identifiers)

    async def update_profile(
        self, profile: Profile, attributes_json: bytes, previous: Sequence[Identifier]
    ) -> None:
        await self.driver.execute(
            "UPDATE profiles SET name = $3, identifiers = $4, attributes = $5, updated_at = $6"
            " WHERE account_id = $1 AND id = $2",
            self.account_id, profile.id, profile.name, encode_identifiers(profile.identifiers),
            attributes_json.decode(), profile.updated_at,
        )
        current = set(profile.identifiers)
        removed = [i for i in previous if i not in current]
        before = set(previous)
        added = [i for i in profile.identifiers if i not in before]
        await self._delete_identifier_rows(profile, removed)
        if added:
            await self._insert_identifier_rows(profile, added)

    async def delete_profile(self, profile: Profile) -> None:
        # A profile's events go with it (EVENTS.md), in the same transaction.
        await self.driver.execute(
            "DELETE FROM events WHERE account_id = $1 AND profile_id = $2",
            self.account_id, profile.id,
        )
        # By their keys, from the profile's own list of them (the two are written together).
        await self._delete_identifier_rows(profile, profile.identifiers)
        await self.driver.execute(
            "DELETE FROM profiles WHERE account_id = $1 AND id = $2", self.account_id, profile.id
        )

    async def has_kind(self, source: str, profile_type: str) -> bool:
        row = await self.driver.fetchrow(
            "SELECT 1 FROM profile_kinds WHERE account_id = $1 AND source = $2 AND type = $3",
            self.account_id, source, profile_type,
        )
        return row is not None

    async def kind_counts(self, source: str) -> tuple[bool, int]:
        row = await self.driver.fetchrow(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN source = $2 THEN 1 ELSE 0 END), 0)"
            " FROM profile_kinds WHERE account_id = $1",
            self.account_id, source,
        )
        return int(row[1]) > 0, int(row[0])

    async def count_sources(self) -> int:
        row = await self.driver.fetchrow(
            "SELECT COUNT(DISTINCT source) FROM profile_kinds WHERE account_id = $1",
            self.account_id,
        )
        return int(row[0])

    async def add_kind(self, source: str, profile_type: str) -> None:
        await self.driver.execute(
            "INSERT INTO profile_kinds (account_id, source, type) VALUES ($1, $2, $3)",
            self.account_id, source, profile_type,
        )

    # Users and identities

    async def get_user(self, user_id: int) -> User | None:
        row = await self.driver.fetchrow(
            f"SELECT {_USER_COLUMNS} FROM users WHERE account_id = $1 AND id = $2",
            self.account_id, user_id,
        )
        return _user_from_row(row) if row else None

    async def insert_user(
        self, *, name: str, email: str | None, role: str, people_access: str,
        external_id: str | None, password_hash: str | None, now: int,
    ) -> User:
        user_id = await self._insert_with_new_id(
            "users",
            "account_id, id, name, email, role, people_access, external_id, external_id_key,"
            " active, suspended, password_hash, created_at, updated_at",
            "$1, {id}, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11",
            self.account_id, name, email, role, people_access, external_id,
            external_id.lower() if external_id is not None else None, True, False,
            password_hash, now,
        )
        return User(
            id=user_id, name=name, email=email, role=role, people_access=people_access,
            external_id=external_id, active=True, suspended=False, created_at=now, updated_at=now,
        )

    async def set_external_id(self, user_id: int, external_id: str, now: int) -> None:
        await self.driver.execute(
            "UPDATE users SET external_id = $3, external_id_key = $4, updated_at = $5"
            " WHERE account_id = $1 AND id = $2",
            self.account_id, user_id, external_id, external_id.lower(), now,
        )

    async def user_for_external_id(self, external_id: str) -> int | None:
        row = await self.driver.fetchrow(
            "SELECT id FROM users WHERE account_id = $1 AND external_id_key = $2",
            self.account_id, external_id.lower(),
        )
        return row[0] if row else None

    async def users_for_identities(self, keys: Sequence[IdentityKey]) -> dict[IdentityKey, int]:
        found: dict[IdentityKey, int] = {}
        for key in keys:
            row = await self.driver.fetchrow(
                "SELECT user_id FROM user_identities WHERE account_id = $1"
                " AND match_type = $2 AND match_value = $3",
                self.account_id, key.type, key.value,
            )
            if row:
                found[key] = row[0]
        return found

    async def user_identities(self, user_id: int) -> list[Identity]:
        rows = await self.driver.fetch(
            f"SELECT {_IDENTITY_COLUMNS} FROM user_identities WHERE account_id = $1 AND user_id = $2"
            " ORDER BY id",
            self.account_id, user_id,
        )
        return [_identity_from_row(row) for row in rows]

    async def insert_identity(
        self, user_id: int, identity_type: str, value: str, key: IdentityKey, *, primary: bool, now: int
    ) -> Identity:
        identity_id = await self._insert_with_new_id(
            "user_identities",
            "account_id, id, user_id, type, value, match_type, match_value, is_primary,"
            " created_at, updated_at",
            "$1, {id}, $2, $3, $4, $5, $6, $7, $8, $8",
            self.account_id, user_id, identity_type, value, key.type, key.value, primary, now,
        )
        return Identity(
            id=identity_id, user_id=user_id, type=identity_type, value=value, primary=primary,
            created_at=now, updated_at=now,
        )

    async def user_by_email(self, email: str) -> User | None:
        row = await self.driver.fetchrow(
            "SELECT u.id, u.name, u.email, u.role, u.people_access, u.external_id, u.active,"
            " u.suspended, u.created_at, u.updated_at"
            " FROM user_identities i JOIN users u ON u.account_id = i.account_id AND u.id = i.user_id"
            " WHERE i.account_id = $1 AND i.match_type = 'email' AND i.match_value = $2",
            self.account_id, email.strip().lower(),
        )
        return _user_from_row(row) if row else None

    async def password_hash(self, user_id: int) -> str | None:
        row = await self.driver.fetchrow(
            "SELECT password_hash FROM users WHERE account_id = $1 AND id = $2",
            self.account_id, user_id,
        )
        return row[0] if row else None

    async def set_user_state(self, user_id: int, *, active: bool, suspended: bool, now: int) -> bool:
        changed = await self.driver.execute(
            "UPDATE users SET active = $3, suspended = $4, updated_at = $5"
            " WHERE account_id = $1 AND id = $2",
            self.account_id, user_id, active, suspended, now,
        )
        if changed:
            await self._credentials_changed()
        return changed > 0

    # Accounts and credentials. The accounts table is the one table not keyed by account.

    async def account_by_subdomain(self, subdomain: str) -> Account | None:
        row = await self.driver.fetchrow(
            "SELECT id, subdomain, password_access FROM accounts WHERE subdomain = $1", subdomain
        )
        return Account(row[0], row[1], bool(row[2])) if row else None

    async def account(self) -> Account | None:
        """This transaction's own account."""
        row = await self.driver.fetchrow(
            "SELECT id, subdomain, password_access FROM accounts WHERE id = $1", self.account_id
        )
        return Account(row[0], row[1], bool(row[2])) if row else None

    async def accounts(self) -> list[Account]:
        rows = await self.driver.fetch("SELECT id, subdomain, password_access FROM accounts ORDER BY id")
        return [Account(row[0], row[1], bool(row[2])) for row in rows]

    async def insert_account(self, subdomain: str, now: int, *, password_access: bool = False) -> Account:
        row = await self.driver.fetchrow("SELECT COALESCE(MAX(id), 0) + 1 FROM accounts")
        account_id = int(row[0])
        await self.driver.execute(
            "INSERT INTO accounts (id, subdomain, password_access, created_at) VALUES ($1, $2, $3, $4)",
            account_id, subdomain, password_access, now,
        )
        return Account(account_id, subdomain, password_access)

    async def set_password_access(self, enabled: bool) -> None:
        await self.driver.execute(
            "UPDATE accounts SET password_access = $2,"
            " credentials_version = credentials_version + 1 WHERE id = $1",
            self.account_id, enabled,
        )

    async def credentials_version(self) -> int:
        row = await self.driver.fetchrow_kept(
            "SELECT credentials_version FROM accounts WHERE id = $1", self.account_id
        )
        return int(row[0]) if row else -1

    async def _credentials_changed(self) -> None:
        await self.driver.execute(
            "UPDATE accounts SET credentials_version = credentials_version + 1 WHERE id = $1",
            self.account_id,
        )

    async def insert_token(self, user_id: int, kind: str, token_hash: str, scopes: str, now: int) -> int:
        return await self._insert_with_new_id(
            "api_tokens", "account_id, id, user_id, kind, token_hash, scopes, created_at",
            "$1, {id}, $2, $3, $4, $5, $6",
            self.account_id, user_id, kind, token_hash, scopes, now,
        )

    async def token_holder(self, token_hash: str, email: str | None) -> TokenHolder | None:
        row = await self.driver.fetchrow(
            "SELECT t.id, t.user_id, t.kind, t.scopes, t.revoked_at, t.token_hash,"
            " a.subdomain, a.password_access, a.credentials_version,"
            " u.id, u.name, u.email, u.role, u.people_access, u.external_id, u.active,"
            " u.suspended, u.created_at, u.updated_at,"
            " (SELECT i.user_id FROM user_identities i WHERE i.account_id = t.account_id"
            "  AND i.match_type = 'email' AND i.match_value = $3 LIMIT 1)"
            " FROM api_tokens t JOIN accounts a ON a.id = t.account_id"
            " JOIN users u ON u.account_id = t.account_id AND u.id = t.user_id"
            " WHERE t.account_id = $1 AND t.token_hash = $2",
            self.account_id, token_hash, email.strip().lower() if email is not None else None,
        )
        if row is None:
            return None
        return TokenHolder(
            account=Account(self.account_id, row[6], bool(row[7])),
            token=TokenRecord(row[0], row[1], row[2], row[3], row[4], row[5]),
            user=_user_from_row(row[9:19]),
            email_owner=row[19],
            credentials_version=int(row[8]),
        )

    async def token_account(self, token_id: int) -> int | None:
        """The account a token belongs to; token ids are unique across accounts."""
        row = await self.driver.fetchrow("SELECT account_id FROM api_tokens WHERE id = $1", token_id)
        return int(row[0]) if row else None

    async def revoke_token(self, token_id: int, now: int) -> bool:
        changed = await self.driver.execute(
            "UPDATE api_tokens SET revoked_at = $3 WHERE account_id = $1 AND id = $2"
            " AND revoked_at IS NULL",
            self.account_id, token_id, now,
        )
        if changed:
            await self._credentials_changed()
        return changed > 0
