"""Helpers of the tests that run ``clipstream node`` processes themselves (not the ``system`` fixture)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clipstream.actors.leftovers import session_processes
from clipstream.bus.topology import Topology

__all__ = ["CLIPSTREAM", "NodeProc", "eventually", "free_port", "Outage", "assert_counts_become", "private_bus", "rss_kib", "stack_service"]

CLIPSTREAM = str(Path(sys.executable).with_name("clipstream"))


def private_bus(prefix: str, partitions: int, shards: int) -> tuple[dict[str, str], Topology]:
    """The environment of nodes on a subject prefix of their own (own streams, consumers and lease
    bucket), so that a system started by other tests takes no part; and its topology."""
    env = {
        **os.environ,
        "PYTHONSAFEPATH": "1",
        "CLIPSTREAM_NATS_SUBJECT_PREFIX": prefix,
        "CLIPSTREAM_NATS_MINIO_SUBJECT": f"{prefix}.minio.events",
        "CLIPSTREAM_ACTORS_PARTITIONS": str(partitions),
        "CLIPSTREAM_ACTORS_SHARDS": str(shards),
    }
    return env, Topology(prefix=prefix, minio_subject=f"{prefix}.minio.events")


def stack_service(action: str, service: str) -> float:
    """``clipstream stack <action> --only <service>`` (the stack's own stop and start of one
    shared service); returns the seconds it took."""
    started = time.monotonic()
    done = subprocess.run([CLIPSTREAM, "stack", action, "--only", service], env={**os.environ, "PYTHONSAFEPATH": "1"},
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"stack {action} {service} failed:\n{done.stdout}\n{done.stderr}"
    return time.monotonic() - started


class Outage:
    """Stops one shared service with the stack's own command, and always starts it again."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.down = False

    async def stop(self) -> float:
        """Stop it; returns the seconds that took."""
        self.down = True  # from the first instant: it stops answering while it drains
        return await asyncio.to_thread(stack_service, "down", self.service)

    async def start(self) -> float:
        """Start it and wait until it answers; returns the seconds that took."""
        took = await asyncio.to_thread(stack_service, "up", self.service)
        self.down = False
        return took

    async def restore(self) -> None:
        """Never leave the shared stack without the service."""
        if self.down:
            await self.start()

    async def __aenter__(self) -> "Outage":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.restore()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NodeProc:
    """One ``clipstream node`` subprocess; every process it leads to is killed by pid at the end."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.env = {**env, "CLIPSTREAM_ACTORS_NODE_NAME": name, "CLIPSTREAM_ACTORS_ADMIN_PORT": str(free_port())}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.session = 0

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([CLIPSTREAM, "node"], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.session = 0

    def pids(self) -> list[int]:
        out = [] if self.proc is None or self.proc.poll() is not None else [self.proc.pid]
        return out + (session_processes(self.session) if self.session else [])

    def sigkill(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (clean: leases released), then SIGKILL whatever is left."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                pass
        self.sigkill()
        deadline = time.monotonic() + 10
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.1)


async def eventually(check, timeout: float, what: str, interval: float = 0.25):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s: {what} (last: {value!r})")
        await asyncio.sleep(interval)


async def assert_counts_become(read, expected: dict[int, int], timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Poll ``read()`` (counts by id, or None while storage is away) until it equals ``expected``;
    otherwise fail naming how many counts differ, some of them, and the totals."""

    async def exact() -> bool:
        return await read() == expected

    try:
        await eventually(exact, timeout, what, interval=1.0)
    except pytest.fail.Exception:
        got = await read() or {}
        wrong = {k: (got.get(k), n) for k, n in expected.items() if got.get(k) != n}
        pytest.fail(f"{len(wrong)} counts differ (got, expected), e.g. {list(wrong.items())[:10]}; "
                    f"total {sum(got.values())} of {sum(expected.values())}")


def rss_kib(pids: list[int]) -> int:
    """Resident memory of the given processes together (KiB); vanished ones count zero."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total
