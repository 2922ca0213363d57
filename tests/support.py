"""Running real openprofiles servers for the tests: a database, the CLI, a server process."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from openprofiles.store.urls import DatabaseUrl

PG_ADMIN_DSN = os.environ.get("OPENPROFILES_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
OPENPROFILES = [sys.executable, "-m", "openprofiles.cli"]


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return True
    except Exception:
        return False


def fetch_all(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one statement, read straight from a database of either engine."""
    url = DatabaseUrl.parse(database_url)
    if url.engine == "sqlite":
        connection = sqlite3.connect(url.sqlite_path)
        try:
            return [tuple(row) for row in connection.execute(sql)]
        finally:
            connection.close()
    import psycopg

    with psycopg.connect(url.raw) as connection:
        return [tuple(row) for row in connection.execute(sql)]  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Database:
    """A fresh, empty database of one engine, dropped when the test session ends."""

    engine: str
    url: str
    _pg_name: str | None = None

    @classmethod
    def create(cls, engine: str, tmp_dir: Path) -> Database:
        if engine == "sqlite":
            return cls(engine, f"sqlite:///{tmp_dir / f'op-{uuid.uuid4().hex[:8]}.db'}")
        import psycopg

        name = f"openprofiles_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_DSN.rsplit("/", 1)[0]
        return cls(engine, f"{base}/{name}", name)

    def drop(self) -> None:
        if self._pg_name is None:
            return
        import psycopg

        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')


def cli(database_url: str, *args: str, check: bool = True, input: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    run_env = {**os.environ, "OPENPROFILES_DATABASE_URL": database_url, **(env or {})}
    result = subprocess.run([*OPENPROFILES, *args], capture_output=True, text=True, env=run_env,
                            input=input, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"openprofiles {' '.join(args)} failed: {result.stderr}")
    return result


@dataclass
class Credentials:
    email: str
    token: str
    user_id: int

    @property
    def auth(self) -> tuple[str, str]:
        return (f"{self.email}/token", self.token)


def create_user(database_url: str, role: str = "admin", *extra: str,
                email: str | None = None) -> Credentials:
    import json

    email = email or f"{role}-{secrets.token_hex(4)}@example.com"
    created = cli(database_url, "users", "create", "--email", email, "--name", f"Test {role}",
                  "--role", role, *extra)
    user = json.loads(created.stdout.strip().splitlines()[-1])
    token_args = ["tokens", "create", "--email", email]
    if "--account" in extra:
        token_args += ["--account", extra[extra.index("--account") + 1]]
    token = cli(database_url, *token_args).stdout.strip().splitlines()[-1]
    return Credentials(email, token, user["id"])


@dataclass
class Server:
    """A running `openprofiles serve` process on a free port."""

    database: Database
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path) -> Server:
        self.port = self.port or free_port()
        self.log_path = log_dir / f"server-{self.port}.log"
        # At info, the log also tells of workers that died or were restarted.
        env = {**os.environ, "OPENPROFILES_LOG_LEVEL": "info", **self.env,
               "OPENPROFILES_DATABASE_URL": self.database.url}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*OPENPROFILES, "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        RUNNING.append(self)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log()}")
            try:
                httpx.get(f"{self.base_url}/api/v2/openapi.json", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        RUNNING[:] = [server for server in RUNNING if server is not self]
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL to every process of the server, as a crash would."""
        self.stop(signal.SIGKILL)


# The servers started and not yet stopped: a failing test's report shows their logs.
RUNNING: list[Server] = []


@dataclass
class Api:
    """What a test needs: a running server, its database, and an admin's credentials."""

    server: Server
    admin: Credentials

    @property
    def engine(self) -> str:
        return self.server.database.engine

    @property
    def database_url(self) -> str:
        return self.server.database.url

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def client(self, credentials: Credentials | None = None, **kwargs: object) -> httpx.Client:
        auth = (credentials or self.admin).auth
        return httpx.Client(base_url=self.base_url, auth=auth, timeout=30, **kwargs)  # type: ignore[arg-type]

    def user(self, role: str = "admin", *extra: str) -> Credentials:
        return create_user(self.database_url, role, *extra)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return cli(self.database_url, *args, check=check)


def unique(prefix: str = "x") -> str:
    """A value no other test uses, so tests share one server without seeing each other."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@contextmanager
def served(engine: str, work_dir: Path, *, workers: int = 1,
           env: dict[str, str] | None = None) -> Iterator[Api]:
    """A server on a new, migrated database with an admin; stopped and dropped afterwards."""
    database = Database.create(engine, work_dir)
    try:
        cli(database.url, "migrate")
        admin = create_user(database.url, "admin")
        server = Server(database, workers=workers, env=env or {}).start(work_dir)
        try:
            yield Api(server, admin)
        finally:
            server.stop()
    finally:
        database.drop()
