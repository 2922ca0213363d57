"""The keys an import has met so far, in a fixed amount of memory (a Bloom filter).

It answers "never met" for certain and "met" only perhaps: a key it was given is always
reported as met, and a key it was not is reported as met about once in a few hundred times
while it holds a few million keys, more often as it fills. The import asks it which keys of a
batch could be in the database at all, and looks up only those.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

# 2**27 bits, 16 MiB: two bits a key keep false "met" answers under 1% up to about 5 million
# keys (1.7 million lines of the benchmark's mix), and the memory flat however long the file.
_BITS = 27
_MASK = (1 << _BITS) - 1


class SeenKeys:
    def __init__(self) -> None:
        self._bits = bytearray(1 << (_BITS - 3))
        self.count = 0

    # A key's two bits come from one hash: its low bits and the bits above them. Both methods
    # work them out inline, as they run for every key of an import.

    def add(self, keys: Iterable[Hashable]) -> None:
        bits = self._bits
        count = 0
        for key in keys:
            code = hash(key)
            first, second = code & _MASK, (code >> _BITS) & _MASK
            bits[first >> 3] |= 1 << (first & 7)
            bits[second >> 3] |= 1 << (second & 7)
            count += 1
        self.count += count

    def __contains__(self, key: Hashable) -> bool:
        return self.met(key)

    def met(self, key: Hashable) -> bool:
        code = hash(key)
        first, second = code & _MASK, (code >> _BITS) & _MASK
        bits = self._bits
        return bool(bits[first >> 3] & (1 << (first & 7)) and bits[second >> 3] & (1 << (second & 7)))

