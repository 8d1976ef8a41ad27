"""Compact containers of 64-bit ids for entities held by the hundred thousand.

A Python ``set`` of ids costs about 60 bytes per id (its table plus an int object each), a dict of
id → id about 100; these keep the ids unboxed in ``array('q')`` (8 bytes each), sorted, and find
them by bisection. Inserts shift the array (a memmove of a few KB at most for a feed's few hundred
ids). Same semantics as the set, dict and list of pairs they replace.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from typing import Any, Iterable, Iterator, TypeVar

__all__ = ["IdMap", "IdSet", "Pairs", "trimmed"]

_A = TypeVar("_A", bound=array)  # type: ignore[type-arg]
_EMPTY = sys.getsizeof(array("q"))


def trimmed(arr: _A) -> _A:
    """``arr``, or an exact-size copy of it if growing it left spare room. An array that grows
    keeps about a sixteenth plus seven items spare (on a feed's 300 served ids, 208 bytes: 5 % of
    the feed), and never gives them back; the copy is one allocation and a memcpy of a few KB."""
    if sys.getsizeof(arr) - _EMPTY > len(arr) * arr.itemsize:
        return array.__new__(type(arr), arr.typecode, arr)  # type: ignore[return-value]
    return arr


class IdSet(array):  # type: ignore[type-arg]
    """A set of ids: a sorted array; ``x in s``, ``add``, ``discard``, ``update``, iteration."""

    __slots__ = ()

    def __new__(cls, ids: Iterable[int] = ()) -> "IdSet":
        return super().__new__(cls, "q", sorted(set(ids)))

    def __contains__(self, x: object) -> bool:
        i = bisect_left(self, x)  # type: ignore[call-overload]
        return i < len(self) and self[i] == x

    def add(self, x: int) -> None:
        i = bisect_left(self, x)
        if i == len(self) or self[i] != x:
            self.insert(i, x)

    def discard(self, x: int) -> None:
        i = bisect_left(self, x)
        if i < len(self) and self[i] == x:
            del self[i]

    def update(self, ids: Iterable[int]) -> None:
        for x in ids:
            self.add(x)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (set, frozenset)):
            return len(self) == len(other) and all(x in other for x in self)
        return array.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"IdSet({list(self)})"


class IdMap(array):  # type: ignore[type-arg]
    """id → id (a liked video → its author), flat and sorted by key: k, v, k, v, …"""

    __slots__ = ()

    def __new__(cls, items: dict[int, int] | None = None) -> "IdMap":
        return super().__new__(cls, "q", [n for k in sorted(items or ()) for n in (k, items[k])])  # type: ignore[index]

    def _at(self, key: int) -> int:
        """Index of the first key not below ``key`` (even; len(self) if none)."""
        lo, hi = 0, len(self) // 2
        while lo < hi:
            mid = (lo + hi) // 2
            if self[2 * mid] < key:
                lo = mid + 1
            else:
                hi = mid
        return 2 * lo

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        i = self._at(key)
        return i < len(self) and self[i] == key

    def get(self, key: int) -> int | None:
        i = self._at(key)
        return self[i + 1] if i < len(self) and self[i] == key else None

    def set(self, key: int, value: int) -> None:
        i = self._at(key)
        if i < len(self) and self[i] == key:
            self[i + 1] = value
        else:
            self[i:i] = array("q", (key, value))

    def remove(self, key: int) -> None:
        i = self._at(key)
        if i < len(self) and self[i] == key:
            del self[i : i + 2]

    def count_keys(self) -> int:
        return len(self) // 2

    def authors(self) -> array:  # type: ignore[type-arg]
        """The values, in key order."""
        return self[1::2]

    def items(self) -> list[tuple[int, int]]:
        return list(zip(self[0::2], self[1::2]))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, dict):
            return dict(self.items()) == other
        return array.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]


class Pairs(array):  # type: ignore[type-arg]
    """A list of (id, id) pairs in insertion order, stored flat: a, b, a, b, …"""

    __slots__ = ()

    def __new__(cls, pairs: Iterable[tuple[int, int]] = ()) -> "Pairs":
        return super().__new__(cls, "q", [n for pair in pairs for n in pair])

    def pairs(self) -> list[tuple[int, int]]:
        return list(zip(self[0::2], self[1::2]))

    def has(self, a: int, b: int) -> bool:
        i = -1
        while True:
            try:
                i = self.index(a, i + 1)  # the scan runs in C
            except ValueError:
                return False
            if i % 2 == 0 and self[i + 1] == b:
                return True

    def push(self, a: int, b: int) -> None:
        self.extend((a, b))

    def keep_last(self, n: int) -> None:
        del self[: -2 * n or len(self)]

    def reversed_pairs(self) -> Iterator[tuple[int, int]]:
        for i in range(len(self) - 2, -1, -2):
            yield self[i], self[i + 1]

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, list):
            return self.pairs() == [tuple(p) for p in other]
        return array.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]


class Pages(array):  # type: ignore[type-arg]
    """The last few feed pages, flat: page number, id count, the ids; oldest first."""

    __slots__ = ()

    def __new__(cls, pages: dict[int, list[int]] | None = None, keep: int = 0) -> "Pages":
        self = super().__new__(cls, "q")
        for page in sorted(pages or ())[-keep if keep else 0 :]:
            self.put(page, pages[page], 0)  # type: ignore[index]
        return self

    def _records(self) -> Iterator[tuple[int, int, int]]:
        """(page, start of its ids, count) of each kept page."""
        i = 0
        while i < len(self):
            n = self[i + 1]
            yield self[i], i + 2, n
            i += 2 + n

    def get(self, page: int) -> list[int] | None:
        for p, start, n in self._records():
            if p == page:
                return list(self[start : start + n])
        return None

    def numbers(self) -> list[int]:
        return [p for p, _, _ in self._records()]

    def put(self, page: int, ids: list[int], keep: int) -> None:
        """Add a page (newer than those kept) and keep the newest ``keep`` (0: all)."""
        self.extend((page, len(ids), *ids))
        records = list(self._records())
        if keep and len(records) > keep:
            del self[: records[-keep][1] - 2]
