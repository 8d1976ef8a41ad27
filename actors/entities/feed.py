"""UserFeed entities: a user's likes and follows (the truth of both) and their For You feed.

The entity dedupes like/unlike and follow/unfollow (a second like changes nothing) and emits the
resulting delta to the counter of the video or creator. Feed pages are picked from the shard's
shared candidate pool (fresh and popular videos, refreshed from Redis once a second) plus the
user's inbox of followed creators' new videos, ranked by freshness, engagement and affinity with
author diversity, never repeating a video already served. Pages are kept so that the same cursor
returns the same page.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, Callable

import msgspec

from clipstream.actors.entity import EntityKind, Outbox
from clipstream.bus.messages import BusMessage, Follow, FollowDelta, LikeDelta, LikeRequest, NewVideo
from clipstream.bus.rpc import FeedPage, FeedQuery
from clipstream.storage.cache import Cache
from clipstream.storage.ids import created_ms
from clipstream.storage.repos import FeedRepo, FollowRepo, LikeRepo

__all__ = ["CandidatePool", "FeedKind", "UserFeed", "rank_page"]

INBOX_KEEP = 500
PAGES_KEEP = 8
MAX_LIMIT = 50


class UserFeed:
    """One user's feed state."""

    __slots__ = (
        "key", "seq", "liked", "following", "served", "inbox", "next_page", "pages",
        "new_served", "new_pages", "like_changes", "follow_changes", "state_dirty",
    )

    def __init__(self, key: int) -> None:
        self.key = key
        self.seq = 0
        self.liked: dict[int, int] = {}  # video_id -> author_id
        self.following: set[int] = set()
        self.served: set[int] = set()
        self.inbox: list[tuple[int, int]] = []  # (video, author), newest last
        self.next_page = 0
        self.pages: dict[int, list[int]] = {}
        self.new_served: list[int] = []
        self.new_pages: list[tuple[int, list[int]]] = []
        self.like_changes: list[tuple[int, int, int, bool, int]] = []
        self.follow_changes: list[tuple[int, int, bool]] = []
        self.state_dirty = False


class CandidatePool:
    """Candidates shared by every feed in a shard, pre-ranked by their user-independent score."""

    __slots__ = ("ranked", "authors", "likes", "refreshed_at")

    def __init__(self, items: list[tuple[int, int, int]] = (), now_ms: int | None = None) -> None:  # type: ignore[assignment]
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        self.authors = {v: a for v, a, _ in items}
        self.likes = {v: n for v, _, n in items}
        self.ranked = sorted(self.authors, key=lambda v: -base_score(v, self.likes[v], now))
        self.refreshed_at = now


def base_score(video_id: int, likes: int, now_ms: int) -> float:
    """Freshness (half-life about six hours) and engagement (log of likes), user-independent."""
    age_h = max(0.0, (now_ms - created_ms(video_id)) / 3_600_000)
    return 0.5 / (1.0 + age_h / 6.0) + 0.35 * min(1.0, math.log1p(likes) / math.log1p(1000))


def rank_page(feed: UserFeed, pool: CandidatePool, limit: int) -> list[int]:
    """Pick up to ``limit`` unserved videos: best personal score first, one per author while possible."""
    liked_authors: dict[int, int] = {}
    for author in feed.liked.values():
        liked_authors[author] = liked_authors.get(author, 0) + 1
    now = int(time.time() * 1000)
    window = limit * 6
    scored: list[tuple[float, int, int]] = []
    for vid, author in reversed(feed.inbox):  # followed creators' new videos
        if vid not in feed.served:
            scored.append((base_score(vid, pool.likes.get(vid, 0), now) + 0.6, vid, author))
    seen = {v for _, v, _ in scored}
    for vid in pool.ranked:
        if len(scored) >= window:
            break
        author = pool.authors[vid]
        if vid in feed.served or vid in seen or author == feed.key:
            continue
        affinity = 0.6 if author in feed.following else 0.1 * min(5, liked_authors.get(author, 0))
        scored.append((base_score(vid, pool.likes[vid], now) + affinity, vid, author))
    scored.sort(reverse=True)
    picked: list[int] = []
    authors_in_page: set[int] = set()
    rest: list[int] = []
    for _, vid, author in scored:
        if len(picked) >= limit:
            break
        if author in authors_in_page:
            rest.append(vid)  # diversity: a second video of an author only if nothing else is left
            continue
        picked.append(vid)
        authors_in_page.add(author)
    picked.extend(rest[: limit - len(picked)])
    return picked


_query_decoder = msgspec.json.Decoder(FeedQuery)
_encoder = msgspec.json.Encoder()


class FeedKind(EntityKind[UserFeed]):
    """Loads a user's likes, follows and feed state; flushes their changes; answers page queries."""

    name = "feed"

    def __init__(self, feeds: FeedRepo, likes: LikeRepo, follows: FollowRepo, cache: Cache,
                 subject_for: Callable[[BusMessage], str], refresh_every: float = 1.0) -> None:
        self.feeds = feeds
        self.likes_repo = likes
        self.follows_repo = follows
        self.cache = cache
        self.subject_for = subject_for
        self.refresh_every = refresh_every
        self.pool = CandidatePool()
        self._refresher: asyncio.Task[None] | None = None

    def key_of(self, message: BusMessage) -> int:
        if isinstance(message, (LikeRequest, Follow, NewVideo)):
            return message.user_id
        raise TypeError(f"a feed does not take {type(message).__name__}")

    async def load(self, keys: list[int]) -> dict[int, UserFeed]:
        if self._refresher is None:  # first load runs on the shard's I/O loop: refresh from there on
            await self.refresh()
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())
        loaded = await asyncio.gather(*(self._load_one(k) for k in keys))
        return {f.key: f for f in loaded}

    async def _load_one(self, key: int) -> UserFeed:
        (seq, next_page, inbox, served, pages), liked, following = await asyncio.gather(
            self.feeds.load(key), self.likes_repo.liked_by(key), self.follows_repo.following(key)
        )
        feed = UserFeed(key)
        feed.seq, feed.next_page, feed.inbox, feed.served, feed.pages = seq, next_page, inbox, served, pages
        feed.liked, feed.following = liked, following
        return feed

    async def refresh(self) -> None:
        """Rebuild the shard's candidate pool from Redis."""
        self.pool = CandidatePool(await self.cache.candidates(fresh=5000, popular=5000))

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_every)
            try:
                await self.refresh()
            except Exception:  # Redis away: keep serving the last pool
                pass

    def handle(self, entity: UserFeed, message: BusMessage, seq: int, outbox: Outbox) -> bool:
        if seq <= entity.seq:
            return False
        entity.seq = seq
        entity.state_dirty = True
        if isinstance(message, LikeRequest):
            self._like(entity, message, seq, outbox)
        elif isinstance(message, Follow):
            self._follow(entity, message, seq, outbox)
        elif isinstance(message, NewVideo):
            entry = (message.video_id, message.author_id)
            if message.video_id not in entity.served and entry not in entity.inbox:
                entity.inbox.append(entry)
                del entity.inbox[:-INBOX_KEEP]
        return True

    def _like(self, feed: UserFeed, m: LikeRequest, seq: int, outbox: Outbox) -> None:
        if m.like == (m.video_id in feed.liked):
            return  # a second like, or an unlike of a video never liked: nothing changes
        if m.like:
            feed.liked[m.video_id] = m.author_id
        else:
            del feed.liked[m.video_id]
        feed.like_changes.append((feed.key, m.video_id, m.author_id, m.like, m.at))
        delta = LikeDelta(video_id=m.video_id, user_id=feed.key, delta=1 if m.like else -1, at=m.at)
        outbox.publish(self.subject_for(delta), delta, f"like:{feed.key}:{m.video_id}:{seq}")

    def _follow(self, feed: UserFeed, m: Follow, seq: int, outbox: Outbox) -> None:
        if m.author_id == feed.key or m.follow == (m.author_id in feed.following):
            return
        if m.follow:
            feed.following.add(m.author_id)
        else:
            feed.following.discard(m.author_id)
        feed.follow_changes.append((feed.key, m.author_id, m.follow))
        delta = FollowDelta(author_id=m.author_id, user_id=feed.key, delta=1 if m.follow else -1, at=m.at)
        outbox.publish(self.subject_for(delta), delta, f"follow:{feed.key}:{m.author_id}:{seq}")

    def query(self, entity: UserFeed, request: bytes) -> tuple[bytes, bool]:
        q = _query_decoder.decode(request)
        limit = max(1, min(MAX_LIMIT, q.limit))
        if q.page is not None and q.page in entity.pages:
            ids = entity.pages[q.page]  # the same cursor again: the same page
            return _encoder.encode(FeedPage(q.page, ids, q.page + 1 if ids else None)), False
        page = entity.next_page
        ids = rank_page(entity, self.pool, limit)
        entity.next_page += 1
        entity.pages[page] = ids
        for old in sorted(entity.pages)[:-PAGES_KEEP]:
            del entity.pages[old]
        entity.served.update(ids)
        entity.new_served.extend(ids)
        entity.new_pages.append((page, ids))
        if ids:
            entity.inbox = [e for e in entity.inbox if e[0] not in entity.served]
        entity.state_dirty = True
        return _encoder.encode(FeedPage(page, ids, page + 1 if ids else None)), True

    def snapshot(self, entity: UserFeed) -> tuple[Any, ...]:
        snap = (
            entity.key, entity.seq, entity.next_page, list(entity.inbox), entity.new_served,
            entity.new_pages, entity.like_changes, entity.follow_changes,
        )
        entity.new_served, entity.new_pages, entity.like_changes, entity.follow_changes = [], [], [], []
        entity.state_dirty = False
        return snap

    async def flush(self, snapshots: list[Any]) -> None:
        await self.likes_repo.apply(c for s in snapshots for c in s[6])
        await self.follows_repo.apply(c for s in snapshots for c in s[7])
        await self.feeds.save(
            states=[(s[0], s[1], s[2], s[3]) for s in snapshots],
            served=[(s[0], v) for s in snapshots for v in s[4]],
            pages=[(s[0], p, ids) for s in snapshots for p, ids in s[5]],
        )

    def size_of(self, entity: UserFeed) -> int:
        return 400 + 40 * (len(entity.served) + len(entity.liked) + len(entity.inbox)) + 30 * len(entity.following)
