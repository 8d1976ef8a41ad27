"""EntityHost's numbers for the operator's view: hottest entities and flush latency."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from clipstream.actors.handoff import Batch, FlushDone
from clipstream.actors.host import EntityHost
from clipstream.actors.testing import EchoCounter, EchoCounterKind, EchoStore
from clipstream.bus.messages import LikeDelta
from clipstream.bus.topology import Topology


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_host(tmp_path: Path, clock: Clock) -> EntityHost[EchoCounter]:
    kind = EchoCounterKind(EchoStore(str(tmp_path / "echo.db")), Topology(prefix="t"))
    return EntityHost(kind, "t.dlq.counter", idle_passivate=60, max_entities=1000, clock=clock)


def batch(videos: list[int], first_seq: int = 1) -> Batch:
    items = [(v, first_seq + i, LikeDelta(video_id=v, user_id=1, delta=1, at=1),
              SimpleNamespace(subject="t.counter.0", seq=first_seq + i)) for i, v in enumerate(videos)]
    return Batch(items, {v: EchoCounter(v) for v in set(videos)})  # type: ignore[arg-type]


class TestHot:
    def test_busiest_first_and_counted_per_interval(self, tmp_path: Path) -> None:
        host = make_host(tmp_path, Clock())
        host.apply(batch([7, 7, 7, 8, 9, 9]))
        assert host.take_hot(2) == [(7, 3), (9, 2)]
        assert host.take_hot(2) == []  # a new interval starts empty: the dict never grows unbounded


class TestFlushLatency:
    def test_measured_from_job_to_done(self, tmp_path: Path) -> None:
        clock = Clock()
        host = make_host(tmp_path, clock)
        host.apply(batch([7]))
        job = host.take_flush_job()
        assert job is not None
        clock.now += 0.25
        host.flush_done(FlushDone(job.job_id))
        assert host.last_flush_latency == 0.25 and host.flush_seconds == 0.25 and host.flushes == 1
