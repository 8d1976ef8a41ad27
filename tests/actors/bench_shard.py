"""Throughput of one shard with a trivial kind (not a test; run it by hand):

    .venv/bin/python tests/actors/bench_shard.py [messages]

Starts a private nats-server, pre-publishes a backlog to the 8 partitions of one shard, starts a
node and times until every message was applied, flushed and acked; then times entity queries
with 50 in flight. Prints the shard's mean fetch batch.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import nats

from clipstream.actors.messages import RuntimeOptions
from clipstream.actors.node import Node
from clipstream.actors.rpc import ask_entity
from clipstream.bus.codec import encode, partition_of
from clipstream.bus.messages import LikeDelta
from clipstream.bus.topology import Topology
from clipstream.config.settings import ActorSettings, NatsSettings, Settings

PARTITIONS = 8
VIDEOS = 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def publish_backlog(url: str, topology: Topology, n: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    started = time.perf_counter()
    window = 500
    for i in range(0, n, window):
        futures = []
        for j in range(i, min(i + window, n)):
            video = 1 + j % VIDEOS
            msg = LikeDelta(video_id=video, user_id=1 + j, delta=1, at=1)
            futures.append(js.publish(topology.counter_subject(partition_of(video, PARTITIONS)), encode(msg)))
        await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await nc.close()
    return elapsed


async def ack_pending(url: str, topology: Topology) -> int:
    nc = await nats.connect(url)
    js = nc.jetstream()
    total = 0
    for p in range(PARTITIONS):
        info = await js.consumer_info(f"{topology.prefix.upper()}_COUNTER", f"counter-{p}")
        total += info.num_ack_pending + info.num_pending
    await nc.close()
    return total


async def queries(url: str, topology: Topology, n: int, in_flight: int = 50) -> float:
    nc = await nats.connect(url)
    started = time.perf_counter()
    sem = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with sem:
            reply = await ask_entity(nc, topology, "counter", 1 + i % VIDEOS, None, PARTITIONS)
            assert reply

    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    await nc.close()
    return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    binary = shutil.which("nats-server") or str(Path.home() / ".cache/clipstream/go/bin/nats-server")
    store = tempfile.mkdtemp()
    port = free_port()
    server = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"nats://127.0.0.1:{port}"
    settings = Settings(
        nats=NatsSettings(url=url, subject_prefix="bench"),
        actors=ActorSettings(partitions=PARTITIONS, shards=1, admin_port=free_port()),
    )
    topology = Topology.from_settings(settings.nats)
    node = Node(settings, kinds={"counter": "clipstream.actors.testing:make_null_kind"},
                options=RuntimeOptions(stats_interval=0.1))
    try:
        time.sleep(0.5)
        # Streams exist once a node ran; publish after the consumers exist to keep it simple.
        node.start()
        node.wait_ready(30)
        node.shutdown()
        node = Node(settings, kinds={"counter": "clipstream.actors.testing:make_null_kind"},
                    options=RuntimeOptions(stats_interval=0.1))
        pub = asyncio.run(publish_backlog(url, topology, n))
        print(f"published {n} in {pub:.2f}s ({n / pub:,.0f}/s, 500 in flight)")
        node.start()
        node.wait_ready(30)
        started = time.perf_counter()
        while sum(s.processed for s in node.status().shards) < n:
            time.sleep(0.02)
        applied = time.perf_counter() - started
        while asyncio.run(ack_pending(url, topology)):
            time.sleep(0.02)
        acked = time.perf_counter() - started
        status = node.status()
        shard = status.shards[0]
        print(f"one shard applied {n} in {applied:.2f}s ({n / applied:,.0f} msgs/s); "
              f"all acked after {acked:.2f}s ({n / acked:,.0f} msgs/s); mean fetch {shard.avg_fetch}")
        q = 20_000
        took = asyncio.run(queries(url, topology, q))
        print(f"{q} queries in {took:.2f}s ({q / took:,.0f}/s, 50 in flight)")
        print(msgspec.json.encode(status).decode())
    finally:
        node.shutdown()
        server.terminate()
        server.wait()
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONSAFEPATH", "1")
    main()
