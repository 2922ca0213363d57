"""`openprofiles import` and `export` end to end: real processes on real databases.

The import must apply each line as `PUT /api/v2/user_profiles?identifier=` would, so the
strongest check here compares it with the server itself: the same lines sent over HTTP give
the same profiles, the same grouping into users, and the same refusals.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .support import Api, Database, cli, fetch_all

ROOT = Path(__file__).resolve().parent.parent
EXIT_REFUSED = 3


def generate(count: int, path: Path, keys: Path | None = None, seed: int = 1) -> None:
    args = [sys.executable, str(ROOT / "bench" / "generate.py"), str(count), str(path),
            "--seed", str(seed)]
    if keys is not None:
        args += ["--keys", str(keys)]
    subprocess.run(args, check=True, timeout=120)


def line(source: str, profile_type: str, *identifiers: tuple[str, object], **extra: object) -> str:
    profile = {"source": source, "type": profile_type,
               "identifiers": [{"type": t, "value": v} for t, v in identifiers], **extra}
    return json.dumps({"profile": profile})


def exported(url: str) -> list[dict]:
    result = cli(url, "export", "-")
    return [json.loads(text)["profile"] for text in result.stdout.splitlines()]


def content(profiles: list[dict]) -> list[tuple]:
    """Profiles without server-chosen ids, keyed by their first identifier."""
    return sorted(
        (p["source"], p["type"], json.dumps(p["identifiers"]), p["name"],
         json.dumps(p["attributes"], sort_keys=True))
        for p in profiles
    )


def grouping(profiles: list[dict]) -> set[frozenset]:
    """Which profiles share a user, whatever the users' ids."""
    by_user: dict[str, set] = {}
    for p in profiles:
        first = p["identifiers"][0]
        by_user.setdefault(p["user_id"], set()).add((p["source"], p["type"], first["type"], first["value"]))
    return {frozenset(members) for members in by_user.values()}


@pytest.fixture
def new_database(engine: str, work_dir: Path) -> Iterator[Callable[[], Database]]:
    made: list[Database] = []

    def make() -> Database:
        database = Database.create(engine, work_dir)
        cli(database.url, "migrate")
        made.append(database)
        return database

    yield make
    for database in made:
        database.drop()


def tricky_lines() -> list[str]:
    """Lines that touch each other's records and stored ones, and lines the rules refuse."""
    return [
        line("shop", "customer", ("email", "Ann@Example.com"), ("external_id", "A-1")),   # 1
        line("crm", "lead", ("email", "ann@example.com"), ("phone_number", "+100")),       # 2 same user
        line("shop", "customer", ("email", "bob@example.com")),                            # 3
        line("shop", "customer", ("email", "ann@example.com"), attributes={"v": 2}),      # 4 replace
        line("app", "device", ("device_id", "d1"), ("email", "ann@example.com"),
             ("email", "bob@example.com")),                                                # 5 two users
        line("shop", "customer", ("email", "carl@example.com"), ("external_id", "a-1")),  # 6 ann's user
        line("shop", "customer", ("email", "dora@example.com"), ("email", "bob@example.com")),  # 7 held
        line("zendesk", "customer", ("email", "eve@example.com")),                         # 8 reserved
        '{"profile": {"source": "shop", "type": "customer"',                               # 9 bad JSON
        line("", "customer", ("email", "fay@example.com")),                                # 10 no source
        line("shop", "customer", *[("loyalty", f"L{i}") for i in range(21)]),              # 11 too many
        line("shop", "customer", ("email", "gus@example.com"), ("external_id", "G-1"),
             ("external_id", "G-2"), name="Gus"),                                          # 12
        line("web", "visitor", ("cookie", "c:1"), ("phone_number", "+100")),              # 13 ann by phone
        line("shop", "customer", ("email", "hal@example.com"), ("external_id", "G-2")),   # 14 gus's
        line("web", "visitor", ("cookie", "c:2"), ("phone_number", 12345)),                # 15 number value
    ]


def test_import_applies_the_rules_of_put_by_identifier(api: Api, new_database: Callable[[], Database],
                                                       tmp_path: Path) -> None:
    texts = tricky_lines()
    lines_path = tmp_path / "tricky.ndjson"
    lines_path.write_text("\n".join(texts) + "\n")
    database = new_database()
    result = cli(database.url, "import", str(lines_path), check=False)
    assert result.returncode == EXIT_REFUSED, result.stderr
    refused = {int(text.split(":")[0].split()[1]): text.split(":")[1].strip()
               for text in result.stderr.splitlines() if text.startswith("line ")}
    assert refused == {
        5: "IdentifiersForMultipleUsers", 7: "IdentifierInUse",
        8: "ReservedSource", 9: "InvalidJson", 10: "InvalidProfile", 11: "TooManyIdentifiers",
        14: "IdentifierInUse",
    }
    assert result.stdout.strip() == "created 7, replaced 1, refused 7"

    # The same lines through the server: a fresh source and type per line keep it apart from
    # the other tests sharing the server, so prefix them.
    prefix = f"t{random.randrange(10**8)}"
    with api.client() as client:
        statuses = {}
        for number, text in enumerate(texts, start=1):
            try:
                profile = json.loads(text)["profile"]
            except json.JSONDecodeError:
                continue
            if not profile["source"] or profile["source"] == "zendesk":
                continue
            profile["source"] = prefix + profile["source"]
            profile["identifiers"] = [
                {**i, "value": f"{prefix}{i['value']}" if isinstance(i["value"], str)
                 else int(prefix[1:]) * 1000 + i["value"] % 1000}
                for i in profile["identifiers"]
            ]
            first = profile["identifiers"][0]
            query = f"{profile['source']}:{profile['type']}:{first['type']}:{first['value']}"
            response = client.put(f"/api/v2/user_profiles?identifier={quote(query, safe='')}",
                                  json={"profile": profile})
            statuses[number] = response.status_code if response.status_code < 400 \
                else response.json()["errors"][0]["code"]
    assert {n: s for n, s in statuses.items() if isinstance(s, str)} == {
        n: code for n, code in refused.items() if n in statuses
    }
    assert sum(1 for s in statuses.values() if s == 201) == 7
    assert sum(1 for s in statuses.values() if s == 200) == 1

    imported = exported(database.url)
    assert len(imported) == 7
    by_first = {(p["source"], p["identifiers"][0]["value"]): p for p in imported}
    ann = by_first[("shop", "ann@example.com")]
    assert ann["attributes"] == {"v": 2} and ann["identifiers"] == [
        {"type": "email", "value": "ann@example.com"}]
    assert by_first[("crm", "ann@example.com")]["user_id"] == ann["user_id"]
    assert by_first[("web", "c:1")]["user_id"] == ann["user_id"]
    assert by_first[("shop", "carl@example.com")]["user_id"] == ann["user_id"]
    assert by_first[("web", "c:2")]["identifiers"][1] == {"type": "phone_number", "value": "12345"}
    assert by_first[("shop", "gus@example.com")]["name"] == "Gus"


def test_refused_lines_leave_nothing_behind(new_database: Callable[[], Database],
                                             tmp_path: Path) -> None:
    database = new_database()
    path = tmp_path / "partial.ndjson"
    path.write_text("\n".join([
        line("shop", "customer", ("email", "a@example.com")),
        line("shop", "customer", ("email", "b@example.com")),
        # Would create an identity for the new phone number before meeting b's email.
        line("crm", "lead", ("phone_number", "+999"), ("email", "a@example.com"),
             ("email", "b@example.com")),
        line("crm", "lead", ("phone_number", "+999")),
    ]) + "\n")
    result = cli(database.url, "import", str(path), check=False)
    assert result.returncode == EXIT_REFUSED
    assert "line 3: IdentifiersForMultipleUsers" in result.stderr
    profiles = exported(database.url)
    # The phone number went to a new, third user: line 3 gave it to no one.
    assert len({p["user_id"] for p in profiles}) == 3
    assert [p["identifiers"][0]["value"] for p in profiles if p["source"] == "crm"] == ["+999"]


def test_export_then_import_into_an_empty_database_gives_the_same_profiles(
    new_database: Callable[[], Database], tmp_path: Path
) -> None:
    source = new_database()
    generate(3000, tmp_path / "gen.ndjson")
    extra = tmp_path / "extra.ndjson"
    extra.write_text("\n".join(tricky_lines()) + "\n")
    assert cli(source.url, "import", str(tmp_path / "gen.ndjson")).stdout.startswith("created 3000,")
    cli(source.url, "import", str(extra), check=False)
    first = cli(source.url, "export", str(tmp_path / "first.ndjson"))
    assert first.stderr.strip() == "exported 3007"

    copy = new_database()
    result = cli(copy.url, "import", str(tmp_path / "first.ndjson"))
    assert result.stdout.strip() == "created 3007, replaced 0, refused 0"
    second = cli(copy.url, "export", "-").stdout
    assert second == (tmp_path / "first.ndjson").read_text()

    # Importing it again replaces every profile with itself.
    again = cli(copy.url, "import", str(tmp_path / "first.ndjson"))
    assert again.stdout.strip() == "created 0, replaced 3007, refused 0"
    assert cli(copy.url, "export", "-").stdout == second


def test_import_reads_standard_input(new_database: Callable[[], Database]) -> None:
    database = new_database()
    text = "\n".join([line("shop", "customer", ("email", "in@example.com")), "", "{}"]) + "\n"
    result = cli(database.url, "import", "-", input=text, check=False)
    assert result.returncode == EXIT_REFUSED
    assert result.stdout.strip() == "created 1, replaced 0, refused 1"
    assert result.stderr.strip() == 'line 3: InvalidProfile: A line must be a JSON object {"profile": {...}}.'


def test_an_unreadable_file_is_a_one_line_error(tmp_path: Path) -> None:
    result = cli(f"sqlite:///{tmp_path / 'x.db'}", "import", str(tmp_path / "missing.ndjson"),
                 check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot read {tmp_path / 'missing.ndjson'}: No such file or directory"]


def test_a_line_naming_a_taken_profile_id_is_refused(new_database: Callable[[], Database],
                                                     tmp_path: Path) -> None:
    database = new_database()
    path = tmp_path / "ids.ndjson"
    path.write_text("\n".join([
        line("shop", "customer", ("email", "a@example.com"), id="01HZZZZZZZZZZZZZZZZZZZZZZZ",
             user_id="77"),
        line("shop", "customer", ("email", "b@example.com"), id="01HZZZZZZZZZZZZZZZZZZZZZZZ"),
        line("shop", "customer", ("email", "c@example.com"), id="not-an-id"),
        line("shop", "customer", ("email", "d@example.com"), user_id="77"),
    ]) + "\n")
    result = cli(database.url, "import", str(path), check=False)
    assert result.returncode == EXIT_REFUSED
    assert [text.split(":")[:2] for text in result.stderr.splitlines()] == [
        ["line 2", " ProfileIdInUse"], ["line 3", " InvalidProfile"]]
    profiles = {p["identifiers"][0]["value"]: p for p in exported(database.url)}
    assert profiles["a@example.com"]["id"] == "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    assert profiles["a@example.com"]["user_id"] == profiles["d@example.com"]["user_id"] == "77"


@pytest.mark.slow
# One engine is enough for the large file; the rules themselves are tested on both.
@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_file_of_100000_profiles(fresh_api: Callable[..., Api], tmp_path: Path,
                                   engine: str) -> None:
    api = fresh_api()
    generate(100_000, tmp_path / "big.ndjson", tmp_path / "keys.txt", seed=7)
    result = cli(api.database_url, "import", str(tmp_path / "big.ndjson"))
    assert result.stdout.strip() == "created 100000, replaced 0, refused 0"
    lines = (tmp_path / "big.ndjson").read_text().splitlines()
    keys = (tmp_path / "keys.txt").read_text().splitlines()
    with api.client() as client:
        for index in random.Random(3).sample(range(len(lines)), 25):
            response = client.get(f"/api/v2/user_profiles?identifier={quote(keys[index], safe='')}")
            assert response.status_code == 200
            expected = json.loads(lines[index])["profile"]
            got = response.json()["profile"]
            assert (got["source"], got["type"], got["attributes"]) == (
                expected["source"], expected["type"], expected["attributes"])
            assert got["identifiers"][: len(expected["identifiers"])] == expected["identifiers"]
    exported_lines = cli(api.database_url, "export", "-").stdout.count("\n")
    assert exported_lines == 100_000


def test_batches_parsed_in_a_second_process_give_what_one_batch_gives(
    new_database: Callable[[], Database], tmp_path: Path
) -> None:
    # From the second batch on, lines are checked and drafted in a parsing process: with
    # batches of four lines, nearly every line crosses from it.
    texts = [*tricky_lines(),
             line("shop", "customer", ("email", "huge@example.com"),
                  attributes={"x": "a" * 70_000}),                                  # 16 too large
             line("shop", "customer", ("email", "big@example.com"),
                  attributes={"n": 123456789012345678901234567890, "f": 0.1}),      # 17 big int
             line("shop", "customer", ("email", "uni@example.com"), name="Zoë 😀")]  # 18
    path = tmp_path / "lines.ndjson"
    path.write_text("\n".join(texts) + "\n")
    whole, batched = new_database(), new_database()
    one = cli(whole.url, "import", str(path), check=False)
    many = cli(batched.url, "import", "--batch-size", "4", str(path), check=False)
    assert one.returncode == many.returncode == EXIT_REFUSED
    assert many.stdout == one.stdout == "created 9, replaced 1, refused 8\n"
    assert many.stderr == one.stderr
    assert "line 16: AttributesTooLarge: Attributes are at most" in many.stderr
    assert content(exported(batched.url)) == content(exported(whole.url))
    assert grouping(exported(batched.url)) == grouping(exported(whole.url))
    big = next(p for p in exported(batched.url) if p["identifiers"][0]["value"] == "big@example.com")
    assert big["attributes"] == {"n": 123456789012345678901234567890, "f": 0.1}


def test_lines_joining_stored_users_are_applied_as_one_by_one(
    new_database: Callable[[], Database], tmp_path: Path
) -> None:
    # Batches of one line each meet only stored users, which a batch joins in bulk; one batch
    # of every line meets its own lines, which go through the service one by one. Both must
    # end the same: identities and external ids gained, profile limits, refusals.
    texts = [
        line("shop", "customer", ("email", "z1@example.com")),                       # 1-4 kinds
        line("crm", "contact", ("email", "z2@example.com")),
        line("app", "device", ("device_id", "z3")),
        line("web", "visitor", ("cookie", "z4")),
        line("shop", "customer", ("email", "a@example.com")),                        # 5 user A
        line("shop", "customer", ("email", "b@example.com")),                        # 6 user B
        line("crm", "contact", ("external_id", "X-A"), ("email", "A@Example.com"),
             ("phone_number", "+1")),                                                 # 7 A gains X-A, +1
        line("app", "device", ("device_id", "d-a"), ("phone_number", "+1")),         # 8 A by phone
        line("web", "visitor", ("external_id", "x-a")),                               # 9 A: over limit
        line("crm", "contact", ("external_id", "X-B"), ("email", "b@example.com")),  # 10 B gains X-B
        line("app", "device", ("device_id", "d-c"), ("external_id", "X-B"),
             ("twitter", "@c")),                                                      # 11 B, gains @c
        line("web", "visitor", ("cookie", "c1"), ("twitter", "@C")),                  # 12 B: over limit
        line("web", "visitor", ("cookie", "c2"), ("email", "z1@example.com"),
             ("email", "z2@example.com")),                                            # 13 two users
        line("web", "visitor", ("cookie", "c3"), ("email", "z1@example.com")),        # 14 z1's user
        line("web", "visitor", ("cookie", "c4"), ("email", "z2@example.com"),
             ("device_id", "z3")),                                                    # 15 z2's user
        line("shop", "customer", ("email", "z1@example.com"), attributes={"v": 1}),  # 16 replace
    ]
    path = tmp_path / "joining.ndjson"
    path.write_text("\n".join(texts) + "\n")
    limit = {"OPENPROFILES_MAX_PROFILES_PER_USER": "3"}
    alone, together = new_database(), new_database()
    one_by_one = cli(alone.url, "import", "--batch-size", "1", str(path), check=False, env=limit)
    as_one = cli(together.url, "import", str(path), check=False, env=limit)
    assert one_by_one.returncode == as_one.returncode == EXIT_REFUSED
    assert one_by_one.stdout == as_one.stdout == "created 12, replaced 1, refused 3\n"
    assert one_by_one.stderr == as_one.stderr
    assert [text.split(":")[:2] for text in one_by_one.stderr.splitlines()] == [
        ["line 9", " ProfileLimitExceeded"], ["line 12", " ProfileLimitExceeded"],
        ["line 13", " IdentifiersForMultipleUsers"]]
    assert content(exported(alone.url)) == content(exported(together.url))
    assert grouping(exported(alone.url)) == grouping(exported(together.url))
    by_first = {(p["source"], p["identifiers"][0]["value"]): p["user_id"] for p in exported(alone.url)}
    assert by_first[("shop", "a@example.com")] == by_first[("crm", "X-A")] == by_first[("app", "d-a")]
    assert by_first[("shop", "b@example.com")] == by_first[("crm", "X-B")] == by_first[("app", "d-c")]
    assert by_first[("shop", "z1@example.com")] == by_first[("web", "c3")]
    assert by_first[("crm", "z2@example.com")] == by_first[("web", "c4")] != by_first[("app", "z3")]


def test_a_line_meeting_the_line_just_before_it_in_the_batch_before(
    new_database: Callable[[], Database], tmp_path: Path
) -> None:
    # Batches are checked ahead of the writes, and on SQLite the stored identifiers are
    # looked up ahead too: the batch just written is not among them, and must still count.
    texts = []
    for n in range(30):
        texts += [
            line("shop", "customer", ("email", f"a{n}@example.com"), attributes={"v": 1}),
            line("shop", "customer", ("email", f"a{n}@example.com"), attributes={"v": 2}),
            line("shop", "customer", ("email", f"b{n}@example.com")),
            # Joins b's user by the identity just given, and gives it an external id...
            line("crm", "contact", ("phone_number", f"+{n}"), ("email", f"b{n}@example.com"),
                 ("external_id", f"B{n}")),
            # ...by which this one joins it too.
            line("web", "visitor", ("cookie", f"w{n}"), ("external_id", f"b{n}")),
        ]
    path = tmp_path / "pairs.ndjson"
    path.write_text("\n".join(texts) + "\n")
    database = new_database()
    result = cli(database.url, "import", "--batch-size", "1", str(path))
    assert result.stdout == "created 120, replaced 30, refused 0\n"
    profiles = exported(database.url)
    assert {p["attributes"].get("v") for p in profiles if p["source"] == "shop"} == {2, None}
    assert len(grouping(profiles)) == 60


def test_an_sqlite_file_whose_path_has_characters_a_uri_reserves(tmp_path: Path) -> None:
    # From the second batch on, another process opens the file by a URI, read-only.
    folder = tmp_path / "odd #1 %41 ?"
    folder.mkdir()
    url = f"sqlite:///{folder / 'profiles db.sqlite'}"
    cli(url, "migrate")
    generate(3000, tmp_path / "lines.ndjson")
    result = cli(url, "import", "--batch-size", "500", str(tmp_path / "lines.ndjson"))
    assert result.stdout == "created 3000, replaced 0, refused 0\n"
    again = cli(url, "import", "--batch-size", "500", str(tmp_path / "lines.ndjson"))
    assert again.stdout == "created 0, replaced 3000, refused 0\n"


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_an_import_killed_midway_keeps_whole_batches_and_can_be_run_again(
    new_database: Callable[[], Database], tmp_path: Path, engine: str
) -> None:
    # Batches commit without waiting for the disk until the import ends: a killed import
    # still leaves each batch whole or absent, and running it again completes it.
    import sqlite3
    import time

    from .support import OPENPROFILES

    database = new_database()
    generate(30_000, tmp_path / "lines.ndjson")
    path = database.url.removeprefix("sqlite:///")
    started = subprocess.Popen(
        [*OPENPROFILES, "import", "--database", database.url, "--batch-size", "500",
         str(tmp_path / "lines.ndjson")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def count() -> int:
        with sqlite3.connect(path) as reader:
            return int(reader.execute("SELECT COUNT(*) FROM profiles").fetchone()[0])

    deadline = time.monotonic() + 60
    while count() < 2000 and started.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    started.kill()
    started.communicate()
    kept = count()
    assert kept % 500 == 0 and 0 < kept < 30_000
    with sqlite3.connect(path) as reader:
        assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        identifiers = reader.execute(
            "SELECT COUNT(DISTINCT profile_id) FROM profile_identifiers").fetchone()[0]
        orphans = reader.execute(
            "SELECT COUNT(*) FROM profiles p WHERE NOT EXISTS"
            " (SELECT 1 FROM users u WHERE u.account_id = p.account_id AND u.id = p.user_id)"
        ).fetchone()[0]
    assert identifiers == kept and orphans == 0
    again = cli(database.url, "import", str(tmp_path / "lines.ndjson"))
    assert again.stdout.strip() == f"created {30_000 - kept}, replaced {kept}, refused 0"
    assert count() == 30_000


def test_parsed_batches_cross_processes_unchanged() -> None:
    from openprofiles.service.bulk.drafts import parse_batch
    from openprofiles.service.bulk.parsing_process import _pack, _unpack

    raw = [(n, text.encode()) for n, text in enumerate(tricky_lines(), start=1)]
    raw.append((99, line("s", "t", ("email", "x@example.com"), attributes={"n": 2**70}).encode()))
    parsed = parse_batch(raw)
    assert [r.line for r in parsed.refusals] == [8, 9, 10]
    assert [d.number for d in parsed.drafts if d.refusal is not None] == [11]  # too many identifiers
    assert _unpack(_pack(parsed)) == parsed  # with an integer beyond 64 bits in attributes
    big = parsed.drafts[-1]
    assert big.attributes == '{"n":1180591620717411303424}'
    # A line sharing a key with an earlier one, or holding two external ids, needs the service.
    assert [d.number for d in parsed.drafts if d.needs_service] == [2, 4, 5, 6, 7, 12, 13, 14]


def test_a_batch_whose_lookahead_went_stale_is_looked_up_again(tmp_path: Path) -> None:
    # The parsing process looks stored keys up before the batch is written; a server may take
    # one of them meanwhile. Here the lookahead says nothing is stored, though the profile and
    # the user's identity are: the first attempt meets their keys, the store runs the batch
    # again, and that attempt looks them up itself.
    import asyncio

    from openprofiles.domain.identifiers import IdentifierQuery
    from openprofiles.domain.limits import Limits
    from openprofiles.domain.profile import parse_profile_input
    from openprofiles.service import profiles
    from openprofiles.service.bulk import drafts, importing, writing
    from openprofiles.service.users import DEFAULT_ACCOUNT_ID
    from openprofiles.store.migrate import upgrade
    from openprofiles.store.sqlite import SqliteStore
    from openprofiles.store.urls import DatabaseUrl

    path = str(tmp_path / "stale.db")
    upgrade(DatabaseUrl.parse(f"sqlite:///{path}"))
    raw = [(1, line("shop", "customer", ("email", "taken@example.com"), attributes={"v": 2}).encode()),
           (2, line("crm", "contact", ("external_id", "K-1"), ("email", "taken@example.com")).encode()),
           (3, line("shop", "customer", ("email", "free@example.com")).encode())]

    async def scenario() -> tuple[writing.BatchResult, list[tuple[object, ...]]]:
        store = SqliteStore(path)
        try:
            for source in ("shop", "crm"):  # both kinds known, so no line needs the service
                await profiles.put_by_query(
                    store, DEFAULT_ACCOUNT_ID, Limits(),
                    IdentifierQuery.parse(f"{source}:{'customer' if source == 'shop' else 'contact'}"
                                          f":email:seed-{source}@example.com"),
                    parse_profile_input({}))
            await profiles.put_by_query(
                store, DEFAULT_ACCOUNT_ID, Limits(),
                IdentifierQuery.parse("shop:customer:email:taken@example.com"),
                parse_profile_input({"attributes": {"v": 1}}))
            parsed = drafts.parse_batch(raw)
            parsed.holders = drafts.Holders([], [], [])
            parsed.again = drafts.Lookups([], [], [])
            result = await store.write(DEFAULT_ACCOUNT_ID, importing.batch_unit(Limits(), raw, parsed))
            rows = await store.read(DEFAULT_ACCOUNT_ID, lambda tx: tx.driver.fetch(  # type: ignore[attr-defined]
                "SELECT source, attributes, user_id FROM profiles ORDER BY source, created_at"))
            return result, [tuple(row) for row in rows]
        finally:
            await store.close()

    result, rows = asyncio.run(scenario())
    assert (result.created, result.replaced, result.refusals) == (2, 1, [])
    taken = [r for r in rows if r[0] == "shop" and r[1] == '{"v":2}']
    linked = [r for r in rows if r[0] == "crm" and r[2] == taken[0][2]]
    assert len(taken) == 1 and len(linked) == 1


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_postgresql_counts_the_imported_tables_as_the_import_goes(
    new_database: Callable[[], Database], tmp_path: Path, engine: str
) -> None:
    """The planner's row counts come from sampling the tables: an import has them sampled
    after its 1st, 2nd, 4th... batch and at its end, so that its lookups of later batches, and
    the server after it, are not planned for the empty tables the import began with."""
    import psycopg

    database = new_database()
    generate(2500, tmp_path / "gen.ndjson")
    result = cli(database.url, "import", "--batch-size", "1000", str(tmp_path / "gen.ndjson"))
    assert result.stdout.startswith("created 2500,")
    with psycopg.connect(database.url) as connection:
        tables = ("users", "user_identities", "profiles", "profile_identifiers")
        for table in tables:
            counted, rows, analyses = connection.execute(
                f"SELECT (SELECT COUNT(*) FROM {table}), c.reltuples, s.analyze_count"
                " FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid"
                " WHERE c.relname = %s", (table,),
            ).fetchone()
            # Small tables are read whole: the count is exact.
            assert (rows, analyses) == (counted, 3), table


def _kinds(url: str) -> set[tuple[str, str]]:
    """The sources and types the account has registered, which its limits count."""
    return {(str(source), str(kind))
            for source, kind in fetch_all(url, "SELECT source, type FROM profile_kinds")}


def test_sources_and_types_new_to_the_account_are_counted_as_the_server_counts_them(
    new_database: Callable[[], Database], tmp_path: Path
) -> None:
    """A batch whose new sources and types all fit the account's limits registers those of the
    profiles it creates, and only those; one whose new ones do not fit refuses the lines past
    the limit, in file order, as the server would."""
    database = new_database()
    path = tmp_path / "kinds.ndjson"
    path.write_text("\n".join([
        line("s1", "t1", ("email", "a@example.com")),
        line("s2", "t2", ("email", "b@example.com"), attributes={"big": "x" * 70_000}),
        line("s1", "t3", ("email", "c@example.com")),
    ]) + "\n")
    result = cli(database.url, "import", str(path), check=False)
    assert result.returncode == EXIT_REFUSED
    assert result.stderr.strip().startswith("line 2: AttributesTooLarge")
    assert _kinds(database.url) == {("s1", "t1"), ("s1", "t3")}
    # s2's type was refused with its line: another source still fits a limit of two.
    path.write_text("\n".join([
        line("s3", "t1", ("email", "d@example.com")),
        line("s4", "t1", ("email", "e@example.com")),
        line("s1", "t4", ("email", "f@example.com")),
    ]) + "\n")
    result = cli(database.url, "import", str(path), check=False,
                 env={"OPENPROFILES_MAX_SOURCES": "2", "OPENPROFILES_MAX_TYPES": "4"})
    assert result.returncode == EXIT_REFUSED
    assert result.stdout.strip() == "created 2, replaced 0, refused 1"
    assert [text.split(":")[0:2] for text in result.stderr.strip().splitlines()] == [
        ["line 2", " LimitExceeded"]]
    assert _kinds(database.url) == {("s1", "t1"), ("s1", "t3"), ("s3", "t1"), ("s1", "t4")}
    # The account now uses four types: as many as a limit of four allows.
    created = cli(database.url, "import", "-", input=line("s1", "t9", ("email", "g@example.com")),
                  check=False, env={"OPENPROFILES_MAX_TYPES": "4"})
    assert created.stderr.strip().startswith("line 1: LimitExceeded")


def _stored_for_lookahead(tmp_path: Path) -> str:
    """An SQLite file holding the records of `tricky_lines`, for the parsing process's lookups."""
    path = tmp_path / "held.db"
    source = tmp_path / "held.ndjson"
    source.write_text("\n".join(tricky_lines()) + "\n")
    cli(f"sqlite:///{path}", "migrate")
    cli(f"sqlite:///{path}", "import", str(source), check=False)
    return str(path)


def test_the_lookahead_looks_up_only_keys_it_may_have_met(tmp_path: Path) -> None:
    # Into a file that held few keys when the import began, the parsing process looks up only
    # the keys it has met: those stored then, and those of the batches before. What it finds
    # is what looking up every key finds.
    from openprofiles.service.bulk import drafts as drafting
    from openprofiles.store.batch import CommittedKeys

    class Counted(CommittedKeys):
        asked = 0

        def _lookup(self, sql: str, rows: Any) -> list[Any]:
            self.asked += len(rows)
            return super()._lookup(sql, rows)

    path = _stored_for_lookahead(tmp_path)
    filtered, every = drafting.Lookahead(Counted(path, 1)), drafting.Lookahead(Counted(path, 1))
    assert filtered.seen is not None
    every.seen = None
    batches = [
        [line("shop", "customer", ("email", "ann@example.com")),       # stored
         line("web", "visitor", ("cookie", "new-1"), ("external_id", "g-1")),  # cookie new, G-1 stored
         line("crm", "lead", ("email", "new-1@example.com"))],        # new
        [line("crm", "lead", ("email", "new-1@example.com"), ("phone_number", "+200")),  # batch before
         line("app", "device", ("device_id", "new-2"))],              # new
        [line("app", "device", ("device_id", "new-2")),                # two batches before
         line("web", "visitor", ("cookie", "c:1"), ("phone_number", "+100"))],  # stored
    ]
    kept: list[int] = []
    for texts in batches:
        drafts = drafting.parse_batch([(n, text.encode()) for n, text in enumerate(texts, 1)]).drafts
        before = filtered.committed.asked  # type: ignore[attr-defined]
        (found, again), (all_found, all_again) = filtered.look_up(drafts), every.look_up(drafts)
        for ours, theirs in ((found, all_found), (again, all_again)):
            for field in ("identifiers", "identities", "external_ids"):
                assert sorted(getattr(ours, field)) == sorted(getattr(theirs, field)), field
        kept.append(filtered.committed.asked - before)  # type: ignore[attr-defined]
        assert found.identifiers or found.identities or found.external_ids or texts is batches[1]
    # Keys asked: batch 1 ann's identifier and identity and G-1's external id (3 of 7); batch 2
    # new-1's identifier and identity (2 of 5); batch 3 new-2's identifier, the visitor's two
    # identifiers and the identity of +100 (4 of 4).
    assert kept == [3, 2, 4]
    assert every.committed.asked == 16  # type: ignore[attr-defined]


def test_the_lookahead_looks_every_key_up_in_a_file_holding_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openprofiles.service.bulk import drafts
    from openprofiles.store.batch import CommittedKeys

    path = _stored_for_lookahead(tmp_path)
    held = CommittedKeys(path, 1).every_key(1_000)
    assert held is not None and ("shop", "customer", "email", "ann@example.com") in held
    assert ("email", "ann@example.com") in held and "a-1" in held
    monkeypatch.setattr(drafts, "_PRELOADED_KEYS", len(held) - 1)
    assert drafts.Lookahead(CommittedKeys(path, 1)).seen is None
    monkeypatch.setattr(drafts, "_PRELOADED_KEYS", len(held))
    assert drafts.Lookahead(CommittedKeys(path, 1)).seen is not None


def test_the_lookahead_looks_again_at_the_keys_of_every_unwritten_batch(tmp_path: Path) -> None:
    # Each batch is looked up while the batches parsed before it may not be written yet: as
    # many of them as the parsing process runs ahead. A key one of those holds is looked up
    # again when the batch is written, however many batches back it was.
    from openprofiles.service.bulk import drafts as drafting
    from openprofiles.store.batch import CommittedKeys

    path = _stored_for_lookahead(tmp_path)
    batches = [
        [line("crm", "lead", ("email", "first@example.com"))],
        [line("app", "device", ("device_id", "between"))],
        [line("crm", "lead", ("email", "first@example.com"), ("phone_number", "+400"))],
    ]

    def again_of_last(unwritten: int) -> drafting.Lookups:
        lookahead = drafting.Lookahead(CommittedKeys(path, 1), unwritten)
        for texts in batches:
            drafts = drafting.parse_batch([(n, t.encode()) for n, t in enumerate(texts, 1)]).drafts
            _, again = lookahead.look_up(drafts)
        return again

    two_back = again_of_last(2)
    assert [row[:4] for row in two_back.identifiers] == [("crm", "lead", "email", "first@example.com")]
    assert [row[:2] for row in two_back.identities] == [("email", "first@example.com")]
    one_back = again_of_last(1)
    assert one_back.identifiers == [] and one_back.identities == []


def test_a_key_written_by_another_process_after_the_lookahead_began(tmp_path: Path) -> None:
    # The parsing process met the key nowhere, so it did not look it up; a server wrote it
    # meanwhile. The batch's insert meets it, and the batch runs again with every key looked
    # up: the line replaces the server's profile rather than failing or duplicating it.
    import asyncio

    from openprofiles.domain.identifiers import IdentifierQuery
    from openprofiles.domain.limits import Limits
    from openprofiles.domain.profile import parse_profile_input
    from openprofiles.service import profiles
    from openprofiles.service.bulk import drafts, importing, writing
    from openprofiles.service.users import DEFAULT_ACCOUNT_ID
    from openprofiles.store.batch import CommittedKeys
    from openprofiles.store.sqlite import SqliteStore

    path = _stored_for_lookahead(tmp_path)
    lookahead = drafts.Lookahead(CommittedKeys(path, DEFAULT_ACCOUNT_ID))
    raw = [(1, line("shop", "customer", ("email", "late@example.com"), attributes={"v": 2}).encode()),
           (2, line("crm", "lead", ("phone_number", "+300"), ("email", "late@example.com")).encode())]

    async def scenario() -> tuple[writing.BatchResult, list[tuple[object, ...]]]:
        store = SqliteStore(path)
        try:
            await profiles.put_by_query(
                store, DEFAULT_ACCOUNT_ID, Limits(),
                IdentifierQuery.parse("shop:customer:email:late@example.com"),
                parse_profile_input({"attributes": {"v": 1}}))
            parsed = drafts.parse_batch(raw, lookahead)
            assert parsed.holders == drafts.Holders([], [], [])  # not looked up
            result = await store.write(DEFAULT_ACCOUNT_ID, importing.batch_unit(Limits(), raw, parsed))
            rows = await store.read(DEFAULT_ACCOUNT_ID, lambda tx: tx.driver.fetch(  # type: ignore[attr-defined]
                "SELECT p.source, p.attributes, p.user_id FROM profiles p JOIN profile_identifiers i"
                " ON i.profile_id = p.id WHERE i.value IN ('late@example.com', '+300')"
                " ORDER BY p.source"))
            return result, [tuple(row) for row in rows]
        finally:
            await store.close()

    result, rows = asyncio.run(scenario())
    assert (result.created, result.replaced, result.refusals) == (1, 1, [])
    (crm, _, crm_user), (shop, attributes, shop_user) = rows[0], rows[-1]
    assert (crm, shop, attributes) == ("crm", "shop", '{"v":2}') and crm_user == shop_user
    assert len({row[:2] for row in rows}) == 2


def test_the_parsing_process_copies_the_log_once_it_is_nearly_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parsing process's own function, called here: once the log holds `_COPY_AT` pages,
    # parsing a batch starts a copy of it into the file; the writing connection copies nothing.
    import os
    import sqlite3

    from openprofiles.service.bulk import parsing_process
    from openprofiles.service.users import DEFAULT_ACCOUNT_ID
    from openprofiles.store.batch import log_state

    path = tmp_path / "copied.db"
    cli(f"sqlite:///{path}", "migrate")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE filler (n INTEGER PRIMARY KEY, text TEXT)")
    monkeypatch.setattr(parsing_process, "_COPY_AT", 200)
    batch = [(1, line("shop", "customer", ("email", "one@example.com")).encode())]
    sizes = []
    for _ in range(3):
        writer.executemany("INSERT INTO filler (text) VALUES (?)", [("x" * 1000,)] * 400)
        parsing_process._parse_packed(batch, (str(path), DEFAULT_ACCOUNT_ID))
        copier = parsing_process._copiers[str(path)]
        copier.wait()
        sizes.append((log_state(str(path))[1], copier.copies, os.path.getsize(path)))
    (first_log, first, first_size), _, (_, last, last_size) = sizes
    assert first_log > 200 and first == 1 and last == 3
    assert last_size > 3 * 400 * 1000  # every committed page reached the file
    with sqlite3.connect(path) as reader:
        assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    writer.close()
