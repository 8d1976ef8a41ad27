"""Two nodes share the partitions through leases; one is SIGKILLed during a like stream.

Real processes (``clipstream node`` twice, different names and admin ports), real services, the real
counter and feed kinds: 20,000 distinct likes (plus repeats, which must change nothing) across 500
videos go in as LikeRequest messages on the feed partitions, the path the API uses; the feed
entities dedupe them and emit LikeDelta to the counter partitions. Midway one node is SIGKILLed
(its node process and every Thespian process of its actor system). The survivor must own every
lease within seconds, and every like count in Scylla must equal the distinct likes sent: nothing
lost, nothing double counted. The killed node then comes back and gets its fair share again.

The test runs on its own subject prefix (own streams, consumers and lease bucket), so a system
started by other e2e tests does not take part.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import nats
import nats.js.errors
import pytest

from clipstream.actors.leases import bucket_name, lease_key
from clipstream.bus.status import request_status
from clipstream.bus.codec import encode, partition_of
from clipstream.bus.messages import LikeRequest
from clipstream.bus.topology import ensure_streams
from clipstream.storage.ids import new_id
from clipstream.storage.repos import StatsRepo
from tests.e2e.nodes import NodeProc, assert_counts_become, eventually, private_bus

pytestmark = pytest.mark.integration

PARTITIONS = 32
KINDS = ("counter", "feed")
USERS, VIDEOS, LIKES_PER_USER = 400, 500, 50  # 20,000 distinct (user, video) likes, 40 per video
REPEATS = 2_000  # second likes of already liked videos: must change nothing
IN_FLIGHT = 200
LEASE_TTL = 6.0  # RuntimeOptions.lease_ttl


async def test_two_nodes_share_partitions_and_survive_a_sigkill(migrated, cql, tmp_path) -> None:
    prefix = "so" + uuid.uuid4().hex[:8]
    env, topology = private_bus(prefix, PARTITIONS, 2)
    nodes = {name: NodeProc(name, env, tmp_path / f"{name}.log") for name in ("so-a", "so-b")}
    a, b = nodes["so-a"], nodes["so-b"]
    nc = await nats.connect(migrated.nats.url, connect_timeout=5)
    js = nc.jetstream(timeout=10)
    t0 = time.monotonic()

    def stamp(what: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {what}")

    async def owners() -> dict[str, str | None]:
        try:
            kv = await js.key_value(bucket_name(prefix))
        except nats.js.errors.BucketNotFoundError:
            return {}
        out: dict[str, str | None] = {}
        for kind in KINDS:
            for p in range(PARTITIONS):
                try:
                    out[lease_key(kind, p)] = (await kv.get(lease_key(kind, p))).value.decode()
                except nats.js.errors.KeyNotFoundError:
                    out[lease_key(kind, p)] = None
        return out

    async def counts_by_owner() -> dict[str | None, int]:
        tally: dict[str | None, int] = {}
        for owner in (await owners()).values():
            tally[owner] = tally.get(owner, 0) + 1
        return tally

    async def hosted(node: NodeProc) -> set[tuple[str, int]]:
        status = await request_status(nc, topology, node.name)
        node.session = status.guardian.session
        return {(s.kind, p) for s in status.shards if s.state == "running" for p in s.partitions}

    try:
        await ensure_streams(js, topology)
        a.start()

        async def a_owns_all() -> bool:
            return await counts_by_owner() == {"so-a": 2 * PARTITIONS}

        await eventually(a_owns_all, 60, "the first node owns every partition")
        stamp("node a owns every partition")
        b.start()

        async def fair() -> bool:
            return await counts_by_owner() == {"so-a": PARTITIONS, "so-b": PARTITIONS}

        await eventually(fair, 60, "each node owns half of the partitions")
        stamp("nodes a and b own half each")
        for node in (a, b):  # each runs shards for exactly the partitions it leases
            leased = {tuple(k.split(".")) for k, o in (await owners()).items() if o == node.name}

            async def hosts_its_leases(node: NodeProc = node, leased: set = leased) -> bool:
                return {(k, str(p)) for k, p in await hosted(node)} == leased

            await eventually(hosts_its_leases, 30, f"{node.name} hosts its leased partitions")

        # The plan: 400 users like 50 distinct videos each (40 likes per video); some likes repeated.
        rng = random.Random(7)
        videos = [new_id() for _ in range(VIDEOS)]
        users = [new_id() for _ in range(USERS)]
        author = new_id()
        order = list(range(VIDEOS))
        rng.shuffle(order)
        pairs = [(u, videos[order[(i * LIKES_PER_USER + j) % VIDEOS]]) for i, u in enumerate(users)
                 for j in range(LIKES_PER_USER)]
        assert len(set(pairs)) == USERS * LIKES_PER_USER
        stream = pairs + rng.sample(pairs, REPEATS)
        rng.shuffle(stream)
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def send(n: int, user: int, video: int) -> None:
            message = LikeRequest(user_id=user, video_id=video, author_id=author, like=True, at=int(time.time() * 1000))
            subject = topology.feed_subject(partition_of(user, PARTITIONS))
            async with gate:
                await js.publish(subject, encode(message), headers={"Nats-Msg-Id": f"{prefix}:{n}"}, timeout=30)

        half = len(stream) // 2
        started = time.monotonic()
        await asyncio.gather(*(send(n, u, v) for n, (u, v) in enumerate(stream[:half])))
        stamp(f"published {half} messages in {time.monotonic() - started:.1f}s")
        a_pids = {s.pid for s in (await request_status(nc, topology, a.name)).shards}
        rest = asyncio.gather(*(send(n, u, v) for n, (u, v) in enumerate(stream[half:], start=half)))
        await asyncio.sleep(0.3)  # the kill lands while the second half streams in
        status = await request_status(nc, topology, b.name)
        b.session = status.guardian.session
        b.sigkill()
        killed_at = time.monotonic()
        processed = sum(s.processed for s in status.shards)
        stamp(f"SIGKILLed node b ({len(status.shards)} shards had processed {processed} messages, "
              f"{sum(s.dirty for s in status.shards)} entities dirty)")
        assert processed > 0, "node b did no work before the kill: the test would prove nothing"
        await rest
        stamp(f"published the other {len(stream) - half}")

        async def a_owns_all_again() -> bool:
            return await counts_by_owner() == {"so-a": 2 * PARTITIONS}

        await eventually(a_owns_all_again, LEASE_TTL * 3 + 10, "the survivor owns every partition")
        took_over = time.monotonic() - killed_at
        stamp(f"node a owns every partition {took_over:.1f}s after the kill")
        assert took_over < LEASE_TTL * 3, took_over

        async def a_hosts_all() -> bool:
            return len(await hosted(a)) == 2 * PARTITIONS

        await eventually(a_hosts_all, 30, "the survivor's shards host every partition")
        # A take-over only adds partitions: the survivor's shards bind them in place, no restart.
        assert {s.pid for s in (await request_status(nc, topology, a.name)).shards} == a_pids

        stats = StatsRepo(cql)
        expected = {v: 0 for v in videos}
        for _, v in pairs:
            expected[v] += 1

        async def likes() -> dict[int, int]:
            return {k: row.likes for k, row in (await stats.get_many(videos)).items()}

        await assert_counts_become(likes, expected, 120, "every like count in Scylla equals the distinct likes")
        stamp("every count in Scylla is exact")
        await asyncio.sleep(3)  # late redeliveries would show up here as double counts
        assert await likes() == expected

        b.start()
        await eventually(fair, 60, "the restarted node gets its fair share back")
        stamp("node b is back with half of the partitions")
        assert await likes() == expected
    finally:
        for node in nodes.values():
            try:  # the session of its actor system, to kill what a clean stop leaves
                await asyncio.wait_for(hosted(node), 5)
            except Exception:
                pass
        for node in nodes.values():
            node.stop()
        for node in nodes.values():
            assert not node.pids(), f"{node.name} left processes behind: {node.pids()}"
        for spec in topology.streams:
            try:
                await js.delete_stream(spec.name)
            except Exception:
                pass
        try:
            await js.delete_key_value(bucket_name(prefix))
        except Exception:
            pass
        await nc.close()
        for node in nodes.values():
            if node.log.exists():
                print(f"--- {node.name} log (tail) ---\n{node.log.read_text()[-2500:]}")
