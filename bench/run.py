"""Builds databases through `openprofiles import`, serves them, drives them with wrk, prints a table.

    bash bench/run                 # 1,000,000 and 10,000 profiles on SQLite; 100,000 and 10,000
                                   # on PostgreSQL when it is reachable
    bash bench/run --quick         # a smoke run: small databases, short runs
    bash bench/run --engine sqlite --profiles 200000 --duration 5

Every scenario runs against openprofiles and, with the same Lua script, server and worker
count, against a bare ASGI app (bench/bare_app.py) that answers with a fixed profile: the
ratio between the two is what the issue's targets are stated in. The two are driven in turn,
a few rounds each (`--rounds`), so that load from elsewhere on a shared machine weighs on both
sides of the ratio alike; the large and small databases are compared the same way. Exits 1
when a target is missed (targets apply to SQLite; PostgreSQL figures are reported only).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "lua"
OPENPROFILES = [sys.executable, "-m", "openprofiles.cli"]
PG_ADMIN = os.environ.get("OPENPROFILES_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

# scenario, Lua script, key file, minimum ratio to the ceiling (None: reported only)
SCENARIOS = [
    ("GET by id", "get_id.lua", "ids", 0.40),
    ("GET by identifier", "get_identifier.lua", "queries", 0.40),
    ("PUT create", "put_create.lua", "ids", 0.20),
    ("PUT replace", "put_replace.lua", "queries", 0.20),
    ("PATCH", "patch.lua", "ids", 0.20),
    ("event POST", "event.lua", "ids", None),
]
P99_LIMIT_MS = {"GET by id": 20.0, "GET by identifier": 20.0}
SCALE_RATIO = 0.90
MEMORY_LIMIT_MB = 250
IMPORT_RATE = 20_000
SAMPLE_KEYS = 100_000


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=True, text=True, capture_output=True,
                          env={**os.environ, **(env or {})}, **kwargs)  # type: ignore[arg-type]


# Databases


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except Exception:
        return False


def fresh_url(engine: str, out: Path, name: str) -> str:
    if engine == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{out / name}.db{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{out / name}.db"
    import psycopg

    database = f"openprofiles_bench_{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{database}"


@dataclass
class Built:
    url: str
    profiles: int
    import_seconds: float
    import_peak_mb: float
    # The import's own CPU time, beside the wall time that other work on the machine stretches.
    import_cpu_seconds: float
    auth: str
    ids: Path
    queries: Path


def build(engine: str, count: int, out: Path, name: str) -> Built:
    """A database of `count` generated profiles, imported through the CLI, with an admin token."""
    data = out / f"profiles-{count}.ndjson"
    keys = out / f"queries-{count}.txt"
    if not data.exists() or not keys.exists():
        log(f"generating {count:,} profiles")
        run(sys.executable, str(BENCH / "generate.py"), str(count), str(data), "--keys", str(keys))
    url = fresh_url(engine, out, name)
    run(*OPENPROFILES, "migrate", "--database", url)
    log(f"importing {count:,} profiles into {engine}")
    started = time.perf_counter()
    result = run("/usr/bin/time", "-f", "%M %U %S", *OPENPROFILES, "import", "--database", url,
                 str(data))
    seconds = time.perf_counter() - started
    peak_kb, user, system = result.stderr.strip().splitlines()[-1].split()
    cpu = float(user) + float(system)
    log(f"imported: {result.stdout.strip()} in {seconds:.1f} s ({count / seconds:,.0f}/s),"
        f" {cpu:.1f} s of CPU")
    email = f"bench-{uuid.uuid4().hex[:6]}@example.com"
    run(*OPENPROFILES, "users", "create", "--database", url, "--email", email, "--name", "Bench",
        "--role", "admin")
    token = run(*OPENPROFILES, "tokens", "create", "--database", url, "--email", email).stdout
    auth = "Basic " + base64.b64encode(f"{email}/token:{token.strip().splitlines()[-1]}".encode()).decode()
    ids = out / f"{name}-ids.txt"
    exported = subprocess.run([*OPENPROFILES, "export", "--database", url, "-"], check=True,
                              capture_output=True).stdout.splitlines()
    rng = random.Random(1)
    sample = rng.sample(exported, min(SAMPLE_KEYS, len(exported)))
    ids.write_text("".join(json.loads(line)["profile"]["id"] + "\n" for line in sample))
    queries = out / f"{name}-queries.txt"
    all_queries = keys.read_text().splitlines()
    picked = rng.sample(all_queries, min(SAMPLE_KEYS, len(all_queries)))
    queries.write_text("".join(quote(q, safe="") + "\n" for q in picked))
    return Built(url, count, seconds, int(peak_kb) / 1024, cpu, auth, ids, queries)


def page_in(*databases: Built) -> None:
    """Reads each SQLite database file once, so that the operating system's cache holds it when
    a scenario starts, as it holds the pages a server in service keeps reading. The machines
    these figures come from take idle pages out of that cache within minutes, with gigabytes of
    memory free (bench/RESULTS.md, 2026-11-29 22:40): without this, a scenario on the large
    file began by reading it from disk at random, and measured the disk rather than the server,
    more so the later it ran. PostgreSQL keeps its files to itself and is left as it is."""
    for built in databases:
        if not built.url.startswith("sqlite:///"):
            continue
        path = built.url[len("sqlite:///"):]
        for name in (path, f"{path}-wal"):
            try:
                with open(name, "rb", buffering=0) as file:
                    while file.read(1 << 20):
                        pass
            except FileNotFoundError:
                pass


# Servers


@dataclass
class Server:
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    peak_rss_mb: float = 0.0
    _sampling: bool = False

    def start(self) -> Server:
        self.port = free_port()
        self.process = subprocess.Popen(
            [*self.args, "--port", str(self.port)], env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            cwd=BENCH,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {' '.join(self.args)}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/openapi.json", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not start")
        time.sleep(1)  # every worker up
        self._sampling = True
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    def _tree(self) -> list[int]:
        assert self.process is not None
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                    parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        tree, frontier = [self.process.pid], [self.process.pid]
        while frontier:
            frontier = [pid for pid, parent in parents.items() if parent in frontier]
            tree += frontier
        return tree

    def _sample(self) -> None:
        # The server's memory is that of all its processes together, sampled while it works.
        while self._sampling:
            total = 0
            for pid in self._tree():
                try:
                    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if row.startswith("VmRSS:"):
                            total += int(row.split()[1])
                except OSError:
                    continue
            self.peak_rss_mb = max(self.peak_rss_mb, total / 1024)
            time.sleep(0.25)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._sampling = False
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def openprofiles_server(url: str, workers: int) -> Server:
    return Server([*OPENPROFILES, "serve", "--database", url, "--workers", str(workers)]).start()


def bare_server(workers: int) -> Server:
    return Server([sys.executable, "-m", "uvicorn", "bare_app:app", "--workers", str(workers),
                   "--log-level", "warning", "--no-access-log", "--no-server-header"]).start()


# wrk


@dataclass
class Measure:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int  # answers other than 2xx or 3xx, and requests wrk gave up on after 2 s
    requests: int
    # (percent, ms): the run's latency distribution, as bench/lua/common.lua prints it.
    quantiles: list[tuple[float, float]] = field(default_factory=list)
    timeouts: int = 0  # of the errors, those wrk gave up on


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(server: Server, script: str, keys: Path, auth: str, args: argparse.Namespace,
        duration: float) -> Measure:
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{max(1, round(duration))}s",
               "--latency", "-s", script, server.url, "--", str(keys), auth, uuid.uuid4().hex[:8]]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=LUA).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors_match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: .*?timeout (\d+)", output)
    timeouts = int(socket_errors.group(1)) if socket_errors else 0
    errors = (int(errors_match.group(1)) if errors_match else 0) + timeouts
    quantiles = [(float(q), int(us) / 1000) for q, us in re.findall(r"^quantile ([\d.]+) (\d+)$", output, re.M)]
    return Measure(rate, p50, p99, errors, requests, quantiles, timeouts)


@dataclass
class Target:
    """A server and what to send it: its key file and credentials."""

    server: Server
    keys: Path
    auth: str


def paired(script: str, first: Target, second: Target, args: argparse.Namespace) -> tuple[Measure, Measure]:
    """Drives the two servers in turn, `args.rounds` rounds of an equal share of the duration
    each, after a warm-up of each: on a shared machine, load that comes and goes then falls on
    both alike, instead of on whichever ran while it lasted."""
    for target in (first, second):
        wrk(target.server, script, target.keys, target.auth, args, args.warmup)
    share = args.duration / args.rounds
    rounds: tuple[list[Measure], list[Measure]] = ([], [])
    for _ in range(args.rounds):
        for target, measured in zip((first, second), rounds):
            measured.append(wrk(target.server, script, target.keys, target.auth, args, share))
    return _combined(rounds[0]), _combined(rounds[1])


def _combined(rounds: list[Measure]) -> Measure:
    """The rate over all rounds, and the latencies of all their requests pooled (without the
    distributions: the median p50 and the worst p99)."""
    pooled = all(m.quantiles for m in rounds)
    return Measure(
        rate=sum(m.rate for m in rounds) / len(rounds),
        p50_ms=pooled_percentile(rounds, 50) if pooled else sorted(m.p50_ms for m in rounds)[len(rounds) // 2],
        p99_ms=pooled_percentile(rounds, 99) if pooled else max(m.p99_ms for m in rounds),
        errors=sum(m.errors for m in rounds),
        requests=sum(m.requests for m in rounds),
        timeouts=sum(m.timeouts for m in rounds),
    )


def pooled_percentile(rounds: list[Measure], percent: float) -> float:
    """The latency under which `percent` of the requests of every round together were
    answered: each round's distribution weighs as many requests as it made, each of its points
    the share of requests between it and the point below (the last, the rest)."""
    masses: list[tuple[float, float]] = []
    for measure in rounds:
        below = 0.0
        for point, ms in measure.quantiles:
            masses.append((ms, (point - below) / 100 * measure.requests))
            below = point
        masses[-1] = (masses[-1][0], masses[-1][1] + (100 - below) / 100 * measure.requests)
    wanted = percent / 100 * sum(mass for _, mass in masses)
    reached = 0.0
    for ms, mass in sorted(masses):
        reached += mass
        if reached >= wanted - 1e-9:
            return ms
    return max(ms for ms, _ in masses)


# The run


@dataclass
class Row:
    scenario: str
    result: Measure
    ceiling: Measure
    target: float | None

    @property
    def ratio(self) -> float:
        return self.result.rate / self.ceiling.rate if self.ceiling.rate else 0.0


def bench_engine(engine: str, args: argparse.Namespace, out: Path) -> tuple[str, bool]:
    profiles = args.profiles if engine == "sqlite" else args.pg_profiles
    big = build(engine, profiles, out, f"{engine}-big")
    small = build(engine, args.small, out, f"{engine}-small")
    checked = engine == "sqlite" and not args.quick
    rows: list[Row] = []
    bare = bare_server(args.workers)
    server = openprofiles_server(big.url, args.workers)
    try:
        ceiling = Target(bare, big.ids, big.auth)
        for name, script, keys, target in SCENARIOS:
            page_in(big)
            ceiling.keys = getattr(big, keys)
            ceiling_rate, result = paired(script, ceiling, Target(server, getattr(big, keys), big.auth), args)
            rows.append(Row(name, result, ceiling_rate, target))
            log(f"{name}: {result.rate:,.0f}/s (ceiling {ceiling_rate.rate:,.0f}/s)")
    finally:
        bare.stop()
    small_server = openprofiles_server(small.url, args.workers)
    try:
        page_in(big, small)
        big_rate, small_rate = paired(
            "get_identifier.lua", Target(server, big.queries, big.auth),
            Target(small_server, small.queries, small.auth), args,
        )
        log(f"GET by identifier: {big_rate.rate:,.0f}/s on {profiles:,}, "
            f"{small_rate.rate:,.0f}/s on {args.small:,}")
    finally:
        small_server.stop()
        server.stop()

    ok = True
    lines = [f"### {engine}: {profiles:,} profiles, {args.workers} workers, wrk {args.threads} threads "
             f"{args.connections} connections, {args.duration:g} s a scenario", "",
             "| scenario | req/s | p50 ms | p99 ms | errors | ceiling req/s | ratio | target | |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|"]

    def verdict(passed: bool) -> str:
        nonlocal ok
        if not checked:
            return "-"
        ok = ok and passed
        return "pass" if passed else "**FAIL**"

    for row in rows:
        targets = []
        passed = row.result.errors == 0
        if row.target is not None:
            targets.append(f"≥ {row.target:.0%}")
            passed = passed and row.ratio >= row.target
        limit = P99_LIMIT_MS.get(row.scenario)
        if limit is not None:
            targets.append(f"p99 < {limit:g} ms")
            passed = passed and row.result.p99_ms < limit
        lines.append(
            f"| {row.scenario} | {row.result.rate:,.0f} | {row.result.p50_ms:.2f} | "
            f"{row.result.p99_ms:.2f} | {_errors(row.result)} | {row.ceiling.rate:,.0f} | "
            f"{row.ratio:.0%} | {', '.join(targets) or '-'} | {verdict(passed) if targets else ''} |"
        )
    scale = big_rate.rate / small_rate.rate if small_rate.rate else 0.0
    lines += [
        "",
        "| figure | value | target | |",
        "|---|---:|---|---|",
        f"| GET by identifier, {profiles:,} vs {args.small:,} profiles | {big_rate.rate:,.0f} / "
        f"{small_rate.rate:,.0f} req/s = {scale:.0%} | ≥ {SCALE_RATIO:.0%} | {verdict(scale >= SCALE_RATIO)} |",
        f"| server peak memory ({args.workers} workers, all processes) | {server.peak_rss_mb:,.0f} MB | "
        f"< {MEMORY_LIMIT_MB} MB | {verdict(server.peak_rss_mb < MEMORY_LIMIT_MB)} |",
        f"| import of {profiles:,} profiles | {big.import_seconds:.1f} s, "
        f"{profiles / big.import_seconds:,.0f} profiles/s ({big.import_cpu_seconds:.1f} s of CPU), "
        f"peak {big.import_peak_mb:,.0f} MB | "
        f"≥ {IMPORT_RATE:,}/s | {verdict(engine != 'sqlite' or profiles / big.import_seconds >= IMPORT_RATE)} |",
        f"| import of {args.small:,} profiles | {small.import_seconds:.1f} s, peak {small.import_peak_mb:,.0f} MB | | |",
        "",
    ]
    return "\n".join(lines), ok


def _errors(measure: Measure) -> str:
    if not measure.timeouts:
        return str(measure.errors)
    return f"{measure.errors} ({measure.timeouts} timed out)"


# Run as a module's top-level code, with its names in a dictionary, as the loop whose times
# bench/RESULTS.md records was (`python3 -c`); in a function, with local names, it runs twice
# as fast.
_LOOP = compile("total = 0\nfor i in range(additions):\n    total += i\n", "<loop>", "exec")


def loop_seconds(additions: int = 20_000_000) -> float:
    """How long this interpreter takes to add up `additions` integers in a loop: how fast the
    machine's processor runs Python at the moment, to set a run beside those of bench/RESULTS.md
    (the README gives the range recorded there). Shared machines change speed from one hour to
    the next, so it is taken before and after the runs."""
    started = time.perf_counter()
    exec(_LOOP, {"additions": additions})
    return time.perf_counter() - started


def machine(loops: list[float]) -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores ({model}); "
            f"{memory / 1024 / 1024:.0f} GiB RAM; Python {platform.python_version()}; "
            f"{subprocess.run(['wrk', '--version'], capture_output=True, text=True).stdout.split(' [')[0].strip()}; "
            f"a loop of 20 million additions in {' s, then '.join(f'{t:.2f}' for t in loops)} s")


def main() -> int:
    parser = argparse.ArgumentParser(description="openprofiles benchmark")
    parser.add_argument("--profiles", type=int, default=1_000_000, help="profiles in the large database")
    parser.add_argument("--pg-profiles", type=int, default=100_000,
                        help="profiles in the large PostgreSQL database, whose import is slower")
    parser.add_argument("--small", type=int, default=10_000, help="profiles in the small database")
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "all"], default="all",
                        help="all: SQLite, and PostgreSQL when it is reachable")
    parser.add_argument("--duration", type=float, default=16, help="seconds a scenario")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up before each")
    parser.add_argument("--rounds", type=int, default=8,
                        help="turns a scenario's duration is split into, alternating the two servers")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 20,000 and 2,000 profiles, 3 s a scenario, no verdicts")
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    args = parser.parse_args()
    if args.quick:
        args.profiles, args.small, args.duration, args.warmup, args.rounds = 20_000, 2_000, 3, 1, 1
        args.pg_profiles = min(args.pg_profiles, 20_000)
    args.out.mkdir(parents=True, exist_ok=True)
    engines = ["sqlite", "postgresql"] if args.engine == "all" else [args.engine]
    if "postgresql" in engines and not postgres_available():
        if args.engine == "postgresql":
            log("PostgreSQL is not reachable")
            return 2
        log("PostgreSQL is not reachable: SQLite only")
        engines.remove("postgresql")
    loops = [loop_seconds()]
    log(f"a loop of 20 million additions took {loops[0]:.2f} s")
    report: list[str] = []
    ok = True
    for engine in engines:
        table, passed = bench_engine(engine, args, args.out)
        report.append(table)
        ok = ok and passed
        print(table, flush=True)
    loops.append(loop_seconds())
    report.append(f"Machine: {machine(loops)}")
    (args.out / "report.md").write_text("\n\n".join(report))
    print(report[-1])
    if args.quick:
        print("quick run: figures only, no verdicts", flush=True)
    else:
        print("all targets met" if ok else "TARGETS MISSED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
