"""Rebuilds Redis's candidate lists from Scylla when they are gone (Redis flushed or restarted empty).

Redis holds derived data only. Cards and like counts are re-read from Scylla on a miss by whoever
needs them, but the fresh/popular candidate lists the feeds draw from are only ever appended to as
videos become ready: after a flush they would stay empty and every feed with them. The keeper
checks a sentinel key every few seconds; when it is missing, one keeper (a Redis lock, for several
worker processes) scans the ready videos and their like counts and writes the lists again.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from clipstream.storage.cache import Cache
from clipstream.storage.repos import StatsRepo, VideoRepo

__all__ = ["CacheKeeper"]

log = structlog.get_logger(__name__)


class CacheKeeper:
    """Checks every ``interval`` seconds; rebuilds under a lock that lapses after ``lock_seconds``."""

    def __init__(self, videos: VideoRepo, stats: StatsRepo, cache: Cache, interval: float = 2.0,
                 lock_seconds: int = 120) -> None:
        self.videos = videos
        self.stats = stats
        self.cache = cache
        self.interval = interval
        self.lock_seconds = lock_seconds
        self.rebuilds = 0

    async def check(self) -> bool:
        """Rebuild if needed and allowed; True if this call rebuilt the lists."""
        if await self.cache.is_built() or not await self.cache.try_lock_rebuild(self.lock_seconds):
            return False
        started = time.monotonic()
        servable, likes = await asyncio.gather(
            asyncio.to_thread(self.videos.scan_servable), asyncio.to_thread(self.stats.scan_likes)
        )
        await self.cache.rebuild_candidates([(v, a, created, likes.get(v, 0)) for v, a, created, _ in servable],
                                            {v: tags for v, _, _, tags in servable if tags})
        self.rebuilds += 1
        log.info("candidate lists rebuilt from scylla", videos=len(servable),
                 seconds=round(time.monotonic() - started, 2))
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.check()
            except Exception as exc:  # Redis or Scylla away: try again next round
                log.warning("cache check failed", error=repr(exc))
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
