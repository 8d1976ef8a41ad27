"""The Guardian's restart policy, as plain logic (no Thespian) so it can be tested on its own.

Thespian tells a parent that a child exited and leaves the rest to us. A crashed shard is restarted
after ``backoff * 2**n`` seconds, where n counts its restarts within the budget window, so a shard
that crashes at start does not spin; past ``budget`` restarts in the window it is given up on and
reported as failed, because restarting it forever would hide the fault.
"""

from __future__ import annotations

from collections import deque

__all__ = ["RestartPolicy", "WINDOW_SECONDS"]

WINDOW_SECONDS = 600.0


class RestartPolicy:
    """Decides, per shard slot, whether and when to restart after an exit."""

    __slots__ = ("_backoff", "_budget", "_max_delay", "_window", "_history")

    def __init__(self, backoff: float, budget: int, max_delay: float = 60.0, window: float = WINDOW_SECONDS) -> None:
        self._backoff = backoff
        self._budget = budget
        self._max_delay = max_delay
        self._window = window
        self._history: dict[object, deque[float]] = {}

    def on_exit(self, slot: object, now: float) -> float | None:
        """The delay before restarting ``slot`` which exited at ``now``, or None: over budget."""
        times = self._history.setdefault(slot, deque())
        while times and now - times[0] > self._window:
            times.popleft()
        if len(times) >= self._budget:
            return None
        delay = min(self._backoff * (2 ** len(times)), self._max_delay)
        times.append(now)
        return delay

    def restarts(self, slot: object, now: float) -> int:
        """Restarts of ``slot`` counted in the current window."""
        return sum(1 for t in self._history.get(slot, ()) if now - t <= self._window)
