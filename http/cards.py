"""Video cards: built once here for the feed, the profile grid and the video page.

A card (:class:`~clipstream.storage.models.VideoCard`) is what a list item needs of a ready video;
Redis holds one per servable video. :class:`Cards` reads cards and like counts for a page of ids in
ONE Redis MGET and falls back to Scylla only for what Redis lacks (re-caching those cards), dropping
videos that are deleted or not ready.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable, Generic, Iterable, Sequence, TypeVar

from clipstream.http.schemas import FeedItem, VideoDetail
from clipstream.storage.cache import Cache
from clipstream.storage.models import Video, VideoCard
from clipstream.storage.objects import ObjectStore
from clipstream.storage.repos import StatsRepo, UserRepo, VideoRepo

__all__ = ["Cards", "MediaUrls", "feed_item", "utc"]

T = TypeVar("T")


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


class MediaUrls:
    """URLs of processed objects, remembered for half their lifetime.

    With a public/CDN base a URL is a string join; presigned GETs cost an HMAC chain each, and a
    feed page needs two per item, so the same key is signed once per worker per half-TTL.
    """

    __slots__ = ("objects", "_urls", "_keep", "_max")

    def __init__(self, objects: ObjectStore, keep_seconds: float, max_entries: int = 100_000) -> None:
        self.objects = objects
        self._urls: dict[str, tuple[str, float]] = {}
        self._keep = keep_seconds
        self._max = max_entries

    def url(self, key: str) -> str:
        now = time.monotonic()
        hit = self._urls.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        url = self.objects.media_url(key)
        if len(self._urls) >= self._max:
            self._urls.clear()
        self._urls[key] = (url, now + self._keep)
        return url


def feed_item(card: VideoCard, likes: int, urls: MediaUrls) -> FeedItem:
    """The API item of a card (also what the benchmark's reference servers answer)."""
    return FeedItem(
        video_id=str(card.video_id),
        author_id=str(card.author_id),
        username=card.username,
        video_url=urls.url(card.media_key),
        thumbnail_url=urls.url(card.thumb_key),
        like_count=max(likes, 0),
        duration=card.duration,
        created_at=utc(card.created_at),
        caption=card.caption,
        hashtags=list(card.hashtags),
        video_url_low=urls.url(card.low_key) if card.low_key else None,
        video_kbps=card.kbps or None,
        video_low_kbps=card.low_kbps or None,
    )


class _Together(Generic[T]):
    """Fetches by id shared by every request that asks in the same event-loop turn: one call of
    ``fetch`` for all of their ids. Feed replies arrive from NATS in bursts, and so do the
    requests they wake; one Redis round trip each was a fifth of an API worker's time under the
    feed bench (redis-py's cost is per command, not per key)."""

    __slots__ = ("fetch", "_ids", "_done")

    def __init__(self, fetch: Callable[[list[int]], Awaitable[dict[int, T]]]) -> None:
        self.fetch = fetch
        self._ids: dict[int, None] = {}  # this turn's, in the order asked
        self._done: asyncio.Future[dict[int, T]] | None = None

    async def get(self, ids: Iterable[int]) -> dict[int, T]:
        done = self._done
        if done is None:
            loop = asyncio.get_running_loop()
            done = self._done = loop.create_future()
            loop.call_soon(self._send)  # after the callbacks already ready: they may join
        self._ids.update(dict.fromkeys(ids))
        # shielded: a request given up by its client must not cancel the others' answer
        return await asyncio.shield(done)

    def _send(self) -> None:
        ids, done = list(self._ids), self._done
        self._ids, self._done = {}, None  # later requests start the next batch
        asyncio.get_running_loop().create_task(self._fill(ids, done))  # type: ignore[arg-type]

    async def _fill(self, ids: list[int], done: "asyncio.Future[dict[int, T]]") -> None:
        try:
            done.set_result(await self.fetch(ids))
        except Exception as exc:  # every waiter gets it (an outage is a 503 for each)
            done.set_exception(exc)
            done.exception()  # retrieved: no "never retrieved" warning if all waiters left


class Cards:
    """Hydrates video ids into API items: this worker's recent items, then Redis, then Scylla.

    Feed items are kept in the worker for ``item_ttl`` seconds (1 s by default): a feed page is
    mostly videos other users were just served, and the design accepts like counts that lag by a
    second or so. A hit costs a dict lookup instead of a share of a Redis MGET, card decoding and
    item building; a deletion reaches feeds within the same second. ``card`` (likes and views)
    never uses them: a deleted video must answer 404 at once.
    """

    __slots__ = ("cache", "videos", "users", "stats", "urls", "item_ttl", "_items", "_max_items", "_items_together",
                 "_cards_together")

    def __init__(self, cache: Cache, videos: VideoRepo, users: UserRepo, stats: StatsRepo, urls: MediaUrls,
                 item_ttl: float = 1.0, max_items: int = 100_000) -> None:
        self.cache = cache
        self.videos = videos
        self.users = users
        self.stats = stats
        self.urls = urls
        self.item_ttl = item_ttl
        self._items: dict[int, tuple[FeedItem, float]] = {}
        self._max_items = max_items
        #: what the requests of one event-loop turn want, fetched together
        self._items_together = _Together(self._fetch)
        self._cards_together = _Together(self._cached_cards)

    def item(self, card: VideoCard, likes: int) -> FeedItem:
        """The API item of a card."""
        return feed_item(card, likes, self.urls)

    def detail(self, video: Video, username: str, likes: int, views: int) -> VideoDetail:
        """The video page; URLs only for a servable video (a creator sees its own unready ones)."""
        servable = video.servable and bool(video.media_key)
        return VideoDetail(
            video_id=str(video.video_id),
            author_id=str(video.author_id),
            username=username,
            status=video.status,
            failure_reason=video.failure_reason,
            duration=video.duration,
            video_url=self.urls.url(video.media_key) if servable and video.media_key else None,
            thumbnail_url=self.urls.url(video.thumb_key) if servable and video.thumb_key else None,
            like_count=max(likes, 0),
            view_count=max(views, 0),
            created_at=utc(video.created_at),
            caption=video.caption,
            hashtags=list(video.hashtags),
            video_url_low=self.urls.url(video.low_key) if servable and video.low_key else None,
            video_kbps=video.media_kbps if servable else None,
            video_low_kbps=video.low_kbps if servable and video.low_key else None,
        )

    def forget(self, video_id: int) -> None:
        """Drop this worker's item of a video that changed (the other workers' lapse in ``item_ttl``)."""
        self._items.pop(video_id, None)

    async def items(self, video_ids: Sequence[int]) -> list[FeedItem]:
        """Items of servable videos in the given order; the others are dropped."""
        now = time.monotonic()
        kept = self._items
        hits: dict[int, FeedItem] = {}
        for vid in video_ids:
            hit = kept.get(vid)
            if hit is not None and hit[1] > now:
                hits[vid] = hit[0]
        if len(hits) < len(video_ids):
            fetched = await self._items_together.get(vid for vid in video_ids if vid not in hits)
            if self.item_ttl > 0:
                if len(kept) + len(fetched) > self._max_items:
                    kept.clear()  # crude but bounded: a cleared item costs one more read
                expires = now + self.item_ttl
                for vid, item in fetched.items():
                    kept[vid] = (item, expires)
            hits.update(fetched)
        return [hits[vid] for vid in video_ids if vid in hits]

    async def _fetch(self, video_ids: Sequence[int]) -> dict[int, FeedItem]:
        """Items from Redis (one MGET), Scylla for what Redis lacks; unservable videos are absent."""
        found = await self.cache.cards_and_likes(video_ids)
        missing_cards = [vid for vid, (card, _) in zip(video_ids, found) if card is None]
        missing_likes = [vid for vid, (_, likes) in zip(video_ids, found) if likes is None]
        loaded: dict[int, VideoCard] = {}
        counts: dict[int, int] = {}
        if missing_cards or missing_likes:
            loaded, counts = await asyncio.gather(self._load_cards(missing_cards), self._load_likes(missing_likes))
        out: dict[int, FeedItem] = {}
        for vid, (card, likes) in zip(video_ids, found):
            card = card or loaded.get(vid)
            if card is not None:
                out[vid] = self.item(card, likes if likes is not None else counts.get(vid, 0))
        return out

    async def card(self, video_id: int) -> VideoCard | None:
        """The card of a servable video (Redis, else Scylla and re-cached); None if not servable."""
        card = (await self._cards_together.get((video_id,))).get(video_id)
        if card is None:
            card = (await self._load_cards([video_id])).get(video_id)
        return card

    async def _cached_cards(self, video_ids: list[int]) -> dict[int, VideoCard]:
        """The cards Redis has (no like counts: a like or a view needs the card only)."""
        return {vid: card for vid, (card, _) in zip(video_ids, await self.cache.cards_and_likes(video_ids))
                if card is not None}

    async def _load_cards(self, video_ids: Iterable[int]) -> dict[int, VideoCard]:
        ids = list(video_ids)
        if not ids:
            return {}
        videos = [v for v in (await self.videos.get_many(ids)).values() if v.servable and v.media_key]
        if not videos:
            return {}
        users = await self.users.get_many(v.author_id for v in videos)
        cards = {
            v.video_id: VideoCard.of(v, users[v.author_id].username) for v in videos if v.author_id in users
        }
        await self.cache.put_cards(cards.values())
        return cards

    async def _load_likes(self, video_ids: Iterable[int]) -> dict[int, int]:
        # Not written back: the counter entity owns the Redis count, and a value read here could
        # overwrite a newer one it flushes meanwhile.
        ids = list(video_ids)
        if not ids:
            return {}
        return {vid: row.likes for vid, row in (await self.stats.get_many(ids)).items()}
