"""The import's filter of keys met so far: never a false "never met", rarely a false "met"."""

from __future__ import annotations

import random

from openprofiles.service.bulk.seen_keys import SeenKeys


def test_every_key_added_is_met_whatever_its_shape() -> None:
    rng = random.Random(7)
    keys: list[object] = []
    for n in range(50_000):
        keys.append(("shop", "customer", "email", f"{rng.getrandbits(48):x}@example.com"))
        keys.append(("phone_number", f"+1{n:010d}"))
        keys.append(f"ext-{n}")
    seen = SeenKeys()
    seen.add(keys[: len(keys) // 2])
    seen.add(iter(keys[len(keys) // 2:]))
    assert seen.count == len(keys)
    assert all(key in seen for key in keys)


def test_keys_never_added_are_seldom_met() -> None:
    seen = SeenKeys()
    seen.add(("crm", "contact", "email", f"person{n}@example.com") for n in range(300_000))
    others = [("crm", "contact", "email", f"other{n}@example.com") for n in range(100_000)]
    assert sum(key in seen for key in others) < 1_000  # under 1%


def test_an_empty_filter_meets_nothing() -> None:
    seen = SeenKeys()
    assert ("a", "b") not in seen and "a" not in seen and seen.count == 0
