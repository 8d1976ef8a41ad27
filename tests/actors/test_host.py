"""EntityHost: the actor-thread logic of a shard, driven directly with the echo kind and its SQLite
store (no Thespian, no NATS). The JetStream messages it carries for acking are opaque to it, so
plain records stand in for them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest

from clipstream.actors.handoff import Batch, Evict, FlushDone, QueryItem
from clipstream.actors.host import EntityHost
from clipstream.actors.testing import POISON_USER, EchoCounter, EchoCounterKind, EchoStore
from clipstream.bus.codec import decode, encode
from clipstream.bus.messages import DeadLetter, LikeDelta, ViewDelta
from clipstream.bus.topology import Topology


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kind(tmp_path: Path) -> EchoCounterKind:
    return EchoCounterKind(EchoStore(str(tmp_path / "echo.db")), Topology(prefix="t"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def host(kind: EchoCounterKind, clock: Clock) -> EntityHost[EchoCounter]:
    return EntityHost(kind, "t.dlq.counter", idle_passivate=60, max_entities=1000, clock=clock)


def like(video: int, user: int = 1) -> LikeDelta:
    return LikeDelta(video_id=video, user_id=user, delta=1, at=1)


def raw(seq: int) -> SimpleNamespace:
    return SimpleNamespace(subject="t.counter.0", seq=seq)


def batch(items: list[tuple[int, object]], loaded: dict[int, EchoCounter] | None = None) -> Batch:
    return Batch([(msg.video_id, seq, msg, raw(seq)) for seq, msg in items], loaded or {})  # type: ignore[attr-defined]


class TestApply:
    def test_applies_and_covers_every_message(self, host: EntityHost[EchoCounter]) -> None:
        host.apply(batch([(1, like(7)), (2, like(7)), (3, like(8))], {7: EchoCounter(7), 8: EchoCounter(8)}))
        assert host.entities[7].likes == 2 and host.entities[8].likes == 1
        assert host.dirty == {7, 8}
        assert [r.seq for r in host.acks] == [1, 2, 3]
        # The echo kind emits one publish per like, de-duplicated by sequence.
        assert [p.msg_id for p in host.outbox.publishes] == ["echo:7:1", "echo:7:2", "echo:8:3"]

    def test_redelivered_sequence_is_skipped_but_still_acked(self, host: EntityHost[EchoCounter]) -> None:
        host.apply(batch([(5, like(7))], {7: EchoCounter(7, applied_seq=5, likes=1)}))
        assert host.entities[7].likes == 1
        assert host.dirty == set()
        assert len(host.acks) == 1

    def test_present_entity_wins_over_loaded_copy(self, host: EntityHost[EchoCounter]) -> None:
        host.apply(batch([(1, like(7))], {7: EchoCounter(7)}))
        stale = EchoCounter(7)
        host.apply(batch([(2, like(7))], {7: stale}))
        assert host.entities[7].likes == 2
        assert stale.likes == 0

    def test_raising_handler_dead_letters_that_message_only(self, host: EntityHost[EchoCounter]) -> None:
        poison = ViewDelta(video_id=7, user_id=POISON_USER, at=1)
        host.apply(batch([(1, like(7)), (2, poison), (3, ViewDelta(video_id=7, user_id=2, at=1))], {7: EchoCounter(7)}))
        entity = host.entities[7]
        assert (entity.likes, entity.views, entity.applied_seq) == (1, 1, 3)
        assert len(host.acks) == 3  # the poison one is acked too, after the flush
        letters = [p for p in host.outbox.publishes if p.subject == "t.dlq.counter"]
        assert len(letters) == 1
        letter = letters[0].message
        assert isinstance(letter, DeadLetter)
        assert letter.stream_seq == 2 and "ValueError" in letter.reason
        assert decode(letter.payload.encode()) == poison
        assert host.dead_letters == 1


class TestFlushJobs:
    def test_job_takes_snapshots_publishes_and_acks(self, host: EntityHost[EchoCounter], kind: EchoCounterKind) -> None:
        host.apply(batch([(1, like(7)), (2, like(8))], {7: EchoCounter(7), 8: EchoCounter(8)}))
        job = host.take_flush_job()
        assert job is not None
        assert sorted(s.key for s in job.snapshots) == [7, 8]
        assert len(job.publishes) == 2 and len(job.acks) == 2
        assert host.dirty == set() and host.acks == [] and host.outbox.publishes == []
        assert host.pending == {7: job.job_id, 8: job.job_id}
        asyncio.run(kind.flush(job.snapshots))
        assert kind.store.counts()[7].likes == 1
        host.flush_done(FlushDone(job.job_id))
        assert host.pending == {}
        assert host.take_flush_job() is None

    def test_older_job_done_keeps_newer_pending(self, host: EntityHost[EchoCounter]) -> None:
        host.apply(batch([(1, like(7))], {7: EchoCounter(7)}))
        first = host.take_flush_job()
        host.apply(batch([(2, like(7))]))
        second = host.take_flush_job()
        assert first and second
        host.flush_done(FlushDone(first.job_id))
        assert host.pending == {7: second.job_id}


class TestPassivation:
    def test_idle_clean_flushed_entities_are_candidates(self, host: EntityHost[EchoCounter], clock: Clock) -> None:
        host.apply(batch([(1, like(7)), (2, like(8))], {7: EchoCounter(7), 8: EchoCounter(8)}))
        clock.now += 61
        assert host.passivation_candidates() == []  # dirty
        job = host.take_flush_job()
        assert job
        assert host.passivation_candidates() == []  # flush not done yet
        host.flush_done(FlushDone(job.job_id))
        assert sorted(host.passivation_candidates()) == [7, 8]
        assert host.passivation_candidates() == []  # already asked

    def test_evict_drops_only_untouched_clean_entities(self, host: EntityHost[EchoCounter], clock: Clock) -> None:
        host.apply(batch([(1, like(7)), (2, like(8))], {7: EchoCounter(7), 8: EchoCounter(8)}))
        job = host.take_flush_job()
        assert job
        host.flush_done(FlushDone(job.job_id))
        clock.now += 61
        asked = clock.now
        candidates = host.passivation_candidates()
        clock.now += 1
        host.apply(batch([(3, like(8))]))  # 8 is used again before the Evict comes back
        kept = host.evict(Evict(candidates, asked))
        assert kept == [8]
        assert 7 not in host.entities and 8 in host.entities

    def test_over_capacity_passivates_least_recently_used(self, kind: EchoCounterKind, clock: Clock) -> None:
        host = EntityHost(kind, "t.dlq.counter", idle_passivate=3600, max_entities=2, clock=clock)
        for seq, video in enumerate([1, 2, 3, 4], start=1):
            clock.now += 1
            host.apply(batch([(seq, like(video))], {video: EchoCounter(video)}))
        job = host.take_flush_job()
        assert job
        host.flush_done(FlushDone(job.job_id))
        assert host.passivation_candidates() == [1, 2]


class TestQuery:
    def test_query_reply_goes_to_replies(self, host: EntityHost[EchoCounter]) -> None:
        host.query(QueryItem(9, b'{"q":1}', "_INBOX.x", {9: EchoCounter(9, likes=3)}))
        [(subject, data, error)] = host.take_replies()
        assert subject == "_INBOX.x" and not error
        assert msgspec.json.decode(data)["likes"] == 3

    def test_query_error_is_an_error_reply(self, host: EntityHost[EchoCounter]) -> None:
        host.query(QueryItem(9, b"not json", "_INBOX.y", {9: EchoCounter(9)}))
        [(_, data, error)] = host.take_replies()
        assert error and b"error" in data


def test_dead_letter_payload_round_trips() -> None:
    msg = like(3)
    assert decode(encode(msg)) == msg


class SizedKind(EchoCounterKind):
    """The echo kind with a declared size per entity, to drive the memory budget."""

    size = 1000

    def size_of(self, entity: EchoCounter) -> int:
        return self.size


class TestMemoryBudget:
    def fill(self, host: EntityHost[EchoCounter], clock: Clock, videos: list[int]) -> None:
        for seq, video in enumerate(videos, start=1):
            clock.now += 1
            host.apply(batch([(seq, like(video))], {video: EchoCounter(video)}))
        job = host.take_flush_job()
        assert job
        host.flush_done(FlushDone(job.job_id))

    def test_over_budget_passivates_least_recently_used(self, tmp_path: Path, clock: Clock) -> None:
        from clipstream.actors.host import KEY_OVERHEAD

        kind = SizedKind(EchoStore(str(tmp_path / "echo.db")), Topology(prefix="t"))
        per = kind.size + KEY_OVERHEAD
        host = EntityHost(kind, "t.dlq.counter", idle_passivate=3600, max_entities=1000, clock=clock,
                          memory_budget=3 * per)
        self.fill(host, clock, [1, 2, 3, 4, 5])
        assert host.passivation_candidates() == [1, 2]
        assert host.memory_estimate == 5 * per

    def test_within_budget_keeps_everything(self, tmp_path: Path, clock: Clock) -> None:
        kind = SizedKind(EchoStore(str(tmp_path / "echo.db")), Topology(prefix="t"))
        host = EntityHost(kind, "t.dlq.counter", idle_passivate=3600, max_entities=1000, clock=clock,
                          memory_budget=10 * (kind.size + 200))
        self.fill(host, clock, [1, 2, 3, 4, 5])
        assert host.passivation_candidates() == []

    def test_use_reorders_and_dirty_ones_are_skipped(self, tmp_path: Path, clock: Clock) -> None:
        from clipstream.actors.host import KEY_OVERHEAD

        kind = SizedKind(EchoStore(str(tmp_path / "echo.db")), Topology(prefix="t"))
        host = EntityHost(kind, "t.dlq.counter", idle_passivate=3600, max_entities=1000, clock=clock,
                          memory_budget=2 * (kind.size + KEY_OVERHEAD))
        self.fill(host, clock, [1, 2, 3, 4])
        host.apply(batch([(10, like(1))]))  # 1 is now the most recently used, and dirty
        host.apply(batch([(11, like(2))]))
        job = host.take_flush_job()
        assert job
        host.flush_done(FlushDone(job.job_id))
        host.apply(batch([(12, like(3))]))  # dirty: skipped, the next one goes instead
        assert host.passivation_candidates() == [4, 1]

    def test_passivated_ones_count_as_gone_until_evicted(self, tmp_path: Path, clock: Clock) -> None:
        from clipstream.actors.host import KEY_OVERHEAD

        kind = SizedKind(EchoStore(str(tmp_path / "echo.db")), Topology(prefix="t"))
        host = EntityHost(kind, "t.dlq.counter", idle_passivate=3600, max_entities=1000, clock=clock,
                          memory_budget=3 * (kind.size + KEY_OVERHEAD))
        self.fill(host, clock, [1, 2, 3, 4, 5])
        first = host.passivation_candidates()
        assert first == [1, 2]
        assert host.passivation_candidates() == []  # asked already: not asked twice
        assert host.evict(Evict(first, clock.now)) == []
        assert sorted(host.entities) == [3, 4, 5]


class TestIdleBound:
    def test_idle_bound_follows_each_entitys_last_use(self, host: EntityHost[EchoCounter], clock: Clock) -> None:
        host.apply(batch([(1, like(7))], {7: EchoCounter(7)}))
        clock.now += 30
        host.apply(batch([(2, like(8))], {8: EchoCounter(8)}))
        job = host.take_flush_job()
        assert job
        host.flush_done(FlushDone(job.job_id))
        clock.now += 31  # 7 idle for 61 s, 8 for 31 s
        assert host.passivation_candidates() == [7]
        clock.now += 30
        assert host.passivation_candidates() == [8]

    def test_a_used_entity_is_not_idle(self, host: EntityHost[EchoCounter], clock: Clock) -> None:
        host.apply(batch([(1, like(7)), (2, like(8))], {7: EchoCounter(7), 8: EchoCounter(8)}))
        clock.now += 50
        host.apply(batch([(3, like(7))]))
        job = host.take_flush_job()
        assert job
        host.flush_done(FlushDone(job.job_id))
        clock.now += 20
        assert host.passivation_candidates() == [8]

    def test_evicting_entity_used_meanwhile_is_kept(self, host: EntityHost[EchoCounter], clock: Clock) -> None:
        host.apply(batch([(1, like(7))], {7: EchoCounter(7)}))
        job = host.take_flush_job()
        assert job
        host.flush_done(FlushDone(job.job_id))
        clock.now += 61
        asked = clock.now
        assert host.passivation_candidates() == [7]
        host.query(QueryItem(7, b'{"q":1}', "_INBOX.z", {}))
        assert host.evict(Evict([7], asked)) == [7]
