"""The command line's contract: what it prints, how it fails, where it finds the database."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .support import Api, Database, cli, served, unique

TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,}$")


@pytest.fixture(scope="module")
def database(engine: str, work_dir: Path) -> Iterator[Database]:
    created = Database.create(engine, work_dir)
    yield created
    created.drop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def create_user(url: str, *args: str, email: str | None = None,
                role: str = "agent") -> subprocess.CompletedProcess[str]:
    email = email or f"{unique('cli')}@example.com"
    return cli(url, "users", "create", "--email", email, "--name", "Cli User", "--role", role,
               *args, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """A failure: non-zero exit, nothing on stdout, no traceback, one `Error:` line naming it."""
    assert result.returncode != 0, result.stdout
    assert result.stdout == ""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], result.stderr
    return errors[0]


def tables_of(database: Database) -> set[str]:
    if database.engine == "sqlite":
        with sqlite3.connect(database.url[len("sqlite:///"):]) as conn:
            return {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    import psycopg

    with psycopg.connect(database.url) as conn:
        return {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


# The commands, on each engine


def test_migrate_creates_the_schema_and_can_run_again(engine: str, work_dir: Path) -> None:
    fresh = Database.create(engine, work_dir)
    try:
        for _ in range(2):
            result = cli(fresh.url, "migrate")
            assert result.stdout.strip() == f"{engine} database is at the latest schema"
            assert "Traceback" not in result.stderr
        assert {"alembic_version", "users", "user_identities", "api_tokens", "profiles",
                "profile_identifiers"} <= tables_of(fresh)
    finally:
        fresh.drop()


@pytest.mark.parametrize("role", ["admin", "agent", "end-user"])
def test_users_create_prints_the_user_as_json(database: Database, role: str) -> None:
    email = f"{unique('Mixed')}@Example.COM"
    result = create_user(database.url, email=email, role=role)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    user = json.loads(line)
    assert type(user["id"]) is int and user["id"] > 0
    assert user["email"] == email.lower()
    assert user["name"] == "Cli User"
    assert user["role"] == role
    assert user["people_access"] == "full"
    assert user["active"] is True


def test_users_create_options(database: Database) -> None:
    external_id = unique("ext-")
    result = create_user(database.url, "--people-access", "readonly", "--external-id", external_id)
    assert result.returncode == 0, result.stderr
    user = json.loads(result.stdout)
    assert user["people_access"] == "readonly" and user["external_id"] == external_id


def test_tokens_create_prints_the_token_alone_on_the_last_line(database: Database) -> None:
    email = f"{unique('tok')}@example.com"
    user = json.loads(create_user(database.url, email=email).stdout)
    first = cli(database.url, "tokens", "create", "--email", email)
    second = cli(database.url, "tokens", "create", "--email", email.upper())
    tokens = []
    for result in (first, second):
        lines = result.stdout.splitlines()
        assert len(lines) == 2
        assert re.fullmatch(rf"token id \d+ for user {user['id']} \(api\)", lines[0])
        assert TOKEN.match(lines[-1]), lines[-1]
        tokens.append(lines[-1])
    assert tokens[0] != tokens[1]


def test_printed_token_authenticates(api: Api) -> None:
    email = f"{unique('live')}@example.com"
    user = json.loads(create_user(api.database_url, email=email, role="agent").stdout)
    token = cli(api.database_url, "tokens", "create", "--email", email).stdout.splitlines()[-1]
    me = httpx.get(f"{api.base_url}/api/v2/users/me", auth=(f"{email}/token", token))
    assert me.status_code == 200
    assert me.json()["user"]["id"] == user["id"]


def test_unknown_email_for_tokens_fails_cleanly(database: Database) -> None:
    result = cli(database.url, "tokens", "create", "--email", f"{unique()}@example.com",
                 check=False)
    assert result.returncode == 1
    assert_one_line_error(result, "No user has the email")


def test_duplicate_email_fails_cleanly(database: Database) -> None:
    email = f"{unique('twice')}@example.com"
    assert create_user(database.url, email=email).returncode == 0
    result = create_user(database.url, email=email)
    assert result.returncode == 1
    assert_one_line_error(result, "already in use")


def test_database_option_and_environment(database: Database) -> None:
    email = f"{unique('where')}@example.com"
    # --database wins over the environment...
    made = cli("mysql://not-used", "users", "create", "--database", database.url,
               "--email", email, "--name", "N", "--role", "agent", check=False)
    assert made.returncode == 0, made.stderr
    # ...the environment alone names the same database...
    token = cli(database.url, "tokens", "create", "--email", email)
    assert TOKEN.match(token.stdout.splitlines()[-1])
    # ...and a bad --database is refused even when the environment is good.
    refused = cli(database.url, "tokens", "create", "--database", "mysql://x", "--email", email,
                  check=False)
    assert_one_line_error(refused, "unsupported database URL")


# Bad arguments, which need no particular engine


@pytest.mark.parametrize(("args", "words"), [
    (["users", "create", "--email", "a@example.com", "--name", "A", "--role", "boss"],
     ["--role", "boss"]),
    (["users", "create", "--email", "a@example.com", "--role", "admin"], ["--name"]),
    (["users", "create", "--name", "A", "--role", "admin"], ["--email"]),
    (["users", "create", "--email", "a@example.com", "--name", "A", "--role", "admin",
      "--people-access", "some"], ["--people-access"]),
    (["tokens", "create"], ["--email"]),
    (["tokens", "revoke", "abc"], ["TOKEN_ID"]),
    (["nothing"], ["nothing"]),
])
def test_bad_arguments_fail_cleanly(sqlite_url: str, args: list[str], words: list[str]) -> None:
    result = cli(sqlite_url, *args, check=False)
    assert result.returncode == 2
    assert_one_line_error(result, *words)


BAD_URLS = [
    ("mysql://localhost/db", "unsupported database URL"),
    ("nonsense", "unsupported database URL"),
    ("sqlite:///", "sqlite:///PATH"),
    ("sqlite:////nonexistent-dir/sub/op.db", "cannot migrate sqlite database"),
    ("postgresql://postgres@127.0.0.1:1/none", "cannot migrate postgresql database"),
]


def assert_bad_url(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 1
    line = assert_one_line_error(result, words)
    assert result.stderr.strip() == line


@pytest.mark.parametrize(("url", "words"), BAD_URLS)
def test_bad_database_urls_fail_cleanly(url: str, words: str) -> None:
    assert_bad_url(cli(url, "migrate", check=False), words)


def test_bad_urls_through_the_option_and_other_commands() -> None:
    # The environment names a database that must not be used: the option wins.
    url, words = BAD_URLS[-1]
    assert_bad_url(cli("mysql://env-not-used", "migrate", "--database", url, check=False), words)
    assert_bad_url(cli(BAD_URLS[0][0], "users", "create", "--email", "a@example.com", "--name",
                       "A", "--role", "admin", check=False), BAD_URLS[0][1])
    assert_bad_url(cli(url, "tokens", "create", "--email", "a@example.com", check=False), words)


def test_revoke_unknown_token_fails_cleanly(sqlite_url: str) -> None:
    result = cli(sqlite_url, "tokens", "revoke", "999", check=False)
    assert result.returncode == 1
    assert_one_line_error(result, "no active token")


def _idle_connection_closed_within(port: int, seconds: float) -> bool:
    """Sends one request on a new connection, then waits for the server to close it."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(b"GET /api/v2/openapi.json HTTP/1.1\r\nHost: t\r\n\r\n")
        connection.settimeout(seconds)
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                if connection.recv(65536) == b"":
                    return True
        except TimeoutError:
            return False
        return False


def test_serve_keeps_idle_connections_open_for_the_keep_alive_seconds(work_dir: Path) -> None:
    with served("sqlite", work_dir, env={"OPENPROFILES_KEEP_ALIVE": "2"}) as api:
        assert not _idle_connection_closed_within(api.server.port, 1.0)
        assert _idle_connection_closed_within(api.server.port, 4.0)


def test_serve_rejects_a_keep_alive_out_of_range(sqlite_url: str) -> None:
    result = cli(sqlite_url, "serve", "--keep-alive", "0", check=False)
    assert result.returncode == 2
    assert "--keep-alive" in result.stderr
