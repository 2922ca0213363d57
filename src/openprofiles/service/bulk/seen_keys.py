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

    def add(self, keys: Iterable[Hashable]) -> None:
        bits = self._bits
        for key in keys:
            for position in _positions(key):
                bits[position >> 3] |= 1 << (position & 7)
            self.count += 1

    def __contains__(self, key: Hashable) -> bool:
        bits = self._bits
        first, second = _positions(key)
        return bool(bits[first >> 3] & (1 << (first & 7)) and bits[second >> 3] & (1 << (second & 7)))


def _positions(key: Hashable) -> tuple[int, int]:
    """The key's two bits, from one hash: its low bits and the bits above them."""
    code = hash(key)
    return code & _MASK, (code >> _BITS) & _MASK
