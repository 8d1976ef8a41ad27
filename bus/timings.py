"""Per-stage latency histograms of a shard process: where a query's or a flush's time goes.

A shard has two threads (the actor's and the I/O loop's) that share one lock, a write-behind
flusher and a garbage collector, and any of them can hold a query up. Each stage is a fixed-bucket
histogram kept in plain Python (an observation is a bisect and two additions, no I/O), carried to
the Guardian in every :class:`~clipstream.actors.messages.ShardStats` and rendered by ``/metrics``
as ``clipstream_shard_stage_seconds``. Observations come from both threads and the GC callback;
the GIL makes each addition safe enough for a metric (an increment lost to a thread switch between
its read and its write is possible, and rare).

Stages (``STAGES``): ``lock_wait`` (a query on the I/O thread waiting for the actor's lock),
``query`` (answering it under the lock: the feed's ranking), ``apply_hold`` (the actor thread
holding the lock for one inbox item), ``tick_hold`` (holding it to take a flush job and the
passivation candidates), ``flush`` (a job taken to written and acked), ``store_write`` and
``load`` (the kind's Cassandra/Redis writes and activation reads), ``loop_lag`` (the I/O loop
late on a timer), ``gc`` (a collection's pause, whichever thread it ran on; ``gc_full``: the
full ones, generation 2, again on their own), ``pool_build``
(the feed's candidate pool rebuilt from its Redis lists), ``delivery`` (a bus message's ``at``,
stamped by its sender, to its arrival at the shard's I/O thread: JetStream and the pull; across
machines it includes their clock skew) and ``queue_wait`` (a batch of messages or a query handed
to the actor thread, to its turn there). The last two are the real-time path of a like: the
sender's stamp to the entity holding it is about their sum. ``read_after``: a query held until its
partition was fetched up to the write it names (:class:`clipstream.bus.rpc.Query` ``after``).
"""

from __future__ import annotations

import asyncio
import gc
import time
from bisect import bisect_left
from typing import Callable

import msgspec

__all__ = ["BUCKETS", "STAGES", "Hist", "StageHist", "Timings", "gc_timer", "loop_lag"]

#: upper bounds, seconds (Prometheus ``le``); one more bucket counts what is above the last
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STAGES = ("lock_wait", "query", "apply_hold", "tick_hold", "flush", "store_write", "load", "loop_lag", "gc",
          "gc_full", "pool_build", "delivery", "queue_wait", "read_after")
#: the loop-lag probe's period: a timer due every this often, late by how much
LAG_PERIOD = 0.02


class StageHist(msgspec.Struct, frozen=True, array_like=True):
    """A histogram on the wire: counts per bucket of :data:`BUCKETS` plus one above, and the sum."""

    counts: tuple[int, ...]
    sum: float


class Hist:
    """Counts per bucket and the sum of what was observed."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds

    def frozen(self) -> StageHist:
        return StageHist(tuple(self.counts), round(self.sum, 6))


class Timings:
    """One :class:`Hist` per stage, created on first use."""

    __slots__ = ("hists",)

    def __init__(self) -> None:
        self.hists: dict[str, Hist] = {name: Hist() for name in STAGES}

    def __getitem__(self, stage: str) -> Hist:
        return self.hists[stage]

    def snapshot(self) -> dict[str, StageHist]:
        return {name: h.frozen() for name, h in self.hists.items() if h.sum or any(h.counts)}


def gc_timer(hist: Hist, full: Hist | None = None,
             clock: Callable[[], float] = time.perf_counter) -> Callable[[str, dict], None]:
    """A ``gc.callbacks`` entry that observes each collection's pause into ``hist``, and the full
    collections' (generation 2) into ``full`` as well."""
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = clock()
        elif started[0]:
            pause = clock() - started[0]
            hist.observe(pause)
            if full is not None and info.get("generation") == 2:
                full.observe(pause)
            started[0] = 0.0

    gc.callbacks.append(callback)
    return callback


async def loop_lag(hist: Hist, period: float = LAG_PERIOD) -> None:
    """Forever: sleep ``period`` and observe how late the loop woke (what a ready callback waits
    behind whatever holds the loop, or the GIL)."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + period
        await asyncio.sleep(period)
        hist.observe(max(0.0, loop.time() - due))
