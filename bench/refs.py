"""What the two reference servers share: the route, its parameters and how cards become a page.

Both answer ``GET /v1/feed?limit=10`` with clipstream's :class:`FeedResponse` built by clipstream's
own :func:`feed_item`, so the three servers send the same JSON shape. They check no token: they
are the floor of work a feed answer needs, not a second API.
"""

from __future__ import annotations

import contextlib
from typing import AsyncIterator, Awaitable, Callable

from litestar import Litestar, get

from clipstream.config.settings import Settings
from clipstream.http.cards import MediaUrls, feed_item
from clipstream.http.schemas import FeedResponse
from clipstream.storage.cache import Cache, connect_redis
from clipstream.storage.objects import ObjectStore, make_minio

__all__ = ["PAGE", "NEXT_CURSOR", "RefState", "make_ref_app", "page_of"]

PAGE = 10
#: a fixed cursor of a realistic length (clipstream's are ~40 characters)
NEXT_CURSOR = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


class RefState:
    """A reference worker's Redis cache, the ids it pages over, and the media URL signer."""

    __slots__ = ("cache", "ids", "urls", "turn")

    def __init__(self, cache: Cache, ids: list[int], urls: MediaUrls) -> None:
        self.cache, self.ids, self.urls, self.turn = cache, ids, urls, 0

    def next_ids(self) -> list[int]:
        """The next window of ``PAGE`` ids, so consecutive requests ask Redis for different keys."""
        start = (self.turn * PAGE) % max(1, len(self.ids) - PAGE)
        self.turn += 1
        return self.ids[start : start + PAGE]


async def page_of(state: RefState, ids: list[int]) -> FeedResponse:
    """One MGET of the cards and counts of ``ids`` (what clipstream caches), as a feed page."""
    found = await state.cache.cards_and_likes(ids)
    items = [feed_item(card, likes or 0, state.urls) for card, likes in found if card is not None]
    return FeedResponse(next_cursor=NEXT_CURSOR, videos=items)


def make_ref_app(settings: Settings, answer: Callable[[RefState], Awaitable[FeedResponse]],
                 prepare: Callable[[RefState], Awaitable[None]] | None = None) -> Litestar:
    """A Litestar app with only the feed route; ``answer`` makes each response."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        redis = connect_redis(settings.redis)
        try:
            cache = Cache(redis)
            raw = await redis.zrevrange(f"{cache.ns}:fresh", 0, 9_999)
            objects = ObjectStore.from_settings(settings.minio, make_minio(settings.minio))
            state = RefState(cache, [int(v) for v in raw], MediaUrls(objects, settings.minio.media_url_ttl / 2))
            if prepare is not None:
                await prepare(state)
            app.state.ref = state
            yield
        finally:
            await redis.aclose()

    @get("/v1/feed")
    async def feed(limit: int = PAGE, cursor: str | None = None) -> FeedResponse:
        return await answer(app.state.ref)

    app = Litestar(route_handlers=[feed], lifespan=[lifespan], logging_config=None, debug=False)
    return app
