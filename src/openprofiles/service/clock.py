"""Time and ids: the only sources of values the rules do not decide."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two characters for each 10 bits: a ULID's 26 characters are 13 lookups.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]

# Random bytes are read from the system ahead, a page at a time; a forked process starts
# afresh, so that no two processes hand out the same bytes.
_RANDOM_BATCH = 4096
_random = b""
_taken = 0


def _forget_random() -> None:
    global _random, _taken
    _random, _taken = b"", 0


os.register_at_fork(after_in_child=_forget_random)


def _random_80_bits() -> int:
    global _random, _taken
    if _taken + 10 > len(_random):
        _random, _taken = os.urandom(_RANDOM_BATCH), 0
    start = _taken
    _taken = start + 10
    return int.from_bytes(_random[start:start + 10], "big")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ulid_text(value: int) -> str:
    """The 26 characters of the ULID whose 128 bits are `value` (Crockford's base 32)."""
    return _high_48_text(value >> 80) + _low_80_text(value)


def _high_48_text(value: int) -> str:
    """The first 10 characters of a ULID: its top 48 bits (the time), two zero bits above."""
    p = _PAIRS
    return (
        p[value >> 40] + p[value >> 30 & 1023] + p[value >> 20 & 1023] + p[value >> 10 & 1023]
        + p[value & 1023]
    )


def _low_80_text(value: int) -> str:
    """The last 16 characters of a ULID: its low 80 bits (the random ones)."""
    p = _PAIRS
    return (
        p[value >> 70 & 1023] + p[value >> 60 & 1023] + p[value >> 50 & 1023]
        + p[value >> 40 & 1023] + p[value >> 30 & 1023] + p[value >> 20 & 1023]
        + p[value >> 10 & 1023] + p[value & 1023]
    )


# The text of the current millisecond, the first 10 characters of every id made within it.
_time_ms = -1
_time_text = ""


def new_profile_id() -> str:
    """A ULID: the time in milliseconds, then 80 random bits, with the time's text made once a
    millisecond: an import makes hundreds of ids in each."""
    global _time_ms, _time_text
    ms = time.time_ns() // 1_000_000
    if ms != _time_ms:
        _time_ms, _time_text = ms, _high_48_text(ms)
    return _time_text + _low_80_text(_random_80_bits())
