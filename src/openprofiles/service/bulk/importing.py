"""An import from end to end: batches read, parsed, written, and their outcomes reported."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

import msgspec

from ...domain.limits import Limits
from ...store.base import Store, Transaction
from ...store.batch import finish_import, prepare_for_import, refresh_statistics
from .drafts import Parsed
from .lines import Refusal
from .parsing_process import parsed_batches
from .writing import BatchResult, apply_batch


def read_batches(stream: IO[bytes], size: int) -> Iterator[tuple[list[tuple[int, bytes]], int]]:
    """Numbered non-blank lines, `size` at a time, with the bytes read so far."""
    batch: list[tuple[int, bytes]] = []
    consumed = 0
    for number, raw in enumerate(stream, start=1):
        consumed += len(raw)
        if raw.strip():
            batch.append((number, raw))
        if len(batch) >= size:
            yield batch, consumed
            batch = []
    if batch:
        yield batch, consumed


@dataclass
class ImportTotals:
    created: int = 0
    replaced: int = 0
    refused: int = 0


async def import_lines(
    store: Store, account_id: int, limits: Limits, batches: Iterable[tuple[list[tuple[int, bytes]], int]],
    *, on_refusal: Callable[[Refusal], None], on_progress: Callable[[int], None],
) -> ImportTotals:
    """Applies every batch in its own transaction; reports refusals once a batch is committed."""
    totals = ImportTotals()
    prepare_for_import(store)
    # Each line makes dozens of short-lived objects, which by default sets the collector off
    # every few lines, and its full passes walk every module loaded at start. Setting those
    # objects aside and collecting less often takes a quarter off the import's CPU time; cycles
    # are still collected, so memory stays flat.
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        await _import(store, account_id, limits, batches, totals, on_refusal, on_progress)
    finally:
        finish_import(store)
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    return totals


def batch_unit(
    limits: Limits, raw: list[tuple[int, bytes]], parsed: Parsed
) -> Callable[[Transaction], Awaitable[BatchResult]]:
    """The unit of work that applies a batch. What the parsing process looked up is from
    before the batch is written: a server writing to the same database meanwhile may have
    taken a key it found free, and the batch's inserts then meet that key. The store runs the
    unit again, and it then looks every key up itself."""
    attempts = 0

    async def unit(tx: Transaction) -> BatchResult:
        nonlocal attempts
        attempts += 1
        looked_up = parsed if attempts == 1 else msgspec.structs.replace(
            parsed, holders=None, again=None
        )
        return await apply_batch(tx, limits, raw, looked_up)

    return unit


async def _import(
    store: Store, account_id: int, limits: Limits,
    batches: Iterable[tuple[list[tuple[int, bytes]], int]], totals: ImportTotals,
    on_refusal: Callable[[Refusal], None], on_progress: Callable[[int], None],
) -> ImportTotals:
    path = getattr(store, "path", None)
    database = (path, account_id) if getattr(store, "engine", None) == "sqlite" and path else None
    written = 0
    async for raw, parsed, consumed in parsed_batches(batches, database):
        unit = batch_unit(limits, raw, parsed)
        result = await store.write(account_id, unit) if parsed.drafts else BatchResult()
        written += bool(parsed.drafts)
        if parsed.drafts and written & (written - 1) == 0:
            # After the 1st, 2nd, 4th, 8th... batch: each time, at most what the import had
            # written before is new to the planner.
            await refresh_statistics(store)
        totals.created += result.created
        totals.replaced += result.replaced
        for refusal in sorted(parsed.refusals + result.refusals, key=lambda r: r.line):
            totals.refused += 1
            on_refusal(refusal)
        on_progress(consumed)
    if written & (written - 1):  # what the last batches wrote, for the server's plans too
        await refresh_statistics(store)
    return totals
