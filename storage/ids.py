"""63-bit time-ordered ids for users and videos (one id space, so one counter kind serves both).

Layout: 41 bits of milliseconds since 2024-01-01, 10 bits of process salt, 12 bits of sequence.
Sorting ids sorts by creation time, which gives "newest first" profile grids for free.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["EPOCH_MS", "IdGenerator", "created_ms", "new_id"]

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


class IdGenerator:
    """Thread-safe generator; the salt tells processes apart within one millisecond."""

    __slots__ = ("_salt", "_last", "_seq", "_lock")

    def __init__(self, salt: int | None = None) -> None:
        self._salt = (salt if salt is not None else int.from_bytes(os.urandom(2), "big")) & 0x3FF
        self._last = 0
        self._seq = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            now = int(time.time() * 1000) - EPOCH_MS
            if now <= self._last:
                now = self._last
                self._seq = (self._seq + 1) & 0xFFF
                if self._seq == 0:  # 4096 ids in one millisecond: borrow the next one
                    now += 1
            else:
                self._seq = 0
            self._last = now
            return (now << 22) | (self._salt << 12) | self._seq


_default = IdGenerator()


def new_id() -> int:
    """A fresh id from this process's generator."""
    return _default()


def created_ms(entity_id: int) -> int:
    """Unix milliseconds at which an id was made."""
    return (entity_id >> 22) + EPOCH_MS
