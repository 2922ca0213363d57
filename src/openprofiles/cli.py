"""The command line: serve, migrate, accounts, users, tokens, import and export."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from .config import DEFAULT_DATABASE_URL, InvalidSetting, Settings
from .domain import access
from .domain.errors import ProfilesError
from .service import users as user_service
from .store import open_store
from .store.base import Account, Store
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


def _check(rule: Callable[..., T], *args: Any) -> T:
    """A domain rule run before the database is opened, so bad arguments fail fast."""
    try:
        return rule(*args)
    except ProfilesError as error:
        _fail(error.detail)
        raise


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


# Longer than the idle timeout of the proxies that usually stand in front (60 s for AWS load
# balancers and nginx's upstream connections): a server that closes an idle connection first
# races the proxy's next request on it, which the client then sees as a dropped connection.
KEEP_ALIVE_SECONDS = 75


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
@click.option("--read-database", "read_database_url", envvar="OPENPROFILES_READ_DATABASE_URL",
              default=None, help="A read replica (postgresql://) for the GET paths that "
                                 "tolerate a replica's lag; see docs/scaling.md.")
@click.option("--log-level", default="warning", show_default=True, envvar="OPENPROFILES_LOG_LEVEL",
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--keep-alive", "keep_alive", default=KEEP_ALIVE_SECONDS, show_default=True,
              envvar="OPENPROFILES_KEEP_ALIVE", type=click.IntRange(1, 3600),
              help="Seconds an idle client connection stays open.")
def serve(database_url: str, host: str, port: int, workers: int, pool_size: int | None,
          read_database_url: str | None, log_level: str, keep_alive: int) -> None:
    """Run the server (applies pending migrations first).

    Rate limits: OPENPROFILES_RATE_LIMIT=N requests a minute per account (off by default);
    OPENPROFILES_REDIS_URL shares the counts between workers and hosts.
    """
    import uvicorn

    try:
        Settings.from_env()  # each worker reads them again; a bad one fails here, in one line
    except InvalidSetting as error:
        _fail(str(error))
    url = _parse_url(database_url)
    if read_database_url:
        if _parse_url(read_database_url).engine != "postgresql" or url.engine != "postgresql":
            _fail("--read-database needs PostgreSQL for both the database and its replica")
        os.environ["OPENPROFILES_READ_DATABASE_URL"] = read_database_url
    _migrate(url)
    os.environ["OPENPROFILES_DATABASE_URL"] = database_url
    if pool_size is not None:
        os.environ["OPENPROFILES_POOL_SIZE"] = str(pool_size)
    uvicorn.run(
        "openprofiles.api.app:create_app_from_env", factory=True, host=host, port=port,
        workers=workers, log_level=log_level, access_log=False, server_header=False,
        limit_concurrency=None, timeout_graceful_shutdown=5, timeout_keep_alive=keep_alive,
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
        "active": user.active, "suspended": user.suspended,
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


def _set_user_state(database_url: str, email: str, subdomain: str | None, **state: bool) -> None:
    async def work(store: Store) -> Any:
        account_id = await _account_id(store, subdomain)
        return await user_service.set_user_state(store, account_id, email, **state)

    click.echo(_user_json(_with_store(database_url, work)))


@users.command("suspend")
@database_option
@click.option("--email", required=True)
@click.option("--account", "subdomain", default=None, help="The account's subdomain.")
def users_suspend(database_url: str, email: str, subdomain: str | None) -> None:
    """Suspend a user: its credentials stop working at once."""
    _set_user_state(database_url, email, subdomain, suspended=True)


@users.command("unsuspend")
@database_option
@click.option("--email", required=True)
@click.option("--account", "subdomain", default=None, help="The account's subdomain.")
def users_unsuspend(database_url: str, email: str, subdomain: str | None) -> None:
    """Lift a user's suspension."""
    _set_user_state(database_url, email, subdomain, suspended=False)


@users.command("delete")
@database_option
@click.option("--email", required=True)
@click.option("--account", "subdomain", default=None, help="The account's subdomain.")
def users_delete(database_url: str, email: str, subdomain: str | None) -> None:
    """Delete a user (active=false): it can no longer authenticate; its records stay."""
    _set_user_state(database_url, email, subdomain, active=False)


@main.group()
def tokens() -> None:
    """Manage API and OAuth tokens."""


@tokens.command("create")
@database_option
@click.option("--email", required=True, help="The user the token acts as.")
@click.option("--oauth", is_flag=True, help="Issue an OAuth bearer token instead of an API token.")
@click.option("--scopes", default=None,
              help="Space-separated OAuth scopes: read write users:read users:write."
                   "  [default: read write]")
@click.option("--account", "subdomain", default=None, help="The account's subdomain.")
def tokens_create(database_url: str, email: str, oauth: bool, scopes: str | None,
                  subdomain: str | None) -> None:
    """Create a token; prints its id, then the token alone on the last line.

    Only a digest of the token is stored: it cannot be shown again.
    """
    if scopes is not None and not oauth:
        _fail("--scopes applies to OAuth tokens only; add --oauth")
    kind = "oauth" if oauth else "api"
    scopes = scopes if scopes is not None else "read write"
    if oauth:
        _check(access.check_scopes, scopes.split())

    async def work(store: Store) -> user_service.IssuedToken:
        account_id = await _account_id(store, subdomain)
        return await user_service.create_token(store, account_id, email, kind=kind, scopes=scopes)

    issued = _with_store(database_url, work)
    click.echo(f"token id {issued.id} for user {issued.user.id} ({kind})")
    click.echo(issued.token)


@tokens.command("revoke")
@database_option
@click.argument("token_id", type=int)
@click.option("--account", "subdomain", default=None,
              help="Only revoke the token if it belongs to this account (by subdomain).")
def tokens_revoke(database_url: str, token_id: int, subdomain: str | None) -> None:
    """Revoke a token by its id; it stops working at once.

    Token ids are unique across accounts, so without --account the token is found in
    whichever account holds it.
    """
    async def work(store: Store) -> bool:
        account_id = await _account_id(store, subdomain) if subdomain is not None else None
        return await user_service.revoke_token(store, account_id, token_id)

    if not _with_store(database_url, work):
        _fail(f"no active token has the id {token_id}")
    click.echo(f"token {token_id} revoked")


@main.group()
def accounts() -> None:
    """Manage accounts: a request's account is the one its Host's first label names."""


def _account_json(account: Account) -> str:
    return json.dumps({"id": account.id, "subdomain": account.subdomain,
                       "password_access": account.password_access})


@accounts.command("create")
@database_option
@click.option("--subdomain", required=True,
              help="A lower-case DNS label: requests to {subdomain}.example.com use the account.")
@click.option("--password-access/--no-password-access", default=False, show_default=True,
              help="Accept Basic {email}:{password} credentials.")
def accounts_create(database_url: str, subdomain: str, password_access: bool) -> None:
    """Create an account; prints it as JSON."""
    _check(access.check_subdomain, subdomain)

    async def work(store: Store) -> Account:
        return await user_service.create_account(store, subdomain, password_access=password_access)

    click.echo(_account_json(_with_store(database_url, work)))


@accounts.command("update")
@database_option
@click.option("--subdomain", default=None, help="The account's subdomain; the default account if omitted.")
@click.option("--password-access/--no-password-access", default=None,
              help="Accept, or stop accepting, Basic {email}:{password} credentials.")
def accounts_update(database_url: str, subdomain: str | None, password_access: bool | None) -> None:
    """Change an account's settings; prints it as JSON."""
    if password_access is None:
        _fail("nothing to change: give --password-access or --no-password-access")

    async def work(store: Store) -> Account:
        account_id = await _account_id(store, subdomain)
        return await user_service.set_password_access(store, account_id, bool(password_access))

    click.echo(_account_json(_with_store(database_url, work)))


@accounts.command("list")
@database_option
def accounts_list(database_url: str) -> None:
    """Print every account as one JSON object a line; the default account has no subdomain."""
    for account in _with_store(database_url, user_service.list_accounts):
        click.echo(_account_json(account))


# Exit status of an import that applied some lines and refused others (docs/bulk.md).
EXIT_REFUSED = 3


@main.command("import")
@database_option
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--batch-size", default=2000, show_default=True, type=click.IntRange(1, 100_000),
              help="Lines per transaction.")
@click.option("--account", "subdomain", default=None, help="The account's subdomain.")
def import_profiles(database_url: str, file: str, batch_size: int, subdomain: str | None) -> None:
    """Create or replace profiles from NDJSON, one {"profile": {...}} a line ('-': stdin).

    Each line is applied as PUT /api/v2/user_profiles?identifier= with its first identifier
    as the query. Refused lines are reported on stderr and skipped; exit status 3 if any was.
    """
    from tqdm import tqdm

    from .service import bulk

    try:
        limits = Settings.from_env().limits
    except InvalidSetting as error:
        _fail(str(error))
        raise
    try:
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
        size = None if file == "-" else os.fstat(stream.fileno()).st_size
    except OSError as error:
        _fail(f"cannot read {file}: {error.strerror}")
        raise
    bar = tqdm(total=size, unit="B", unit_scale=True, file=sys.stderr, desc="import",
               disable=not sys.stderr.isatty())
    done = 0

    def progress(consumed: int) -> None:
        nonlocal done
        bar.update(consumed - done)
        done = consumed

    def refused(refusal: bulk.Refusal) -> None:
        message = f"line {refusal.line}: {refusal.code}: {refusal.detail}"
        if bar.disable:
            click.echo(message, err=True)
        else:
            bar.write(message, file=sys.stderr)

    async def work(store: Store) -> bulk.ImportTotals:
        account_id = await _account_id(store, subdomain)
        return await bulk.import_lines(
            store, account_id, limits, bulk.read_batches(stream, batch_size),
            on_refusal=refused, on_progress=progress,
        )

    try:
        totals = _with_store(database_url, work)
    finally:
        bar.close()
        if stream is not sys.stdin.buffer:
            stream.close()
    click.echo(f"created {totals.created}, replaced {totals.replaced}, refused {totals.refused}")
    if totals.refused:
        sys.exit(EXIT_REFUSED)


@main.command("export")
@database_option
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--account", "subdomain", default=None, help="The account's subdomain.")
def export_profiles(database_url: str, file: str, subdomain: str | None) -> None:
    """Write every profile as NDJSON, one {"profile": {...}} a line, by id ('-': stdout).

    The lines carry id and user_id, so that importing them into an empty database gives the
    same profiles.
    """
    from .service import bulk

    try:
        out = sys.stdout.buffer if file == "-" else open(file, "wb")  # noqa: SIM115
    except OSError as error:
        _fail(f"cannot write {file}: {error.strerror}")
        raise

    async def work(store: Store) -> int:
        account_id = await _account_id(store, subdomain)
        return await bulk.export_profiles(store, account_id, out)

    try:
        count = _with_store(database_url, work)
    finally:
        if out is sys.stdout.buffer:
            out.flush()
        else:
            out.close()
    click.echo(f"exported {count}", err=True)


if __name__ == "__main__":
    sys.exit(main())
