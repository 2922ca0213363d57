"""Writes of one group that may run in one go (`Together`): the group's run settles some, the
units of the others run after it, and a run that fails leaves nothing and hands its writes to
their units."""

from __future__ import annotations

import sqlite3
from typing import Any

from openprofiles.store.base import Together
from openprofiles.store.sql import SqlTransaction

from .writes import ACCOUNT, in_one_group

_INSERT = "INSERT INTO event_kinds (account_id, source, type) VALUES ($1, $2, 'seen')"


def _kinds(path: str) -> list[str]:
    with sqlite3.connect(path) as other_process:
        rows = other_process.execute("SELECT source FROM event_kinds ORDER BY source").fetchall()
    return [row[0] for row in rows]


class _Group:
    """A group's run that inserts the items it settles (those not in `leave`), and may fail
    before or after inserting."""

    def __init__(self, leave: frozenset[str] = frozenset(), fail: str | None = None) -> None:
        self.leave, self.fail = leave, fail
        self.calls: list[list[str]] = []

    async def run(self, tx: SqlTransaction, items: list[str]) -> list[str | None]:
        self.calls.append(list(items))
        if self.fail == "before writing":
            raise RuntimeError("refused before writing")
        settled = [item for item in items if item not in self.leave]
        for item in settled:
            await tx.driver.execute(_INSERT, tx.account_id, item)
        if self.fail == "after writing":
            raise RuntimeError("refused after writing")
        return [f"together:{item}" if item in settled else None for item in items]


def _write(group: _Group, item: str, seen_by_unit: list[tuple[str, list[str]]]) -> Any:
    async def unit(tx: SqlTransaction) -> str:
        rows = await tx.driver.fetch("SELECT source FROM event_kinds ORDER BY source")
        seen_by_unit.append((item, [row[0] for row in rows]))
        await tx.driver.execute(_INSERT, tx.account_id, item)
        return f"alone:{item}"

    return lambda store: store.write(ACCOUNT, unit, together=Together(group.run, item))


def test_the_group_runs_first_and_the_writes_it_leaves_run_alone_after(path: str) -> None:
    group, seen = _Group(leave=frozenset("b")), []
    outcomes = in_one_group(path, *(_write(group, item, seen) for item in "abc"))
    assert group.calls == [["a", "b", "c"]]
    assert outcomes == ["together:a", "alone:b", "together:c"]
    assert seen == [("b", ["a", "c"])]  # the unit saw the group's rows
    assert _kinds(path) == ["a", "b", "c"]


def test_a_group_that_fails_after_writing_leaves_nothing_and_each_write_runs_alone(path: str) -> None:
    group, seen = _Group(fail="after writing"), []
    outcomes = in_one_group(path, *(_write(group, item, seen) for item in "abc"))
    # Bare, then again in a savepoint: both attempts failed and were undone.
    assert group.calls == [["a", "b", "c"], ["a", "b", "c"]]
    assert outcomes == ["alone:a", "alone:b", "alone:c"]
    assert seen == [("a", []), ("b", ["a"]), ("c", ["a", "b"])]
    assert _kinds(path) == ["a", "b", "c"]


def test_a_group_that_fails_before_writing_hands_its_writes_to_their_units(path: str) -> None:
    group, seen = _Group(fail="before writing"), []
    outcomes = in_one_group(path, *(_write(group, item, seen) for item in "ab"))
    assert group.calls == [["a", "b"]]
    assert outcomes == ["alone:a", "alone:b"]
    assert _kinds(path) == ["a", "b"]


def test_each_kind_of_group_runs_once_with_its_own_items(path: str) -> None:
    first, second, seen = _Group(), _Group(), []
    outcomes = in_one_group(
        path, _write(first, "a", seen), _write(second, "b", seen), _write(first, "c", seen),
    )
    assert first.calls == [["a", "c"]] and second.calls == [["b"]]
    assert outcomes == ["together:a", "together:b", "together:c"]
    assert seen == []


def test_each_account_runs_its_own_group(path: str) -> None:
    accounts: list[tuple[int, list[str]]] = []

    async def run(tx: SqlTransaction, items: list[str]) -> list[str | None]:
        accounts.append((tx.account_id, list(items)))
        return [f"{tx.account_id}:{item}" for item in items]

    def write(account_id: int, item: str) -> Any:
        async def unit(tx: SqlTransaction) -> str:
            raise AssertionError("settled by the group")

        return lambda store: store.write(account_id, unit, together=Together(run, item))

    outcomes = in_one_group(path, write(1, "a"), write(2, "b"), write(1, "c"))
    assert sorted(accounts) == [(1, ["a", "c"]), (2, ["b"])]
    assert outcomes == ["1:a", "2:b", "1:c"]
