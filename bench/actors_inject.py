"""Like events injected on the bus, applied by counter entities: events/s and exact counts.

A private nats-server (free port, temporary store) so that the shared bus is not disturbed; the
real counter kind on the bench keyspace and Redis database; one node with one counter shard (a
real Thespian shard process). The clock runs from the first publish (plain NATS publishes into the
stream's subjects, as ``nats pub`` sends them) until every message was applied, flushed and acked; then every count in
the ``stats`` table is compared with what was sent.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import msgspec
import nats

from clipstream.actors.kinds import KINDS
from clipstream.actors.messages import RuntimeOptions
from clipstream.actors.node import Node
from clipstream.bus.codec import encode, partition_of
from clipstream.bus.messages import LikeDelta
from clipstream.bus.topology import Topology
from clipstream.config.settings import Settings
from clipstream.stack.nats_service import installed_nats_server
from clipstream.storage.cql import connect_cql
from clipstream.storage.repos import StatsRepo

__all__ = ["inject_likes", "free_port", "private_nats"]

PARTITIONS = 8
#: publishes between two flushes (round trips) of the injecting client
_CHUNK = 2000


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class private_nats:
    """A nats-server with JetStream on a free port and a temporary store, ended by pid."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.store = tempfile.mkdtemp(prefix="clipstream-bench-nats-")
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "private_nats":
        binary = installed_nats_server() or shutil.which("nats-server") or "nats-server"
        self.proc = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.store],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.store, ignore_errors=True)


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def _publish(url: str, topology: Topology, events: list[LikeDelta]) -> float:
    """Plain NATS publishes (what ``nats pub`` sends; the stream stores them), flushed every
    ``_CHUNK``: a JetStream publish awaits an ack per message, and on two shared cores that
    client alone ran below the rate being measured. The exact-count check catches any loss."""
    payloads = [(topology.counter_subject(partition_of(e.video_id, PARTITIONS)), encode(e)) for e in events]
    nc = await nats.connect(url, pending_size=64 * 1024 * 1024)
    started = time.perf_counter()
    for i in range(0, len(payloads), _CHUNK):
        for subject, data in payloads[i : i + _CHUNK]:
            await nc.publish(subject, data)
        await nc.flush()
    await nc.close()
    return started


async def _unfinished(url: str, topology: Topology) -> int:
    nc = await nats.connect(url)
    js = nc.jetstream()
    total = 0
    for p in range(PARTITIONS):
        info = await js.consumer_info(f"{topology.prefix.upper()}_COUNTER", f"counter-{p}")
        total += info.num_ack_pending + info.num_pending
    await nc.close()
    return total


async def inject_likes(settings: Settings, events: int, videos: int, shards: int = 1,
                       on_ready: Callable[[list[int]], None] | None = None) -> dict[str, Any]:
    """Publish ``events`` LikeDeltas over ``videos`` fresh video ids; returns the figures.
    ``on_ready`` gets the shard pids before the first publish (to attach a profiler)."""
    with private_nats() as server:
        settings = msgspec.structs.replace(
            settings,
            nats=msgspec.structs.replace(settings.nats, url=server.url, subject_prefix="benchact"),
            actors=msgspec.structs.replace(settings.actors, partitions=PARTITIONS, shards=shards,
                                           admin_port=free_port(), node_name=f"bench-{os.getpid()}"),
        )
        topology = Topology.from_settings(settings.nats)
        node = Node(settings, kinds={"counter": KINDS["counter"]},
                    options=RuntimeOptions(stats_interval=0.2, leases=False))
        base = random.randrange(1 << 40, 1 << 50)  # fresh ids: no earlier run's rows
        sent = [LikeDelta(video_id=base + i % videos, user_id=1 + i, delta=1, at=1) for i in range(events)]
        await asyncio.to_thread(node.start)
        try:
            status = await asyncio.to_thread(node.wait_ready, 60)
            pids = [s.pid for s in status.shards]
            if on_ready is not None:
                on_ready(pids)
            started = await _publish(server.url, topology, sent)
            published = time.perf_counter()
            deadline = published + 240
            while True:
                status = await asyncio.to_thread(node.status)
                if sum(s.processed for s in status.shards) >= events and not await _unfinished(server.url, topology):
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError("bench: events not all applied and acked within 240 s")
                await asyncio.sleep(0.05)
            done = time.perf_counter()
            shard_rss = sum(_rss_mb(p) for p in pids)
            avg_fetch = [s.avg_fetch for s in status.shards]
        finally:
            await asyncio.to_thread(node.shutdown)
    cql = connect_cql(settings.cql, settings.cql.keyspace)
    try:
        counts = await StatsRepo(cql).get_many(base + v for v in range(videos))
    finally:
        cql.close()
    expected = {base + v: events // videos + (1 if v < events % videos else 0) for v in range(videos)}
    wrong = sum(1 for k, n in expected.items() if (counts[k].likes if k in counts else 0) != n)
    return {
        "events": events,
        "videos": videos,
        "shards": shards,
        "seconds": done - started,
        "publish_seconds": published - started,
        "events_per_s": events / (done - started),
        "wrong_counts": wrong,
        "shard_rss_mb": shard_rss,
        "avg_fetch": avg_fetch,
    }
