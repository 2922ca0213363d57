"""Writes N profiles as import NDJSON, with realistic identifier mixes, the same for a given seed.

Four kinds of profile (a shop's customers, a CRM's contacts, a mobile app's devices, a help
desk's requesters), each led by the identifier its source knows people by. About one profile in
twelve is another profile of a person already written, under another kind and sharing that
person's email or phone number, so that it links to the same user.

    python bench/generate.py 1000000 profiles.ndjson [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import IO

import msgspec

KINDS = (("shop", "customer"), ("crm", "contact"), ("mobile", "device"), ("support", "requester"))
_TLDS = ("com", "net", "org", "io", "co.uk", "de")
_PLANS = ("free", "basic", "gold", "platinum")
_encode = msgspec.json.Encoder().encode


def _person(k: int) -> dict[str, str]:
    return {
        "email": f"person{k}@example.{_TLDS[k % len(_TLDS)]}",
        "phone_number": f"+1555{k:08d}",
        "external_id": f"EXT-{k:09d}",
        "loyalty_id": f"L{k * 7919 % 100_000_007:09d}",
        "device_id": f"dev-{k:x}-{(k * 2654435761) % 2**32:08x}",
        "twitter": f"@person{k}",
    }


def _identifiers(kind: int, person: dict[str, str], rng: random.Random) -> list[dict[str, str]]:
    def ident(t: str) -> dict[str, str]:
        return {"type": t, "value": person[t]}

    if kind == 0:
        chosen = [ident("email")]
        if rng.random() < 0.5:
            chosen.append(ident("phone_number"))
        if rng.random() < 0.3:
            chosen.append(ident("external_id"))
        if rng.random() < 0.3:
            chosen.append(ident("loyalty_id"))
    elif kind == 1:
        chosen = [ident("external_id"), ident("email")]
        if rng.random() < 0.3:
            chosen.append(ident("phone_number"))
    elif kind == 2:
        chosen = [ident("device_id")]
        if rng.random() < 0.6:
            chosen.append(ident("phone_number"))
    else:
        chosen = [ident("email")]
        if rng.random() < 0.1:
            chosen.append(ident("twitter"))
    return chosen


def lines(count: int, seed: int = 1):
    """(first identifier query, NDJSON line) for each profile."""
    rng = random.Random(seed)
    kinds_of: dict[int, int] = {}  # person -> kinds used, as a bit set
    first_kind: dict[int, int] = {}
    persons = 0
    for n in range(count):
        shared = persons > 0 and rng.random() < 0.08
        k = rng.randrange(persons) if shared else persons
        if not shared:
            persons += 1
        used = kinds_of.get(k, 0)
        free = [i for i in range(len(KINDS)) if not used & (1 << i)]
        if not free:  # this person has every kind: a new person instead
            k, used, free, shared = persons, 0, list(range(len(KINDS))), False
            persons += 1
        kind = rng.choice(free)
        kinds_of[k] = used | (1 << kind)
        person = _person(k)
        identifiers = _identifiers(kind, person, rng)
        if shared:
            # The leading identifier and one that the person's first profile holds, so that
            # the profile links to that profile's user and to no other.
            link = "phone_number" if first_kind[k] == 2 else "email"
            identifiers = identifiers[:1]
            if identifiers[0]["type"] != link:
                identifiers.append({"type": link, "value": person[link]})
        else:
            first_kind[k] = kind
        source, profile_type = KINDS[kind]
        profile = {
            "source": source, "type": profile_type, "identifiers": identifiers,
            "attributes": {"plan": _PLANS[n % 4], "visits": n % 97, "score": (n * 31) % 1000,
                           "tags": ["bench", source]},
        }
        if n % 5 == 0:
            profile["name"] = f"Person {k}"
        first = identifiers[0]
        query = f"{source}:{profile_type}:{first['type']}:{first['value']}"
        yield query, _encode({"profile": profile})


def write(count: int, out: IO[bytes], keys: IO[str] | None = None, seed: int = 1) -> None:
    buffer: list[bytes] = []
    for query, line in lines(count, seed):
        buffer.append(line)
        if keys is not None:
            keys.write(query + "\n")
        if len(buffer) >= 10_000:
            out.write(b"\n".join(buffer) + b"\n")
            buffer.clear()
    if buffer:
        out.write(b"\n".join(buffer) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("out", help="NDJSON file, or - for stdout")
    parser.add_argument("--keys", help="also write each profile's identifier query to this file")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")
    keys = open(args.keys, "w") if args.keys else None
    with out:
        write(args.count, out, keys, args.seed)
    if keys:
        keys.close()


if __name__ == "__main__":
    main()
