"""Memory of active entities, measured in a fresh process (prints one JSON line):

    .venv/bin/python -m clipstream.bench.actors_memory counter 1000000
    .venv/bin/python -m clipstream.bench.actors_memory feed 100000

``counter``: the process imports what a shard process imports (Thespian, nats-py, the Cassandra and
Redis drivers), then activates the counters the way a shard does: message batches carrying the
entities the I/O thread loaded, handed to the shard's :class:`EntityHost`, with the I/O thread's
active-key set alongside, flush jobs taken and done and passivation passes run on the way. The
figure is the process's RSS afterwards (and its peak). No NATS or Scylla: what is measured is
what the shard holds, not the drivers' buffers under load.

``feed``: UserFeeds with realistic state as loaded from storage (300 served videos, 30 likes, 20
follows, 20 inbox entries, 8 stored pages of 10 of which the entity keeps the newest, past page
30, an interest profile at its bound, the sources of the 20 newest served), each then sent a
NewVideo through the host and flushed; bytes each by tracemalloc, the
entity alone and with its keys' bookkeeping (the host's dict and the I/O thread's active set).
"""

from __future__ import annotations

import gc
import json
from array import array
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

__all__ = ["measure_counters", "measure_feeds"]

_BATCH = 500


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _host(kind: Any) -> Any:
    from clipstream.actors.host import EntityHost
    from clipstream.config.settings import ActorSettings

    actors = ActorSettings()
    return EntityHost(kind, "bench.dlq", idle_passivate=actors.idle_passivate, max_entities=actors.max_entities,
                      memory_budget=int(actors.memory_budget_mb * 1024 * 1024))


def _flush(host: Any) -> None:
    from clipstream.actors.handoff import FlushDone

    job = host.take_flush_job()
    if job is not None:
        host.flush_done(FlushDone(job.job_id))
    host.passivation_candidates()


def measure_counters(count: int) -> dict[str, Any]:
    import clipstream.actors.entities.factories  # noqa: F401  (the drivers a shard imports)
    import clipstream.actors.shard  # noqa: F401  (Thespian, the bridge, nats-py)
    from clipstream.actors.entities.counter import Counter, CounterKind
    from clipstream.actors.handoff import Batch
    from clipstream.bus.messages import LikeDelta

    gc.collect()
    baseline = _status_mb("VmRSS")
    host = _host(CounterKind(None, None))  # type: ignore[arg-type]
    active: set[int] = set()  # the I/O thread's view of the active keys
    base, seq = random.randrange(1 << 50, 1 << 58), 1_000_000
    started = time.perf_counter()
    for i in range(0, count, _BATCH):
        items, loaded = [], {}
        for j in range(i, min(i + _BATCH, count)):
            key, seq = base + j * 7919, seq + 1
            items.append((key, seq, LikeDelta(video_id=key, user_id=j, delta=1, at=1), None))
            loaded[key] = Counter(key)
        active.update(loaded)
        host.apply(Batch(items, loaded))
        if (i // _BATCH) % 10 == 9:
            _flush(host)
    _flush(host)
    host.take_hot(5)
    gc.collect()
    return {
        "count": len(host.entities),
        "rss_mb": round(_status_mb("VmRSS"), 1),
        "peak_rss_mb": round(_status_mb("VmHWM"), 1),
        "baseline_rss_mb": round(baseline, 1),
        "bytes_each_over_baseline": round((_status_mb("VmRSS") - baseline) * 1024 * 1024 / count),
        "host_estimate_mb": round(host.estimate_memory() / 2**20, 1),
        "activate_seconds": round(time.perf_counter() - started, 2),
    }


def full_profile(rnd: random.Random, authors: list[int]) -> bytes:
    """A stored profile at its bound: TOP_K hashtags and TOP_K authors."""
    from clipstream.actors.entities.profile import TOP_K, Profile

    p = Profile()
    for author in rnd.sample(authors, TOP_K):
        p.learn(author, [rnd.getrandbits(63) for _ in range(2)], 1.0)
    return p.encode()


def measure_feeds(count: int) -> dict[str, Any]:
    from clipstream.actors.entities.feed import RECENT_KEEP, FeedKind, build_feed
    from clipstream.actors.handoff import Batch
    from clipstream.bus.messages import NewVideo
    from clipstream.storage.ids import IdGenerator

    ids = IdGenerator(salt=3)
    rnd = random.Random(5)
    videos = [ids() for _ in range(50_000)]
    authors = [ids() for _ in range(5_000)]
    rnd.shuffle(videos)
    rnd.shuffle(authors)
    kind = FeedKind(None, None, None, None, subject_for=lambda m: "bench")  # type: ignore[arg-type]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    feeds = []
    nv, na = len(videos), len(authors)
    for _ in range(count):
        # windows of the shuffled id lists at random offsets: distinct ids, cheap to draw
        o, a = rnd.randrange(nv - 400), rnd.randrange(na - 40)
        served = videos[o : o + 300]
        recent = served[-80:]
        feeds.append(build_feed(
            ids(), seq=rnd.randrange(1 << 20, 1 << 30), next_page=30,
            inbox=list(zip(videos[o + 300 : o + 320], authors[a : a + 20])),
            served=set(served), pages={22 + p: recent[p * 10 : p * 10 + 10] for p in range(8)},
            liked=dict(zip(videos[o + 320 : o + 350], authors[a + 20 : a + 40])),
            following=set(authors[a : a + 20]),
            profile=full_profile(rnd, authors),
        ))
        # what a feed that serves pages keeps of its newest: ids and the source of each
        feeds[-1].recent = array("q", served[-RECENT_KEEP:])
        feeds[-1].recent_src = bytes(rnd.randrange(5) for _ in range(RECENT_KEEP))
    del served, recent
    gc.collect()
    alone = tracemalloc.get_traced_memory()[0] - before
    host = _host(kind)
    active: set[int] = set()
    seq = 1 << 31
    for i in range(0, count, _BATCH):
        chunk = feeds[i : i + _BATCH]
        items = []
        for f in chunk:
            seq += 1
            video = NewVideo(user_id=f.key, video_id=ids(), author_id=rnd.choice(authors), at=1)
            items.append((f.key, seq, video, None))
        loaded = {f.key: f for f in chunk}
        active.update(loaded)
        host.apply(Batch(items, loaded))
        _flush(host)
    del feeds, chunk, items, loaded
    host.take_hot(5)
    gc.collect()
    total = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    sizes = [kind.size_of(f) for f in list(host.entities.values())[:1000]]
    return {
        "count": len(host.entities),
        "bytes_each": round(alone / count),
        "bytes_each_with_keys": round(total / count),
        "size_of_mean": round(sum(sizes) / len(sizes)),
        "state": "300 served, 30 liked, 20 following, 21 inbox, 8 stored pages of 10 (the newest kept), "
                 "a full profile (32 hashtags, 32 authors), the sources of the 20 newest served",
    }


def main() -> None:
    what, count = sys.argv[1], int(sys.argv[2])
    result = measure_counters(count) if what == "counter" else measure_feeds(count)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
