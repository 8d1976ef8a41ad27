"""Redis: derived, rebuildable data only — video cards, counts, and the global candidate lists.

Keys (``<ns>`` is the namespace, default ``cs``):

    <ns>:v:<id>    VideoCard of a ready video (msgspec JSON array), absent once deleted
    <ns>:l:<id>    like count of a video (written by its counter entity's flush)
    <ns>:fresh     ZSET video_id -> ready time (ms): newest uploads, trimmed
    <ns>:popular   ZSET video_id -> like count: most liked ready videos, trimmed
    <ns>:authors   HASH video_id -> author_id of the videos in those lists
    <ns>:tags      HASH video_id -> its hashtags, space-separated (videos with a caption tag only)
    <ns>:built     present once the candidate lists were built; gone after a flush or a restart
                   without persistence, which tells the worker's cache keeper to rebuild them
                   from Scylla (:mod:`clipstream.workers.cache_keeper`)
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import msgspec
from redis.asyncio import Redis

from clipstream.config.settings import RedisSettings
from clipstream.storage.hashtags import tag_id
from clipstream.storage.models import VideoCard

__all__ = ["Cache", "connect_redis"]

_card_decoder = msgspec.json.Decoder(VideoCard)
_encoder = msgspec.json.Encoder()

#: KEYS[1]: the popular list; ARGV[1]: the last rank wanted. A flat id, count, id, count... reply.
_POPULAR_SCRIPT = "return redis.call('ZREVRANGE', KEYS[1], 0, ARGV[1], 'WITHSCORES')"

FRESH_KEEP = 20_000
POPULAR_KEEP = 20_000


def connect_redis(settings: RedisSettings) -> Redis:
    """The one way a process makes its Redis client: bounded calls, dead connections noticed."""
    return Redis.from_url(
        settings.url,
        socket_timeout=settings.timeout,
        socket_connect_timeout=settings.timeout,
        health_check_interval=30,
    )


class Cache:
    """Typed access to clipstream's Redis keys, handed its client."""

    __slots__ = ("redis", "ns")

    def __init__(self, redis: Redis, namespace: str = "cs") -> None:
        self.redis = redis
        self.ns = namespace

    def _card(self, video_id: int) -> str:
        return f"{self.ns}:v:{video_id}"

    def _likes(self, video_id: int) -> str:
        return f"{self.ns}:l:{video_id}"

    async def cards_and_likes(self, video_ids: Sequence[int]) -> list[tuple[VideoCard | None, int | None]]:
        """Cards and like counts of many videos in one MGET; None where Redis has nothing."""
        if not video_ids:
            return []
        keys: list[str] = []
        for vid in video_ids:
            keys.append(self._card(vid))
            keys.append(self._likes(vid))
        values = await self.redis.mget(keys)
        out = []
        for i in range(0, len(values), 2):
            raw_card, raw_likes = values[i], values[i + 1]
            out.append(
                (
                    _card_decoder.decode(raw_card) if raw_card is not None else None,
                    int(raw_likes) if raw_likes is not None else None,
                )
            )
        return out

    async def put_cards(self, cards: Iterable[VideoCard]) -> None:
        cards = list(cards)
        if cards:
            await self.redis.mset({self._card(c.video_id): _encoder.encode(c) for c in cards})

    async def put_likes(self, counts: Iterable[tuple[int, int]]) -> None:
        """Like counts of videos; also re-ranks those already in the popular list."""
        counts = list(counts)
        if not counts:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.mset({self._likes(vid): n for vid, n in counts})
        pipe.zadd(f"{self.ns}:popular", {str(vid): n for vid, n in counts}, xx=True)
        await pipe.execute()

    async def publish_video(self, card: VideoCard, likes: int = 0) -> None:
        """A video became ready: cache its card and make it a candidate everywhere."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self._card(card.video_id), _encoder.encode(card))
        pipe.set(self._likes(card.video_id), likes, nx=True)
        pipe.zadd(f"{self.ns}:fresh", {str(card.video_id): card.created_at})
        pipe.zremrangebyrank(f"{self.ns}:fresh", 0, -FRESH_KEEP - 1)
        pipe.zadd(f"{self.ns}:popular", {str(card.video_id): likes})
        pipe.zremrangebyrank(f"{self.ns}:popular", 0, -POPULAR_KEEP - 1)
        pipe.hset(f"{self.ns}:authors", str(card.video_id), card.author_id)
        if card.hashtags:
            pipe.hset(f"{self.ns}:tags", str(card.video_id), " ".join(card.hashtags))
        await pipe.execute()

    async def put_tags(self, video_id: int, hashtags: Sequence[str]) -> None:
        """A ready video's caption changed: its hashtags as the feeds' candidate pools read them."""
        if hashtags:
            await self.redis.hset(f"{self.ns}:tags", str(video_id), " ".join(hashtags))
        else:
            await self.redis.hdel(f"{self.ns}:tags", str(video_id))

    async def tags_of(self, video_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        """The hashtag ids (:func:`~clipstream.storage.hashtags.tag_id`) of videos that have any."""
        if not video_ids:
            return {}
        raw = await self.redis.hmget(f"{self.ns}:tags", [str(v) for v in video_ids])
        return {v: tuple(tag_id(t) for t in r.decode().split()) for v, r in zip(video_ids, raw) if r}

    async def is_built(self) -> bool:
        """False when the candidate lists are gone (Redis flushed or restarted empty)."""
        return bool(await self.redis.exists(f"{self.ns}:built"))

    async def try_lock_rebuild(self, seconds: int) -> bool:
        """One rebuild at a time across processes: True if this caller may rebuild now."""
        return bool(await self.redis.set(f"{self.ns}:rebuilding", b"1", nx=True, ex=seconds))

    async def rebuild_candidates(self, videos: Sequence[tuple[int, int, int, int]],
                                 tags: Mapping[int, Sequence[str]] | None = None) -> None:
        """Write the candidate lists from (video_id, author_id, created_at ms, likes) of every ready
        video (and the ``tags`` of those that have hashtags), newest and most liked kept, then mark
        them built. Merges with what is there, so a video published meanwhile is not lost."""
        newest = sorted(videos, key=lambda v: v[2], reverse=True)[:FRESH_KEEP]
        liked = sorted(videos, key=lambda v: v[3], reverse=True)[:POPULAR_KEEP]
        pipe = self.redis.pipeline(transaction=False)
        for chunk in _chunks(newest, 1000):
            pipe.zadd(f"{self.ns}:fresh", {str(v[0]): v[2] for v in chunk})
        for chunk in _chunks(liked, 1000):
            pipe.zadd(f"{self.ns}:popular", {str(v[0]): v[3] for v in chunk})
        for chunk in _chunks([*newest, *liked], 1000):
            pipe.hset(f"{self.ns}:authors", mapping={str(v[0]): v[1] for v in chunk})
            tagged = {str(v[0]): " ".join(tags[v[0]]) for v in chunk if tags and tags.get(v[0])}
            if tagged:
                pipe.hset(f"{self.ns}:tags", mapping=tagged)
        pipe.zremrangebyrank(f"{self.ns}:fresh", 0, -FRESH_KEEP - 1)
        pipe.zremrangebyrank(f"{self.ns}:popular", 0, -POPULAR_KEEP - 1)
        pipe.set(f"{self.ns}:built", b"1")
        pipe.delete(f"{self.ns}:rebuilding")
        await pipe.execute()

    async def unpublish_video(self, video_id: int) -> None:
        """A video was deleted: drop it from the cache and the candidate lists."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self._card(video_id))
        pipe.zrem(f"{self.ns}:fresh", str(video_id))
        pipe.zrem(f"{self.ns}:popular", str(video_id))
        pipe.hdel(f"{self.ns}:authors", str(video_id))
        pipe.hdel(f"{self.ns}:tags", str(video_id))
        await pipe.execute()

    async def candidate_lists(self, fresh: int, popular: int) -> tuple[list[bytes], list[bytes]]:
        """The raw lists, in one round trip: the newest ``fresh`` ids, and the most liked
        ``popular`` as id, count, id, count... Cheap to compare with the previous answer."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrevrange(f"{self.ns}:fresh", 0, fresh - 1)
        # Through a script, the scores arrive as plain strings: redis-py's WITHSCORES reply
        # callback converted every score in Python (~6 % of a feed shard under the bench).
        pipe.eval(_POPULAR_SCRIPT, 1, f"{self.ns}:popular", popular - 1)
        new, pop = await pipe.execute()
        return new, pop

    async def candidates(
        self, fresh: int, popular: int, known_authors: Mapping[int, int] | None = None,
        lists: tuple[list[bytes], list[bytes]] | None = None,
    ) -> list[tuple[int, int, int]]:
        """(video_id, author_id, like count) of the newest ``fresh`` and most liked ``popular`` videos
        (from ``lists``, a :meth:`candidate_lists` answer, if given).

        A video's author never changes: ``known_authors`` (the caller's last answer) spares
        asking Redis again for them, so a refresh reads only the lists and the new videos'
        authors (the HMGET of every candidate was a quarter of a feed shard's time)."""
        new, pop = lists if lists is not None else await self.candidate_lists(fresh, popular)
        likes = dict(zip(map(int, pop[0::2]), (int(float(n)) for n in pop[1::2])))
        for v in new:
            likes.setdefault(int(v), 0)
        if not likes:
            return []
        known = known_authors or {}
        unknown = [v for v in likes if v not in known]
        found = dict(zip(unknown, await self.redis.hmget(f"{self.ns}:authors", [str(v) for v in unknown]))) if unknown else {}
        out = []
        for v, n in likes.items():
            author = known.get(v)
            if author is None:
                raw = found.get(v)
                if raw is None:
                    continue
                author = int(raw)
            out.append((v, author, n))
        return out


def _chunks(items: Sequence[tuple[int, int, int, int]], n: int) -> Iterable[Sequence[tuple[int, int, int, int]]]:
    return (items[i : i + n] for i in range(0, len(items), n))
