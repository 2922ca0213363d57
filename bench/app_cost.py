"""The application's own cost per request, without HTTP: the ASGI app called in-process.

    .venv/bin/python bench/app_cost.py                       # 100,000 profiles, every scenario
    .venv/bin/python bench/app_cost.py --profiles 1000000 --scenario "GET by identifier"
    .venv/bin/python bench/app_cost.py --cprofile tottime     # where the time goes, by function

`bench/run` measures the whole stack under wrk, where the machine's other work, the kernel's
network stack and the server's own share move the figures by a tenth from one run to the
next. Here one request follows another on one core with nothing else in the way, so that a
change to the application can be compared before and after in seconds: microseconds a
request of processor time, the best of a few rounds. The database is built afresh as
`bench/run` builds it, through the import, in `--out`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from run import BENCH, build, page_in

Message = dict[str, Any]
App = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
               Awaitable[None]]

SCENARIOS = ("GET by id", "GET by identifier", "PUT create")
_BODY = b'{"profile": {"attributes": {"plan": "gold", "visits": 1}}}'


def _scope(method: str, path: str, query: bytes, auth: bytes) -> Message:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", auth),
                    (b"content-type", b"application/json")],
    }


def _requests(scenario: str, ids: list[str], queries: list[str], count: int, auth: bytes,
              nonce: str) -> list[tuple[Message, bytes]]:
    rng = random.Random(1)
    if scenario == "GET by id":
        return [(_scope("GET", f"/api/v2/user_profiles/{rng.choice(ids)}", b"", auth), b"")
                for _ in range(count)]
    if scenario == "GET by identifier":
        return [(_scope("GET", "/api/v2/user_profiles",
                        f"identifier={rng.choice(queries)}".encode(), auth), b"")
                for _ in range(count)]
    return [(_scope("PUT", "/api/v2/user_profiles",
                    f"identifier=appcost:customer:email:{nonce}-{n}%40cost.example".encode(), auth),
             _BODY) for n in range(count)]


async def _started(app: App) -> tuple[asyncio.Queue[Message], asyncio.Task[None]]:
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    ready = asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            ready.set()

    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))  # type: ignore[arg-type]
    await ready.wait()
    return inbox, lifespan


async def _measure(app: App, requests: list[tuple[Message, bytes]],
                   statuses: dict[int, int]) -> float:
    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] = statuses.get(message["status"], 0) + 1

    started = time.process_time()
    for scope, body in requests:
        request = {"type": "http.request", "body": body, "more_body": False}

        async def receive(request: Message = request) -> Message:
            return request

        await app(scope, receive, send)
    return time.process_time() - started


async def _run(args: argparse.Namespace, ids: list[str], queries: list[str], auth: bytes) -> int:
    from openprofiles.api.app import create_app_from_env

    app = create_app_from_env()
    inbox, lifespan = await _started(app)
    failed = 0
    try:
        for scenario in args.scenario or SCENARIOS:
            warm = _requests(scenario, ids, queries, args.requests // 10, auth, f"w{time.time_ns()}")
            await _measure(app, warm, {})
            best = float("inf")
            statuses: dict[int, int] = {}
            profiler = cProfile.Profile() if args.cprofile else None
            for round_ in range(args.rounds):
                requests = _requests(scenario, ids, queries, args.requests, auth,
                                     f"r{round_}-{time.time_ns()}")
                if profiler is not None:
                    profiler.enable()
                best = min(best, await _measure(app, requests, statuses))
                if profiler is not None:
                    profiler.disable()
            failures = sum(n for status, n in statuses.items() if status >= 300)
            failed += failures
            print(f"{scenario}: {best / args.requests * 1e6:.1f} µs a request "
                  f"(best of {args.rounds} rounds of {args.requests:,}; statuses {statuses})")
            if profiler is not None:
                pstats.Stats(profiler).sort_stats(args.cprofile).print_stats(25)
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await lifespan
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20_000, help="a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS,
                        help="repeatable; every scenario when not given")
    parser.add_argument("--cprofile", metavar="SORT", default=None,
                        help="profile the measured rounds and print the top functions by SORT"
                             " (tottime, cumtime)")
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"appcost-{args.profiles}"
    database = args.out / f"{name}.db"
    built = build("sqlite", args.profiles, args.out, name)
    page_in(built)
    os.environ["OPENPROFILES_DATABASE_URL"] = f"sqlite:///{database}"
    ids = built.ids.read_text().split()
    queries = built.queries.read_text().split()
    auth = built.auth.encode()
    return asyncio.run(_run(args, ids, queries, auth))


if __name__ == "__main__":
    sys.exit(main())
