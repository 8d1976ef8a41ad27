"""Where the two cores went during a measured run: CPU time of every process, by role, from /proc.

The bench's figures are ratios on a shared machine; these shares say which process took the time
(the API workers, the actor node, Cassandra, NATS, wrk itself...), and divided by the run's
requests, what one request cost each of them. That is the evidence BENCHMARKS.md uses for "what
limits it". Reading /proc costs a few milliseconds per snapshot and nothing in between.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

__all__ = ["ROLES", "CpuWindow", "role_of", "shares", "snapshot"]

#: role -> a piece of the command line that tells it (first match wins, in this order)
ROLES: tuple[tuple[str, str], ...] = (
    ("api", "clipstream api"),
    ("node", "clipstream node"),
    ("media worker", "clipstream worker"),
    ("reference server", "clipstream.bench.serve_ref"),
    ("bench driver", "clipstream bench"),
    ("cassandra", "org.apache.cassandra"),
    ("nats", "nats-server"),
    ("redis", "redis-server"),
    ("minio", "minio server"),
    ("wrk", "wrk "),
)

_HZ = os.sysconf("SC_CLK_TCK")


def role_of(cmdline: str) -> str:
    for role, marker in ROLES:
        if marker in cmdline:
            return role
    return "other"


def snapshot(proc: str = "/proc") -> dict[int, tuple[float, str]]:
    """pid -> (CPU seconds used so far, command line) of every process readable now."""
    out: dict[int, tuple[float, str]] = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/stat", "rb") as f:
                stat = f.read()
            with open(f"{proc}/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        out[int(entry)] = ((int(fields[11]) + int(fields[12])) / _HZ, cmdline)
    return out


def shares(before: dict[int, tuple[float, str]], after: dict[int, tuple[float, str]], seconds: float,
           requests: int | None = None) -> dict[str, Any]:
    """CPU % of one core by role (and per request in microseconds when ``requests`` is given)."""
    by_role: dict[str, float] = {}
    for pid, (used, cmdline) in after.items():
        delta = used - before[pid][0] if pid in before else used  # started during the window
        if delta > 0:
            role = role_of(cmdline)
            by_role[role] = by_role.get(role, 0.0) + delta
    roles = {role: round(100 * used / seconds, 1) for role, used in sorted(by_role.items(), key=lambda kv: -kv[1])}
    result: dict[str, Any] = {"seconds": round(seconds, 2), "total_pct": round(sum(roles.values()), 1),
                              "cores": os.cpu_count(), "pct_of_one_core": roles}
    if requests:
        rate = requests / seconds
        result["us_per_request"] = {role: round(pct / 100 * 1e6 / rate) for role, pct in roles.items()}
    return result


class CpuWindow:
    """Snapshots around the middle of a run: ``margin`` seconds after its start to as much before
    its end (wrk's connection set-up and teardown are not the steady state)."""

    def __init__(self, seconds: float, margin: float = 1.0) -> None:
        self.seconds, self.margin = seconds, margin
        self.result: dict[str, Any] | None = None
        self._before: dict[int, tuple[float, str]] = {}
        self._after: dict[int, tuple[float, str]] = {}
        self._elapsed = 0.0

    async def run(self) -> None:
        await asyncio.sleep(self.margin)
        self._before = await asyncio.to_thread(snapshot)
        started = time.monotonic()
        await asyncio.sleep(max(0.5, self.seconds - 2 * self.margin))
        self._after = await asyncio.to_thread(snapshot)
        self._elapsed = time.monotonic() - started

    def finish(self, rps: float) -> dict[str, Any]:
        """The shares, with per-request costs at the run's request rate."""
        return shares(self._before, self._after, self._elapsed, round(rps * self._elapsed) or None)
