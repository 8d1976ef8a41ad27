"""The cache keeper rebuilds the candidate lists from Scylla once Redis lost them (real Redis and CQL)."""

from __future__ import annotations

import pytest

from clipstream.storage.cache import Cache
from clipstream.storage.ids import new_id
from clipstream.storage.models import Stats
from clipstream.storage.repos import StatsRepo, VideoRepo
from clipstream.workers.cache_keeper import CacheKeeper
from clipstream.workers.seed import seed_ready_videos

pytestmark = pytest.mark.integration


async def test_flushed_candidates_are_rebuilt_with_their_like_counts(cql, redis) -> None:
    cache = Cache(redis, namespace=f"t{new_id()}")  # a namespace of its own: other tests' keys stay
    author = new_id()
    videos = await seed_ready_videos(VideoRepo(cql), cache, {author: "keeper"}, 3)
    await StatsRepo(cql).put_many([Stats(videos[0], 7, 0, 0, 1)])
    keeper = CacheKeeper(VideoRepo(cql), StatsRepo(cql), cache)
    assert await keeper.check()  # never marked built: rebuilt once
    assert not await keeper.check()  # built: nothing to do
    for key in await redis.keys(f"{cache.ns}:*"):  # what FLUSHDB does to this namespace
        await redis.delete(key)
    assert await cache.candidates(fresh=50_000, popular=50_000) == []
    assert await keeper.check()
    got = {v: (a, n) for v, a, n in await cache.candidates(fresh=50_000, popular=50_000)}
    assert got[videos[0]] == (author, 7) and got[videos[1]] == (author, 0) and videos[2] in got
    assert await cache.is_built()


async def test_one_rebuild_at_a_time(cql, redis) -> None:
    cache = Cache(redis, namespace=f"t{new_id()}")
    assert await cache.try_lock_rebuild(30)
    keeper = CacheKeeper(VideoRepo(cql), StatsRepo(cql), cache)
    assert not await keeper.check()  # another process holds the lock
    assert not await cache.is_built()
