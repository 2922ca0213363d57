"""The narrow interface between the service layer and a database engine.

A unit of work is an async function of one `Transaction`. The store runs it in one database
transaction and commits it, or rolls everything back when it raises. When a concurrent
transaction wins a race (`RetryableConflict`), the store runs the unit again from the start,
so a unit must do nothing but database work through its transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..domain.events import Event, EventQuery
from ..domain.identifiers import Identifier
from ..domain.profile import Profile
from ..domain.users import Identity, IdentityKey, User

T = TypeVar("T")
Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Together(Generic[Item, T]):
    """How a write may run in one go with others of its kind that arrive with it: `run` takes
    the items of such writes (same `run`, same account) and returns, for each, its result, or
    None for a write it leaves to its own unit, which then runs after the group.

    The writes of one group are concurrent: none has been answered when another arrives, so
    any order among them is a valid one. What `run` settles must be what its writes would
    have done run one after another in some order before the group's other writes; it
    writes nothing for the writes it leaves. An engine that writes each request in its own
    transaction ignores this and runs the unit."""

    run: Callable[[Any, list[Item]], Awaitable[list[T | None]]]
    item: Item


@dataclass(slots=True)
class TokenRecord:
    id: int
    user_id: int
    kind: str
    scopes: str
    revoked_at: int | None
    token_hash: str


@dataclass(slots=True)
class Account:
    id: int
    subdomain: str | None
    password_access: bool


@dataclass(slots=True)
class TokenHolder:
    """A token with its account and user, the user (if any) that `email` names, and the
    account's credentials version read with them."""

    account: Account
    token: TokenRecord
    user: User
    email_owner: int | None
    credentials_version: int


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """A profile as stored, to answer a read with: its identifiers and attributes stay the
    JSON text they were written as, which the answer carries as it is rather than decoding
    it into the domain's objects and encoding them back."""

    id: str
    user_id: int
    source: str
    type: str
    name: str
    identifiers_json: str
    attributes_json: str
    created_at: int
    updated_at: int


class Transaction(Protocol):
    account_id: int

    # Profiles
    async def get_profile(self, profile_id: str, *, for_update: bool = False) -> Profile | None: ...
    async def find_profile(
        self, source: str, profile_type: str, identifier: Identifier, *, for_update: bool = False
    ) -> Profile | None: ...
    async def get_stored_profile(self, profile_id: str) -> StoredProfile | None: ...
    async def find_stored_profile(
        self, source: str, profile_type: str, identifier: Identifier
    ) -> StoredProfile | None: ...
    async def profile_ids_holding(
        self, source: str, profile_type: str, identifiers: Sequence[Identifier]
    ) -> set[str]: ...
    async def user_profiles(self, user_id: int) -> list[Profile]: ...
    async def count_user_profiles(self, user_id: int) -> int: ...
    async def insert_profile(self, profile: Profile, attributes_json: bytes) -> None: ...
    async def update_profile(
        self, profile: Profile, attributes_json: bytes, previous: Sequence[Identifier]
    ) -> None: ...
    async def delete_profile(self, profile: Profile) -> None: ...
    async def has_kind(self, source: str, profile_type: str) -> bool: ...
    async def kind_counts(self, source: str) -> tuple[bool, int]:
        """Whether `source` is known, and how many (source, type) kinds the account has."""
        ...
    async def count_sources(self) -> int: ...
    async def add_kind(self, source: str, profile_type: str) -> None: ...

    # Events
    async def insert_event(self, event: Event, properties_json: bytes) -> None: ...
    async def user_events(self, user_id: int, query: EventQuery) -> list[Event]:
        """Up to `query.size + 1` events, read newest first, or oldest first after
        `query.before`."""
        ...
    async def profile_events(self, profile_id: str, query: EventQuery) -> list[Event]: ...
    async def has_event_kind(self, source: str, event_type: str) -> bool: ...
    async def event_kind_counts(self, source: str) -> tuple[bool, int, int]:
        """Whether `source` is known, the number of event sources, and of (source, type) pairs."""
        ...
    async def add_event_kind(self, source: str, event_type: str) -> None: ...

    # Users and identities
    async def get_user(self, user_id: int) -> User | None: ...
    async def insert_user(
        self, *, name: str, email: str | None, role: str, people_access: str,
        external_id: str | None, password_hash: str | None, now: int,
    ) -> User: ...
    async def set_external_id(self, user_id: int, external_id: str, now: int) -> None: ...
    async def user_for_external_id(self, external_id: str) -> int | None: ...
    async def users_for_identities(self, keys: Sequence[IdentityKey]) -> dict[IdentityKey, int]: ...
    async def user_identities(self, user_id: int) -> list[Identity]: ...
    async def insert_identity(
        self, user_id: int, identity_type: str, value: str, key: IdentityKey, *, primary: bool, now: int
    ) -> Identity: ...
    async def user_by_email(self, email: str) -> User | None: ...
    async def password_hash(self, user_id: int) -> str | None: ...
    async def set_user_state(
        self, user_id: int, *, active: bool, suspended: bool, now: int
    ) -> bool: ...

    # Accounts and credentials
    async def account_by_subdomain(self, subdomain: str) -> Account | None: ...
    async def account(self) -> Account | None: ...
    async def accounts(self) -> list[Account]: ...
    async def insert_account(
        self, subdomain: str, now: int, *, password_access: bool = False
    ) -> Account: ...
    async def set_password_access(self, enabled: bool) -> None: ...
    async def insert_token(
        self, user_id: int, kind: str, token_hash: str, scopes: str, now: int
    ) -> int: ...
    async def token_holder(self, token_hash: str, email: str | None) -> TokenHolder | None:
        """Everything signing in with a token needs, in one query: it runs on every request."""
        ...
    async def credentials_version(self) -> int:
        """Raised in the transaction of every change that can end a sign-in: revoking a token,
        a user's state, the account's password access. -1 for an unknown account."""
        ...
    async def token_account(self, token_id: int) -> int | None: ...
    async def revoke_token(self, token_id: int, now: int) -> bool: ...


class Store(Protocol):
    engine: str

    async def read(
        self, account_id: int, unit: Callable[[Transaction], Awaitable[T]], *,
        single_statement: bool = False,
    ) -> T:
        """Runs `unit` on one consistent snapshot. A unit that runs a single statement says so:
        one statement is atomic by itself, and skipping the explicit transaction saves its
        round trips on the hottest paths (signing in, reading one profile)."""
        ...
    async def read_stale(
        self, account_id: int, unit: Callable[[Transaction], Awaitable[T]], *,
        single_statement: bool = False,
    ) -> T:
        """A read that may lag the latest commits by a replica's delay: for the GET paths only,
        never for credentials nor for a read that decides a write."""
        ...
    async def write(
        self, account_id: int, unit: Callable[[Transaction], Awaitable[T]], *,
        together: Together[Any, T] | None = None,
    ) -> T: ...
    async def close(self) -> None: ...
