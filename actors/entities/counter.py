"""Counter entities: exact like/view counts of a video and follower count of a creator.

Users and videos share one id space, so one kind keyed by id serves both. Counts are absolute and
flushed together with the highest stream sequence applied; a redelivered event (sequence not above
it) changes nothing, which makes replays after a crash exact.
"""

from __future__ import annotations


import msgspec

from clipstream.actors.entity import EntityKind, Outbox
from clipstream.bus.messages import BusMessage, FollowDelta, LikeDelta, ViewDelta
from clipstream.storage.cache import Cache
from clipstream.storage.models import Stats
from clipstream.storage.repos import StatsRepo

__all__ = ["Counter", "CounterKind", "CounterSnapshot"]


class Counter(msgspec.Struct, gc=False):
    """Counts of one id.

    A shard holds a million of these: a msgspec Struct is a bare object of six pointers, and
    ``gc=False`` drops the collector's header (it holds ints and a bool, so never a cycle):
    64 bytes where a ``__slots__`` class takes 80.
    """

    key: int
    likes: int = 0
    views: int = 0
    followers: int = 0
    seq: int = 0
    likes_changed: bool = False


class CounterSnapshot(msgspec.Struct, frozen=True, gc=False):
    """What a flush writes of one counter: its stats row, and whether Redis needs its like count."""

    row: Stats
    likes_changed: bool


class CounterKind(EntityKind[Counter]):
    """Loads counts from the stats table; flushes them to it and the like counts to Redis."""

    name = "counter"

    def __init__(self, stats: StatsRepo, cache: Cache) -> None:
        self.stats = stats
        self.cache = cache

    def key_of(self, message: BusMessage) -> int:
        if isinstance(message, (LikeDelta, ViewDelta)):
            return message.video_id
        if isinstance(message, FollowDelta):
            return message.author_id
        raise TypeError(f"a counter does not take {type(message).__name__}")

    async def load(self, keys: list[int]) -> dict[int, Counter]:
        found = await self.stats.get_many(keys)
        rows = {k: found.get(k) or Stats(k) for k in keys}
        return {k: Counter(k, r.likes, r.views, r.followers, r.applied_seq) for k, r in rows.items()}

    def handle(self, entity: Counter, message: BusMessage, seq: int, outbox: Outbox) -> bool:
        if seq <= entity.seq:
            return False  # applied before the last flush: a redelivery
        entity.seq = seq
        if isinstance(message, LikeDelta):
            entity.likes = max(0, entity.likes + message.delta)
            entity.likes_changed = True
        elif isinstance(message, ViewDelta):
            entity.views += 1
        elif isinstance(message, FollowDelta):
            entity.followers = max(0, entity.followers + message.delta)
        return True

    def snapshot(self, entity: Counter) -> CounterSnapshot:
        snap = CounterSnapshot(Stats(entity.key, entity.likes, entity.views, entity.followers, entity.seq),
                               entity.likes_changed)
        entity.likes_changed = False
        return snap

    async def flush(self, snapshots: list[CounterSnapshot]) -> None:
        # Scylla first: it is the truth; Redis is rebuilt from it if the second step fails.
        await self.stats.put_many(s.row for s in snapshots)
        await self.cache.put_likes((s.row.id, s.row.likes) for s in snapshots if s.likes_changed)

    def size_of(self, entity: Counter) -> int:
        # the struct (64) and its sequence int (32); counts under 257 are shared small ints, and
        # the key int is counted with the host's per-key overhead (measured with tracemalloc)
        return 96 + (32 if entity.likes > 256 else 0) + (32 if entity.views > 256 else 0)
