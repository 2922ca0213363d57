"""Profile ids are ULIDs: the reference library reads back what they encode."""

from __future__ import annotations

import random
import time

from ulid import ULID

from openprofiles.domain.profile import is_profile_id
from openprofiles.service.clock import new_profile_id, ulid_text


def test_ulid_text_is_the_reference_encoding() -> None:
    rng = random.Random(5)
    values = [0, 1, 2**128 - 1, 2**80, 2**127, *(rng.getrandbits(128) for _ in range(2000))]
    for value in values:
        assert ulid_text(value) == str(ULID.from_bytes(value.to_bytes(16, "big")))


def test_new_ids_carry_the_time_and_differ() -> None:
    before = int(time.time() * 1000)
    ids = [new_profile_id() for _ in range(1000)]
    after = int(time.time() * 1000)
    assert len(set(ids)) == 1000
    for text in ids:
        assert is_profile_id(text)
        assert before <= ULID.from_str(text).milliseconds <= after


def test_a_forked_process_draws_other_random_bits() -> None:
    import os

    new_profile_id()  # bytes read ahead, which a child must not reuse
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, "".join(new_profile_id()[10:] for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    theirs = os.read(read, 10_000).decode()
    os.close(read)
    ours = "".join(new_profile_id()[10:] for _ in range(50))
    assert len(theirs) == len(ours) == 50 * 16
    assert theirs != ours
