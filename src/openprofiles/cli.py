"""The command line: serve, migrate, users, tokens."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from .config import DEFAULT_DATABASE_URL, Settings
from .domain.errors import ProfilesError
from .service import users as user_service
from .store import open_store
from .store.base import Store
from .store.migrate import upgrade
from .store.urls import DatabaseUrl, InvalidDatabaseUrl

T = TypeVar("T")

database_option = click.option(
    "--database", "database_url", envvar="OPENPROFILES_DATABASE_URL",
    default=DEFAULT_DATABASE_URL, show_default=True, help="Database URL (sqlite:/// or postgresql://).",
)


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _parse_url(raw: str) -> DatabaseUrl:
    try:
        return DatabaseUrl.parse(raw)
    except InvalidDatabaseUrl as error:
        _fail(str(error))
        raise


def _migrate(url: DatabaseUrl) -> None:
    try:
        upgrade(url)
    except Exception as error:  # a one-line message, not a traceback
        _fail(f"cannot migrate {url.engine} database: {str(error).splitlines()[0]}")


def _with_store(raw_url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    url = _parse_url(raw_url)
    _migrate(url)

    async def run() -> T:
        store = await open_store(url, pool_size=2)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except ProfilesError as error:
        _fail(error.detail)
        raise


def _account_id(store: Store, subdomain: str | None) -> Awaitable[int]:
    async def resolve() -> int:
        if subdomain is None:
            return user_service.DEFAULT_ACCOUNT_ID
        account = await user_service.resolve_account(store, subdomain)
        if account is None:
            _fail(f"no account has the subdomain '{subdomain}'")
        assert account is not None
        return account.id

    return resolve()


@click.group()
@click.version_option(package_name="openprofiles")
def main() -> None:
    """openprofiles: a self-hostable server for the Sunshine Profiles API."""


@main.command()
@database_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Server processes sharing the port.")
@click.option("--pool-size", default=None, type=click.IntRange(1, 1000),
              help="Database connections per worker (PostgreSQL).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(database_url: str, host: str, port: int, workers: int, pool_size: int | None,
          log_level: str) -> None:
    """Run the server (applies pending migrations first)."""
    import uvicorn

    url = _parse_url(database_url)
    _migrate(url)
    os.environ["OPENPROFILES_DATABASE_URL"] = database_url
    if pool_size is not None:
        os.environ["OPENPROFILES_POOL_SIZE"] = str(pool_size)
    uvicorn.run(
        "openprofiles.api.app:create_app_from_env", factory=True, host=host, port=port,
        workers=workers, log_level=log_level, access_log=False, server_header=False,
        limit_concurrency=None, timeout_graceful_shutdown=5,
    )


@main.command()
@database_option
def migrate(database_url: str) -> None:
    """Apply pending schema migrations."""
    url = _parse_url(database_url)
    _migrate(url)
    click.echo(f"{url.engine} database is at the latest schema")


@main.group()
def users() -> None:
    """Manage users."""


def _user_json(user: Any) -> str:
    return json.dumps({
        "id": user.id, "name": user.name, "email": user.email, "role": user.role,
        "people_access": user.people_access, "external_id": user.external_id,
        "active": user.active,
    })


@users.command("create")
@database_option
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(["admin", "agent", "end-user"]))
@click.option("--people-access", default="full", show_default=True,
              type=click.Choice(["full", "readonly"]))
@click.option("--password", default=None, help="Allow Basic {email}:{password} where enabled.")
@click.option("--external-id", default=None)
@click.option("--account", "subdomain", default=None, help="The account's subdomain.")
def users_create(database_url: str, email: str, name: str, role: str, people_access: str,
                 password: str | None, external_id: str | None, subdomain: str | None) -> None:
    """Create a user; prints it as JSON."""
    async def work(store: Store) -> user_service.CreatedUser:
        account_id = await _account_id(store, subdomain)
        return await user_service.create_user(store, account_id, user_service.NewUser(
            name=name, role=role, email=email, external_id=external_id,
            people_access=people_access, password=password,
        ))

    created = _with_store(database_url, work)
    click.echo(_user_json(created.user))


@main.group()
def tokens() -> None:
    """Manage API tokens."""


@tokens.command("create")
@database_option
@click.option("--email", required=True, help="The user the token acts as.")
@click.option("--oauth", is_flag=True, help="Issue an OAuth bearer token instead of an API token.")
@click.option("--scopes", default="read write", show_default=True,
              help="Space-separated OAuth scopes: read write users:read users:write.")
@click.option("--account", "subdomain", default=None, help="The account's subdomain.")
def tokens_create(database_url: str, email: str, oauth: bool, scopes: str,
                  subdomain: str | None) -> None:
    """Create a token; prints its id, then the token alone on the last line."""
    kind = "oauth" if oauth else "api"
    scope_list = scopes.split() if oauth else []
    allowed = {"read", "write", "users:read", "users:write"}
    unknown = [s for s in scope_list if s not in allowed]
    if unknown:
        _fail(f"unknown scope(s): {' '.join(unknown)}; use {' '.join(sorted(allowed))}")

    async def work(store: Store) -> user_service.IssuedToken:
        account_id = await _account_id(store, subdomain)
        return await user_service.create_token(
            store, account_id, email, kind=kind, scopes=" ".join(scope_list)
        )

    issued = _with_store(database_url, work)
    click.echo(f"token id {issued.id} for user {issued.user.id} ({kind})")
    click.echo(issued.token)


@tokens.command("revoke")
@database_option
@click.argument("token_id", type=int)
@click.option("--account", "subdomain", default=None, help="The account's subdomain.")
def tokens_revoke(database_url: str, token_id: int, subdomain: str | None) -> None:
    """Revoke a token by its id."""
    async def work(store: Store) -> bool:
        return await user_service.revoke_token(store, await _account_id(store, subdomain), token_id)

    if not _with_store(database_url, work):
        _fail(f"no active token has the id {token_id}")
    click.echo(f"token {token_id} revoked")


if __name__ == "__main__":
    sys.exit(main())
