"""The shard runtime end to end: a real multiprocTCPBase node running the echo kind, a real
nats-server, messages published to partition subjects, state read back from the kind's store."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import msgspec
import nats
import pytest
from nats.js import JetStreamContext

from clipstream.actors.node import Node
from clipstream.actors.testing import POISON_USER, EchoStore
from clipstream.bus.codec import encode, partition_of
from clipstream.bus.messages import BusMessage, DeadLetter, Follow, LikeDelta, ViewDelta
from clipstream.bus.rpc import ERROR_HEADER, Query, QueryFailed
from clipstream.bus.topology import Topology
from clipstream.config.settings import Settings

PARTITIONS = 8


async def until(predicate: Callable[[], Awaitable[Any] | Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


class Bus:
    """The test's side of NATS: publish to partitions, read dead letters and consumer state."""

    def __init__(self, nc: nats.NATS, settings: Settings) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.settings = settings
        self.topology = Topology.from_settings(settings.nats)

    def subject(self, video: int) -> str:
        return self.topology.counter_subject(partition_of(video, PARTITIONS))

    async def publish(self, message: BusMessage, video: int | None = None) -> int:
        video = video if video is not None else message.video_id  # type: ignore[union-attr]
        ack = await self.js.publish(self.subject(video), encode(message))
        return ack.seq

    async def publish_raw(self, subject: str, payload: bytes) -> int:
        return (await self.js.publish(subject, payload)).seq

    async def stream_messages(self, stream_suffix: str, subject: str | None = None) -> list[bytes]:
        stream = f"{self.topology.prefix.upper()}_{stream_suffix}"
        info = await self.js.stream_info(stream)
        out: list[bytes] = []
        if not info.state.messages:
            return out
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await self.js.get_msg(stream, seq)
            if subject is None or msg.subject == subject:
                out.append(msg.data)
        return out

    async def dead_letters(self) -> list[DeadLetter]:
        data = await self.stream_messages("DLQ")
        return [msgspec.json.decode(d, type=DeadLetter) for d in data]

    async def ack_pending(self) -> int:
        stream = f"{self.topology.prefix.upper()}_COUNTER"
        total = 0
        for p in range(PARTITIONS):
            total += (await self.js.consumer_info(stream, f"counter-{p}")).num_ack_pending
        return total


@pytest.fixture
async def bus(node: Node, actor_settings: Settings) -> AsyncIterator[Bus]:
    # After the node: Thespian forks the test process, and a NATS socket open at that moment
    # would live on in every actor process.
    nc = await nats.connect(actor_settings.nats.url)
    try:
        yield Bus(nc, actor_settings)
    finally:
        await nc.close()


def likes(video: int, n: int, first_user: int = 1) -> list[LikeDelta]:
    return [LikeDelta(video_id=video, user_id=first_user + i, delta=1, at=1) for i in range(n)]


class TestApplyAndFlush:
    async def test_messages_are_applied_and_flushed(self, bus: Bus, echo_store: EchoStore, node: Node) -> None:
        videos = list(range(101, 121))
        for v in videos:
            for m in likes(v, 5):
                await bus.publish(m)
            await bus.publish(ViewDelta(video_id=v, user_id=1, at=1))

        def flushed() -> bool:
            counts = echo_store.counts()
            return all(v in counts and (counts[v].likes, counts[v].views) == (5, 1) for v in videos)

        await until(flushed, what="all counts flushed")
        await until(lambda: _zero(bus.ack_pending()), what="all acked")
        # Each like was echoed once through the outbox, with its msg-id.
        echoed = await bus.stream_messages("VIDEO", bus.topology.video_subject("echo"))
        assert len(echoed) == 100
        # Stats reach the Guardian every stats_interval, so the status trails a little.
        def stats_caught_up() -> Any:
            st = node.status()
            done = sum(s.processed for s in st.shards) == 120 and all(s.last_flush_age >= 0 for s in st.shards)
            return done and st

        status = await until(stats_caught_up, what="stats")
        assert sum(s.entities for s in status.shards) == 20
        # The kind's own counters travel with the stats (each like applied once, whichever shard).
        assert sum(s.counters.get("likes_applied", 0) for s in status.shards) == 100
        assert all(s.state == "running" and s.restarts == 0 and s.pid > 0 for s in status.shards)
        assert echo_store.control("double_applied") == 0


async def _zero(pending: Awaitable[int]) -> bool:
    return await pending == 0


class TestDeadLetters:
    async def test_malformed_payload_is_dead_lettered_and_later_messages_apply(
        self, bus: Bus, echo_store: EchoStore
    ) -> None:
        video = 301
        subject = bus.subject(video)
        bad_seq = await bus.publish_raw(subject, b"{not json")
        # Decodes, but is not a counter message: the kind has no key for it.
        wrong_seq = await bus.publish(Follow(user_id=5, author_id=6, follow=True, at=1), video=video)
        for m in likes(video, 3):
            await bus.publish(m)

        await until(lambda: video in echo_store.counts() and echo_store.counts()[video].likes == 3, what="likes")
        letters = await until(bus.dead_letters, what="dead letters")
        by_seq = {d.stream_seq: d for d in letters}
        assert set(by_seq) == {bad_seq, wrong_seq}
        assert by_seq[bad_seq].origin_subject == subject
        assert by_seq[bad_seq].reason.startswith("undecodable")
        assert by_seq[bad_seq].payload == "{not json"
        assert "no entity key" in by_seq[wrong_seq].reason
        await until(lambda: _zero(bus.ack_pending()), what="dead letters acked")

    async def test_message_on_the_wrong_partition_is_dead_lettered(self, bus: Bus, echo_store: EchoStore) -> None:
        video = 302
        wrong = bus.topology.counter_subject((partition_of(video, PARTITIONS) + 1) % PARTITIONS)
        seq = await bus.publish_raw(wrong, encode(likes(video, 1)[0]))
        [letter] = await until(bus.dead_letters, what="dead letter")
        assert letter.stream_seq == seq and "belongs to partition" in letter.reason
        assert video not in echo_store.counts()

    async def test_raising_handler_dead_letters_only_that_message(self, bus: Bus, echo_store: EchoStore) -> None:
        video = 303
        await bus.publish(ViewDelta(video_id=video, user_id=1, at=1))
        poison_seq = await bus.publish(ViewDelta(video_id=video, user_id=POISON_USER, at=1))
        await bus.publish(ViewDelta(video_id=video, user_id=2, at=1))
        await until(lambda: video in echo_store.counts() and echo_store.counts()[video].views == 2, what="views")
        [letter] = await until(bus.dead_letters, what="dead letter")
        assert letter.stream_seq == poison_seq
        assert "ValueError" in letter.reason and str(POISON_USER) in letter.payload
        await until(lambda: _zero(bus.ack_pending()), what="all acked")


class TestAckAfterFlush:
    async def test_nothing_is_acked_while_the_flush_fails(self, bus: Bus, echo_store: EchoStore, node: Node) -> None:
        echo_store.set_control("fail_flush", 1)
        video = 401
        for m in likes(video, 30):
            await bus.publish(m)
        await until(lambda: echo_store.control("flush_failures") >= 3, what="failing flushes")
        assert await bus.ack_pending() == 30
        assert video not in echo_store.counts()
        assert any(s.flush_failures > 0 for s in node.status().shards)

        echo_store.set_control("fail_flush", 0)
        await until(lambda: video in echo_store.counts() and echo_store.counts()[video].likes == 30, what="flush")
        await until(lambda: _zero(bus.ack_pending()), what="acks after the flush")
        assert len(echo_store.applied(video)) == 30
        assert echo_store.control("double_applied") == 0
        # Fetching resumes on its own after the failures.
        for m in likes(video, 5, first_user=100):
            await bus.publish(m)
        await until(lambda: echo_store.counts()[video].likes == 35, what="fetch resumed")


async def ask(bus: Bus, key: int, body: object) -> bytes:
    """One entity query of the counter kind, as the API sends it (bus/rpc.py)."""
    payload = msgspec.json.encode(Query(key, msgspec.Raw(msgspec.json.encode(body))))
    subject = bus.topology.rpc_subject("counter", partition_of(key, PARTITIONS))
    reply = await bus.nc.request(subject, payload, timeout=2)
    assert not (reply.headers and reply.headers.get(ERROR_HEADER)), reply.data
    return reply.data


class TestQuery:
    async def test_query_round_trip(self, bus: Bus, echo_store: EchoStore) -> None:
        video = 501
        for m in likes(video, 4):
            await bus.publish(m)
        await until(lambda: video in echo_store.counts(), what="likes")
        reply = msgspec.json.decode(await ask(bus, video, {"page": 1}))
        assert reply == {"key": video, "likes": 4, "views": 0, "applied_seq": reply["applied_seq"],
                         "request": {"page": 1}}
        # A key never seen is activated by the query itself.
        fresh = msgspec.json.decode(await ask(bus, 502, None))
        assert fresh["likes"] == 0

    async def test_bad_query_is_an_error_reply(self, bus: Bus) -> None:
        subject = bus.topology.rpc_subject("counter", 0)
        reply = await bus.nc.request(subject, b"[1,2", timeout=2)
        assert reply.headers and reply.headers.get(ERROR_HEADER) == "1"
        msgspec.json.decode(reply.data, type=QueryFailed)
        # Right subject for partition 0 but a key of another partition.
        other = next(k for k in range(1, 100) if partition_of(k, PARTITIONS) != 0)
        reply = await bus.nc.request(subject, msgspec.json.encode({"key": other}), timeout=2)
        assert reply.headers and reply.headers.get(ERROR_HEADER) == "1"
        assert msgspec.json.decode(reply.data, type=QueryFailed).error


class TestSupervision:
    async def test_killed_shard_is_restarted_and_nothing_is_applied_twice(
        self, bus: Bus, echo_store: EchoStore, node: Node
    ) -> None:
        video = 601
        for m in likes(video, 10):
            await bus.publish(m)
        await until(lambda: video in echo_store.counts() and echo_store.counts()[video].likes == 10, what="first")
        # The shard's status is pushed periodically: wait until it counts the first batch, so the
        # baseline is taken before the second batch is published (taking it after let a fast shard
        # count part of the second batch into the baseline, and the wait below never ended).
        owner = await until(
            lambda: next(
                (s for s in node.status().shards if partition_of(video, PARTITIONS) in s.partitions and s.processed >= 10),
                None,
            ),
            what="first batch counted in the shard's status",
        )
        assert owner.processed == 10
        # Applied in memory but not flushed (so not acked) when the shard dies.
        echo_store.set_control("fail_flush", 1)
        for m in likes(video, 10, first_user=100):
            await bus.publish(m)
        await until(
            lambda: next(s for s in node.status().shards if s.index == owner.index).processed >= 20,
            what="second batch applied in memory",
        )
        os.kill(owner.pid, signal.SIGKILL)
        echo_store.set_control("fail_flush", 0)

        def restarted() -> Any:
            s = next(s for s in node.status().shards if s.index == owner.index)
            return s.state == "running" and s.pid not in (0, owner.pid) and s

        new = await until(restarted, what="restarted shard")
        assert new.restarts == 1
        await until(lambda: echo_store.counts()[video].likes == 20, what="redelivered batch")
        for m in likes(video, 5, first_user=200):
            await bus.publish(m)
        await until(lambda: echo_store.counts()[video].likes == 25, what="processing continues")
        await until(lambda: _zero(bus.ack_pending()), what="all acked")
        assert echo_store.control("double_applied") == 0
        assert len(echo_store.applied(video)) == 25
        other = next(s for s in node.status().shards if s.index != owner.index)
        assert other.restarts == 0


class TestPassivation:
    async def test_idle_entities_are_passivated_and_reload_their_flushed_state(
        self, actor_settings: Settings, echo_store: EchoStore, helpers: Any
    ) -> None:
        settings = msgspec.structs.replace(
            actor_settings, actors=msgspec.structs.replace(actor_settings.actors, idle_passivate=0.5)
        )
        node = Node(settings, kinds={"counter": helpers.echo_factory}, options=helpers.fast)
        node.start()
        try:
            node.wait_ready(30)
            nc = await nats.connect(settings.nats.url)
            try:
                bus = Bus(nc, settings)
                videos = [701, 702, 703]
                for v in videos:
                    for m in likes(v, 3):
                        await bus.publish(m)
                await until(lambda: all(v in echo_store.counts() for v in videos), what="flushed")
                # Idle for longer than idle_passivate: every entity leaves memory.
                await until(
                    lambda: (st := node.status()) and sum(s.processed for s in st.shards) == 9
                    and sum(s.entities for s in st.shards) == 0,
                    what="passivation",
                )
                # The next message reloads the flushed state and continues from it.
                for m in likes(701, 2, first_user=50):
                    await bus.publish(m)
                await until(lambda: echo_store.counts()[701].likes == 5, what="reloaded entity")
                assert echo_store.control("double_applied") == 0
            finally:
                await nc.close()
        finally:
            node.shutdown()


class TestCrashUnderLoad:
    async def test_kill_during_steady_load_counts_exactly(self, bus: Bus, echo_store: EchoStore, node: Node) -> None:
        """SIGKILL a shard while it applies, flushes and acks: some messages are flushed and acked,
        some flushed but not acked, some only applied. Redelivery from the ack floor plus the
        entities' sequence check must still count each message exactly once."""
        videos = list(range(801, 841))
        per_video = 50
        total = len(videos) * per_video

        async def publish_all() -> None:
            for i in range(per_video):
                await asyncio.gather(*(bus.publish(m) for v in videos for m in likes(v, 1, first_user=1 + i)))
                await asyncio.sleep(0.005)

        publisher = asyncio.create_task(publish_all())
        await until(lambda: sum(r.events for r in echo_store.counts().values()) >= total // 4, what="progress")
        victims = [s for s in node.status().shards]
        for shard in victims:
            os.kill(shard.pid, signal.SIGKILL)
        await publisher

        def all_counted() -> bool:
            counts = echo_store.counts()
            return all(v in counts and counts[v].likes == per_video for v in videos)

        try:
            await until(all_counted, timeout=40, what="exact counts after the crash")
        except BaseException:
            print({v: (r.likes, r.events, r.applied_seq) for v, r in echo_store.counts().items()})
            print(node.status())
            print("double", echo_store.control("double_applied"), "pending", await bus.ack_pending())
            raise
        await until(lambda: _zero(bus.ack_pending()), what="all acked")
        assert echo_store.control("double_applied") == 0
        assert sum(len(echo_store.applied(v)) for v in videos) == total
        await until(
            lambda: all(s.restarts == 1 and s.state == "running" for s in node.status().shards), what="running"
        )
        # The outbox publishes were de-duplicated by msg-id across the crash.
        echoed = await bus.stream_messages("VIDEO", bus.topology.video_subject("echo"))
        assert len(echoed) == total
