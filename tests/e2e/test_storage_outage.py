"""Cassandra stopped for about ten seconds during a like stream: flushes wait, nothing is lost.

A real ``clipstream node`` (its own subject prefix, so no other system takes part) applies a stream of
LikeRequest messages (the path the API uses: feed entities dedupe, counters count). Cassandra is
stopped with the stack's own command while the stream goes on and started again about ten seconds
later. The test shows, from the node's own status and the processes' memory:

- the outage reached the node (its flushes failed and were retried);
- back-pressure: once flushes failed, the shards stopped taking messages in (what they applied
  during the outage is bounded by one fetch per partition), the rest waited in JetStream, and the
  node's resident memory stayed bounded;
- nothing lost, nothing doubled: after Cassandra is back every like count in Cassandra equals the
  distinct likes sent.

Marked disruptive: it stops a shared service, so it runs after every other test.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import nats
import pytest

from clipstream.actors.messages import RuntimeOptions
from clipstream.bus.status import request_status
from clipstream.bus.codec import encode, partition_of
from clipstream.bus.messages import LikeRequest
from clipstream.bus.topology import ensure_streams
from clipstream.storage.ids import new_id
from clipstream.storage.repos import StatsRepo
from tests.e2e.nodes import NodeProc, Outage, assert_counts_become, eventually, private_bus, rss_kib

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]

PARTITIONS = 8
SHARDS = 2
USERS, VIDEOS, LIKES_PER_USER = 600, 500, 50  # 30,000 distinct likes, 60 per video
REPEATS = 3_000
BEFORE, DURING = 6_000, 20_000  # messages sent before the outage and while Cassandra is down
#: the first of DURING, sent as soon as Cassandra is down, so that the node has flushes to fail:
#: the node applies and flushes the BEFORE ones within the pause before the outage (since its
#: outbox publishes went through one ack inbox), so without new ones it never tries a flush
PROBE = 400
OUTAGE = 10.0
#: resident memory the node may gain while Cassandra is down, all its processes together
RSS_BOUND_MB = 80


async def test_cassandra_outage_delays_flushes_and_loses_nothing(migrated, cql, tmp_path) -> None:
    prefix = "co" + uuid.uuid4().hex[:8]
    env, topology = private_bus(prefix, PARTITIONS, SHARDS)
    node = NodeProc("outage-a", env, tmp_path / "node.log")
    nc = await nats.connect(migrated.nats.url, connect_timeout=5)
    js = nc.jetstream(timeout=10)
    t0 = time.monotonic()
    cassandra = Outage("cassandra")

    def stamp(what: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {what}")

    async def status():  # type: ignore[no-untyped-def]
        st = await request_status(nc, topology, node.name)
        node.session = st.guardian.session
        return st

    # The plan: every user likes 50 distinct videos; some likes are sent twice.
    rng = random.Random(11)
    videos = [new_id() for _ in range(VIDEOS)]
    users = [new_id() for _ in range(USERS)]
    author = new_id()
    pairs = [(u, videos[(i * 7 + j) % VIDEOS]) for i, u in enumerate(users) for j in range(LIKES_PER_USER)]
    assert len(set(pairs)) == USERS * LIKES_PER_USER
    stream = pairs + rng.sample(pairs, REPEATS)
    rng.shuffle(stream)
    gate = asyncio.Semaphore(200)

    async def send(n: int, user: int, video: int) -> None:
        message = LikeRequest(user_id=user, video_id=video, author_id=author, like=True, at=int(time.time() * 1000))
        async with gate:
            await js.publish(topology.feed_subject(partition_of(user, PARTITIONS)), encode(message),
                             headers={"Nats-Msg-Id": f"{prefix}:{n}"}, timeout=30)

    async def send_range(lo: int, hi: int) -> None:
        await asyncio.gather(*(send(n, *stream[n]) for n in range(lo, hi)))

    # Memory and progress, sampled all along.
    samples: list[tuple[float, bool, int, int, int]] = []  # (t, down, rss KiB, processed, flush failures)

    async def sample_forever() -> None:
        while True:
            try:
                st = await status()
                samples.append((time.monotonic(), cassandra.down, rss_kib(node.pids()),
                                sum(s.processed for s in st.shards), sum(s.flush_failures for s in st.shards)))
            except Exception:  # noqa: BLE001 - a missed sample is fine
                pass
            await asyncio.sleep(0.5)

    sampler: asyncio.Task[None] | None = None
    stats = StatsRepo(cql)
    expected = {v: 0 for v in videos}
    for _, v in pairs:
        expected[v] += 1

    async def likes() -> dict[int, int] | None:
        try:
            return {k: row.likes for k, row in (await stats.get_many(videos)).items()}
        except Exception:  # noqa: BLE001 - the test's own session reconnects after the outage
            return None

    try:
        await ensure_streams(js, topology)
        node.start()

        async def hosts_everything() -> bool:
            try:
                st = await status()
            except Exception:  # noqa: BLE001 - not up yet
                return False
            return sum(len(s.partitions) for s in st.shards if s.state == "running") == 2 * PARTITIONS

        await eventually(hosts_everything, 60, "the node hosts every partition")
        sampler = asyncio.create_task(sample_forever())
        await send_range(0, BEFORE)
        stamp(f"sent {BEFORE} likes before the outage")
        await asyncio.sleep(2.0)
        rss_before = rss_kib(node.pids())
        failures_before = sum(s.flush_failures for s in (await status()).shards)

        down_at = time.monotonic()  # SIGTERM: Cassandra drains and stops answering within seconds
        took = await cassandra.stop()
        stamp(f"cassandra stopped ({took:.1f}s)")

        async def flushes_fail() -> int:
            st = await status()
            failed = sum(s.flush_failures for s in st.shards) - failures_before
            return sum(s.processed for s in st.shards) if failed > 0 else 0

        await send_range(BEFORE, BEFORE + PROBE)
        processed_at_failure = await eventually(flushes_fail, 30, "the node's flushes fail while Cassandra is down")
        stamp(f"flushes failing; {processed_at_failure} messages processed so far")
        await send_range(BEFORE + PROBE, BEFORE + DURING)
        stamp(f"sent {DURING} more likes while Cassandra is down")
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
        st = await status()
        processed_in_outage = sum(s.processed for s in st.shards) - processed_at_failure
        backlog = sum(s.backlog for s in st.shards)
        rss_in_outage = max(s[2] for s in samples if s[1])
        stamp(f"still down: processed {processed_in_outage} since the failures began, backlog {backlog}, "
              f"rss {rss_before // 1024} -> peak {rss_in_outage // 1024} MB")

        took = await cassandra.start()
        stamp(f"cassandra back after {time.monotonic() - down_at:.1f}s down (start took {took:.1f}s)")
        await send_range(BEFORE + DURING, len(stream))
        stamp(f"sent the last {len(stream) - BEFORE - DURING} likes")

        await assert_counts_become(likes, expected, 180, "every like count in Cassandra equals the distinct likes")
        stamp("every count is exact")
        await asyncio.sleep(3)  # late redeliveries would show up here as double counts
        assert await likes() == expected

        # Back-pressure: after the first failed flush each partition consumer had at most one
        # fetch in flight, so the shards applied at most that many messages until Cassandra was back.
        per_fetch = RuntimeOptions().fetch_batch
        assert processed_in_outage <= 2 * PARTITIONS * per_fetch, processed_in_outage
        assert processed_in_outage < DURING // 2, "the node kept taking messages in while it could not flush"
        assert rss_in_outage - rss_before <= RSS_BOUND_MB * 1024, (rss_before, rss_in_outage)
        final = await status()
        assert all(s.state == "running" for s in final.shards), [(s.kind, s.state, s.error) for s in final.shards]
    finally:
        await cassandra.restore()
        if sampler is not None:
            sampler.cancel()
        node.stop()
        await nc.close()
