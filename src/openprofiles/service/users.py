"""The Users API subset (RULES §8) and the accounts and credentials behind authentication."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from ..domain import users as rules
from ..domain.errors import DuplicateValue, UserNotFound
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

    user = await store.read(account_id, unit)
    if user is None:
        raise UserNotFound(f"No user has the id {user_id}.")
    return user


async def list_identities(store: Store, account_id: int, user_id: int) -> list[Identity]:
    async def unit(tx: Transaction) -> list[Identity] | None:
        if await tx.get_user(user_id) is None:
            return None
        return await tx.user_identities(user_id)

    found = await store.read(account_id, unit)
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
    """The account a request's host names; None when the subdomain is unknown."""
    if subdomain is None:
        return Account(DEFAULT_ACCOUNT_ID, None, False)

    async def unit(tx: Transaction) -> Account | None:
        return await tx.account_by_subdomain(subdomain)

    return await store.read(DEFAULT_ACCOUNT_ID, unit)


async def create_account(store: Store, subdomain: str) -> Account:
    async def unit(tx: Transaction) -> Account:
        if await tx.account_by_subdomain(subdomain) is not None:
            raise DuplicateValue(f"An account with the subdomain '{subdomain}' exists.")
        return await tx.insert_account(subdomain, now_ms())

    return await store.write(DEFAULT_ACCOUNT_ID, unit)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    id: int
    user: User
    token: str


async def create_token(
    store: Store, account_id: int, email: str, *, kind: str = "api", scopes: str = ""
) -> IssuedToken:
    token = secrets.token_urlsafe(30)

    async def unit(tx: Transaction) -> IssuedToken:
        user = await tx.user_by_email(email)
        if user is None:
            raise UserNotFound(f"No user has the email '{email}'.")
        token_id = await tx.insert_token(user.id, kind, hash_secret(token), scopes, now_ms())
        return IssuedToken(token_id, user, token)

    return await store.write(account_id, unit)


async def revoke_token(store: Store, account_id: int, token_id: int) -> bool:
    async def unit(tx: Transaction) -> bool:
        return await tx.revoke_token(token_id, now_ms())

    return await store.write(account_id, unit)


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    kind: str  # "api", "oauth" or "password"
    scopes: frozenset[str]


async def authenticate_token(
    store: Store, account_id: int, email: str | None, token: str, *, kind: str = "api"
) -> Principal | None:
    """The active user an API token (with its owner's email) or an OAuth token belongs to."""
    digest = hash_secret(token)

    async def unit(tx: Transaction) -> Principal | None:
        record = await tx.token_by_hash(digest)
        if record is None or record.revoked_at is not None or record.kind != kind:
            return None
        user = await tx.get_user(record.user_id)
        if user is None or not user.active or user.suspended:
            return None
        if email is not None:
            owner = await tx.user_by_email(email)
            if owner is None or owner.id != user.id:
                return None
        return Principal(user, kind, frozenset(record.scopes.split()))

    return await store.read(account_id, unit)
