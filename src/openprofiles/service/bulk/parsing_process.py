"""The parsing process: batches checked and drafted a batch or two ahead of the writes."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ProcessPoolExecutor

import msgspec

from ...store.batch import IMPORT_CHECKPOINT_PAGES, CommittedKeys, LogCopier
from .drafts import Lookahead, Parsed, parse_batch

_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(Parsed).decode


_lookaheads: dict[tuple[str, int], Lookahead] = {}
_copiers: dict[str, LogCopier] = {}

# The log's pages at which the parsing process copies it into the SQLite file: a few batches
# before the writing connection would, so that its copy finds little left (`store.batch.LogCopier`).
_COPY_AT = IMPORT_CHECKPOINT_PAGES * 7 // 8


def _parse_packed(raw_lines: list[tuple[int, bytes]], database: tuple[str, int] | None) -> bytes:
    """`parse_batch` in the parsing process, which reads the SQLite file at `database` (path,
    account) on a connection of its own, and copies its log into it now and then."""
    if database is None:
        return _pack(parse_batch(raw_lines))
    lookahead = _lookaheads.get(database)
    if lookahead is None:
        lookahead = _lookaheads[database] = Lookahead(CommittedKeys(*database), _AHEAD - 1)
    packed = _pack(parse_batch(raw_lines, lookahead))
    path = database[0]
    copier = _copiers.get(path)
    if copier is None:
        copier = _copiers[path] = LogCopier(path, _COPY_AT)
    copier.batch_parsed()
    return packed


def _parser_started() -> None:
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """An import that is killed cannot stop its parser, which would wait for work forever
    (it holds its own queue's both ends) and keep the import's output open."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


# Batches handed to the parsing process ahead of the one being written: enough that it always
# has one to parse while a batch is written, few enough that memory stays flat. A batch's
# lookups then miss the `_AHEAD - 1` batches before it, which `Lookahead` looks up again. With
# two, the parsing process waited for its next batch while the writes waited for it, for 8% of
# the import (bench/RESULTS.md, "The writing process, lighter and no longer waiting").
_AHEAD = 3

RawBatch = tuple[list[tuple[int, bytes]], int]


async def parsed_batches(
    batches: Iterable[RawBatch], database: tuple[str, int] | None = None,
) -> AsyncIterator[tuple[list[tuple[int, bytes]], Parsed, int]]:
    """The batches as read and as checked and drafted, in order, with the bytes read so far.

    Checking and drafting take about half of an import's processor time and need no database,
    so from the second batch on they run in a process of their own, up to `_AHEAD - 1` batches
    ahead of the writes; given an SQLite file (`database`: path and account), that process
    also looks up which identifiers committed profiles hold. A single batch is parsed here:
    starting a process would cost more.

    A batch is handed to the parsing process once the one `_AHEAD` before it is written: its
    lookups see every batch but the last `_AHEAD - 1`."""
    pending = iter(batches)
    first = next(pending, None)
    if first is None:
        return
    second = next(pending, None)
    if second is None:
        yield first[0], parse_batch(first[0]), first[1]
        return
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")  # nothing of this process's state is copied
    with ProcessPoolExecutor(1, mp_context=context, initializer=_parser_started) as parser:
        ahead: deque[tuple[asyncio.Future[bytes], RawBatch]] = deque()

        def submit(batch: RawBatch) -> None:
            ahead.append((loop.run_in_executor(parser, _parse_packed, batch[0], database), batch))

        submit(first)
        submit(second)
        for batch in pending:
            while len(ahead) >= _AHEAD:
                packed, (raw, consumed) = ahead.popleft()
                yield raw, _unpack(await packed), consumed
            submit(batch)
        while ahead:
            packed, (raw, consumed) = ahead.popleft()
            yield raw, _unpack(await packed), consumed
