"""The Users API subset (RULES §8) and the accounts and credentials behind authentication."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from ..domain import access
from ..domain import users as rules
from ..domain.errors import DuplicateValue, InvalidUser, UserNotFound
from ..domain.users import Identity, User, identity_key
from ..store.base import Account, Store, Transaction
from .clock import now_ms

DEFAULT_ACCOUNT_ID = 1


@dataclass(frozen=True, slots=True)
class NewUser:
    name: str
    role: str = "end-user"
    email: str | None = None
    external_id: str | None = None
    identities: tuple[tuple[str, str], ...] = ()
    people_access: str = "full"
    password: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedUser:
    user: User
    identities: list[Identity]


def hash_secret(secret: str) -> str:
    """Tokens are long random strings, so one SHA-256 is a sound one-way digest for them."""
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, salt_hex, digest_hex = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    return hmac.compare_digest(hash_password(password, salt=salt), stored)


async def _add_identity(tx: Transaction, user_id: int, identity_type: str, value: str,
                        *, primary: bool, now: int) -> Identity:
    key = identity_key(identity_type, value)
    owners = await tx.users_for_identities([key])
    if key in owners:
        raise DuplicateValue(f"The {identity_type} identity '{value}' is already in use.")
    return await tx.insert_identity(user_id, identity_type, value, key, primary=primary, now=now)


async def create_user(store: Store, account_id: int, new: NewUser) -> CreatedUser:
    name = rules.check_name(new.name)
    role = rules.check_role(new.role)
    people_access = rules.check_people_access(new.people_access)
    identities = [rules.check_identity(t, v) for t, v in new.identities]
    email = None
    if new.email is not None:
        _, email = rules.check_identity("email", new.email)
    if new.external_id is not None:
        rules.check_external_id(new.external_id)
    password_hash = hash_password(new.password) if new.password else None

    async def unit(tx: Transaction) -> CreatedUser:
        now = now_ms()
        if new.external_id is not None and await tx.user_for_external_id(new.external_id) is not None:
            raise DuplicateValue(f"The external_id '{new.external_id}' is already in use.")
        user = await tx.insert_user(
            name=name, email=email, role=role, people_access=people_access,
            external_id=new.external_id, password_hash=password_hash, now=now,
        )
        created: list[Identity] = []
        if email is not None:
            created.append(await _add_identity(tx, user.id, "email", email, primary=True, now=now))
        for identity_type, value in identities:
            if identity_type == "email" and value == email:
                continue
            primary = not any(i.type == identity_type for i in created)
            created.append(
                await _add_identity(tx, user.id, identity_type, value, primary=primary, now=now)
            )
        return CreatedUser(user, created)

    return await store.write(account_id, unit)


async def get_user(store: Store, account_id: int, user_id: int) -> User:
    async def unit(tx: Transaction) -> User | None:
        return await tx.get_user(user_id)

    user = await store.read_stale(account_id, unit)
    if user is None:
        raise UserNotFound(f"No user has the id {user_id}.")
    return user


async def list_identities(store: Store, account_id: int, user_id: int) -> list[Identity]:
    async def unit(tx: Transaction) -> list[Identity] | None:
        if await tx.get_user(user_id) is None:
            return None
        return await tx.user_identities(user_id)

    found = await store.read_stale(account_id, unit)
    if found is None:
        raise UserNotFound(f"No user has the id {user_id}.")
    return found


async def add_identity(
    store: Store, account_id: int, user_id: int, identity_type: object, value: object
) -> Identity:
    checked_type, checked_value = rules.check_identity(identity_type, value)

    async def unit(tx: Transaction) -> Identity:
        if await tx.get_user(user_id) is None:
            raise UserNotFound(f"No user has the id {user_id}.")
        existing = await tx.user_identities(user_id)
        primary = not any(i.type == checked_type for i in existing)
        return await _add_identity(
            tx, user_id, checked_type, checked_value, primary=primary, now=now_ms()
        )

    return await store.write(account_id, unit)


# Accounts and credentials


async def resolve_account(store: Store, subdomain: str | None) -> Account | None:
    """The account a subdomain names (the default account for None); None when unknown."""
    async def unit(tx: Transaction) -> Account | None:
        if subdomain is None:
            return await tx.account()
        return await tx.account_by_subdomain(subdomain)

    return await store.read(DEFAULT_ACCOUNT_ID, unit)


async def create_account(store: Store, subdomain: str, *, password_access: bool = False) -> Account:
    subdomain = access.check_subdomain(subdomain)

    async def unit(tx: Transaction) -> Account:
        if await tx.account_by_subdomain(subdomain) is not None:
            raise DuplicateValue(f"An account with the subdomain '{subdomain}' exists.")
        return await tx.insert_account(subdomain, now_ms(), password_access=password_access)

    return await store.write(DEFAULT_ACCOUNT_ID, unit)


async def set_password_access(store: Store, account_id: int, enabled: bool) -> Account:
    async def unit(tx: Transaction) -> Account:
        await tx.set_password_access(enabled)
        account = await tx.account()
        assert account is not None, "accounts are never deleted"
        return account

    return await store.write(account_id, unit)


async def list_accounts(store: Store) -> list[Account]:
    async def unit(tx: Transaction) -> list[Account]:
        return await tx.accounts()

    return await store.read(DEFAULT_ACCOUNT_ID, unit)


async def set_user_state(
    store: Store, account_id: int, email: str, *, active: bool | None = None,
    suspended: bool | None = None,
) -> User:
    """Suspends, restores or deletes (active=false) the user with this email."""
    async def unit(tx: Transaction) -> User:
        user = await tx.user_by_email(email)
        if user is None:
            raise UserNotFound(f"No user has the email '{email}'.")
        user.active = user.active if active is None else active
        user.suspended = user.suspended if suspended is None else suspended
        user.updated_at = now_ms()
        await tx.set_user_state(
            user.id, active=user.active, suspended=user.suspended, now=user.updated_at
        )
        return user

    return await store.write(account_id, unit)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    id: int
    user: User
    token: str
    kind: str
    scopes: tuple[str, ...]


async def create_token(
    store: Store, account_id: int, email: str, *, kind: str = "api", scopes: str = ""
) -> IssuedToken:
    """A new API or OAuth token for an active user; only its SHA-256 digest is stored."""
    if kind not in ("api", "oauth"):
        raise ValueError(f"unknown token kind {kind!r}")
    checked = access.check_scopes(scopes.split()) if kind == "oauth" else ()
    token = secrets.token_urlsafe(30)

    async def unit(tx: Transaction) -> IssuedToken:
        user = await tx.user_by_email(email)
        if user is None:
            raise UserNotFound(f"No user has the email '{email}'.")
        if not user.active or user.suspended:
            state = "deleted" if not user.active else "suspended"
            raise InvalidUser(f"The user '{email}' is {state}: it cannot have new tokens.")
        token_id = await tx.insert_token(user.id, kind, hash_secret(token), " ".join(checked),
                                         now_ms())
        return IssuedToken(token_id, user, token, kind, checked)

    return await store.write(account_id, unit)


async def revoke_token(store: Store, account_id: int | None, token_id: int) -> bool:
    """Revokes a token of this account, or of whichever account holds it when None."""
    if account_id is None:
        async def owner(tx: Transaction) -> int | None:
            return await tx.token_account(token_id)

        account_id = await store.read(DEFAULT_ACCOUNT_ID, owner)
        if account_id is None:
            return False

    async def unit(tx: Transaction) -> bool:
        return await tx.revoke_token(token_id, now_ms())

    return await store.write(account_id, unit)


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    kind: str  # "api", "oauth" or "password"
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class TokenCredential:
    """`Basic {email}/token:{token}` (kind "api", email given) or `Bearer {token}` ("oauth")."""

    kind: str
    token: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class PasswordCredential:
    email: str
    password: str


Credential = TokenCredential | PasswordCredential


@dataclass(frozen=True, slots=True)
class Authentication:
    account: Account | None  # known once the credentials are valid
    principal: Principal | None  # None: the credentials are not valid for this account
    reason: str = "The credentials are not valid."


def _can_sign_in(user: User | None) -> bool:
    return user is not None and user.active and not user.suspended


@functools.cache
def _decoy_password_hash() -> str:
    """Checked against when a user is unknown, so that timing does not reveal who exists."""
    return hash_password(secrets.token_urlsafe(16))


class SignIns:
    """Successful token sign-ins of one process, each with the account's credentials version
    read in the same statement as the token.

    While that version has not moved, nothing that could end the sign-in has committed, so a
    request with the same credential needs one read of one row instead of the join of token,
    user and account (store.base.Transaction.credentials_version). Failures are never kept:
    a token created a moment ago signs in on its first request.
    """

    SIZE = 4096

    def __init__(self) -> None:
        self._kept: dict[tuple[int, TokenCredential], tuple[int, Authentication]] = {}

    def get(self, account_id: int, credential: TokenCredential) -> tuple[int, Authentication] | None:
        return self._kept.get((account_id, credential))

    def keep(self, account_id: int, credential: TokenCredential, version: int,
             found: Authentication) -> None:
        if len(self._kept) >= self.SIZE:  # bounded: credentials come from clients
            self._kept.clear()
        self._kept[(account_id, credential)] = (version, found)


async def _credentials_version(tx: Transaction) -> int:
    return await tx.credentials_version()


async def authenticate(
    store: Store, account_id: int, credential: Credential, signins: SignIns | None = None
) -> Authentication:
    """Checks a credential against one account; a credential of another account fails."""
    if isinstance(credential, PasswordCredential):
        return await _authenticate_password(store, account_id, credential)
    if signins is not None:
        kept = signins.get(account_id, credential)
        if kept is not None:
            version, found = kept
            if await store.read(account_id, _credentials_version, single_statement=True) == version:
                return found
    digest = hash_secret(credential.token)

    async def unit(tx: Transaction) -> tuple[int, Authentication]:
        found = await tx.token_holder(digest, credential.email)
        if (found is None or not hmac.compare_digest(found.token.token_hash, digest)
                or found.token.revoked_at is not None or found.token.kind != credential.kind
                or not _can_sign_in(found.user)):
            return -1, Authentication(None, None)
        if credential.email is not None and found.email_owner != found.user.id:
            return -1, Authentication(None, None)
        token = found.token
        return found.credentials_version, Authentication(
            found.account, Principal(found.user, token.kind, frozenset(token.scopes.split()))
        )

    version, found = await store.read(account_id, unit, single_statement=True)
    if signins is not None and found.principal is not None:
        signins.keep(account_id, credential, version, found)
    return found


async def _authenticate_password(
    store: Store, account_id: int, credential: PasswordCredential
) -> Authentication:
    async def unit(tx: Transaction) -> tuple[Account, User | None, str | None]:
        account = await tx.account()
        assert account is not None, "requests resolve to existing accounts"
        if not account.password_access:
            return account, None, None
        user = await tx.user_by_email(credential.email)
        stored = await tx.password_hash(user.id) if user is not None else None
        return account, user, stored

    account, user, stored = await store.read(account_id, unit)
    if not account.password_access:
        return Authentication(account, None, "Password access is not enabled for this account.")
    # scrypt takes tens of milliseconds: off the event loop, and spent whether or not the
    # user exists and has a password.
    matches = await asyncio.to_thread(
        verify_password, credential.password, stored or _decoy_password_hash()
    )
    if not (matches and stored and _can_sign_in(user)):
        return Authentication(account, None)
    assert user is not None
    return Authentication(account, Principal(user, "password", frozenset()))
