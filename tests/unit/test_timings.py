"""The shard's per-stage histograms: buckets, the wire form, the GC and loop-lag probes."""

from __future__ import annotations

import asyncio
import gc
import time

import msgspec

from clipstream.actors.messages import ShardStats
from clipstream.bus.timings import BUCKETS, STAGES, Hist, StageHist, Timings, gc_timer, loop_lag


class TestHist:
    def test_an_observation_lands_in_the_first_bucket_not_below_it(self) -> None:
        h = Hist()
        for seconds in (0.00005, 0.0001, 0.0003, 0.02, 0.05, 7.0):
            h.observe(seconds)
        counts = dict(zip((*BUCKETS, float("inf")), h.counts))
        assert counts[0.0001] == 2  # 50 µs and exactly 100 µs (le is inclusive)
        assert counts[0.0005] == 1 and counts[0.025] == 1 and counts[0.05] == 1
        assert counts[float("inf")] == 1  # above the last bound
        assert sum(h.counts) == 6 and abs(h.sum - 7.07045) < 1e-9

    def test_snapshot_skips_empty_stages_and_survives_the_wire(self) -> None:
        t = Timings()
        t["lock_wait"].observe(0.003)
        snap = t.snapshot()
        assert set(snap) == {"lock_wait"} and set(STAGES) >= set(snap)
        stats = ShardStats(pid=1, kind="feed", partitions=(0,), stages=snap)
        back = msgspec.json.decode(msgspec.json.encode(stats), type=ShardStats)
        assert back.stages["lock_wait"] == StageHist(snap["lock_wait"].counts, 0.003)
        assert back.stages["lock_wait"].counts[BUCKETS.index(0.005)] == 1


def test_gc_timer_observes_each_collection() -> None:
    h = Hist()
    callback = gc_timer(h)
    try:
        gc.collect()
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    assert sum(h.counts) == 2 and h.sum > 0


async def test_loop_lag_sees_a_blocked_loop() -> None:
    h = Hist()
    task = asyncio.create_task(loop_lag(h, period=0.005))
    await asyncio.sleep(0.02)
    time.sleep(0.06)  # holds the loop: the probe's timer is due meanwhile
    await asyncio.sleep(0.02)
    task.cancel()
    over = sum(n for bound, n in zip((*BUCKETS, float("inf")), h.counts) if bound > 0.025)
    assert over >= 1


def test_gc_timer_counts_full_collections_apart() -> None:
    every, full = Hist(), Hist()
    callback = gc_timer(every, full)
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        gc.callbacks.remove(callback)
    assert sum(every.counts) == 2 and sum(full.counts) == 1
