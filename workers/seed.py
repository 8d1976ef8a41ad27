"""A fast path to ready videos, for benchmarks and load tests: they share a few small media objects.

It writes what the media worker writes for a processed upload (video row, author index, Redis
card and candidate lists), skipping only the transcode per video: :func:`seed_media` makes the
shared objects once, real clips run through the same probe and transcode as an upload, so a
seeded video plays in a browser like an uploaded one.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path

import msgspec

from clipstream.config.settings import MediaSettings
from clipstream.media.pipeline import process_upload
from clipstream.media.testsrc import make_test_video
from clipstream.storage.cache import Cache
from clipstream.storage.ids import new_id
from clipstream.storage.models import Video, VideoCard
from clipstream.storage.objects import ObjectStore
from clipstream.storage.repos import VideoRepo, now_ms
from clipstream.workers.media_worker import store_processed

__all__ = ["SHARED", "SHARED_MEDIA_KEY", "SHARED_THUMB_KEY", "SeedMedia", "seed_media", "seed_ready_videos"]

SHARED_MEDIA_KEY = "seed/shared.mp4"
SHARED_THUMB_KEY = "seed/shared.jpg"
#: the seed clips' source: phone-shaped, about as long as a short video
SEED_SECONDS = 5.0
SEED_SIZE = (720, 1280)


class SeedMedia(msgspec.Struct, frozen=True):
    """One shared media object that seeded videos point at, with what its row says about it."""

    media_key: str
    thumb_key: str
    duration: float
    width: int
    height: int
    #: the low rendition and the bitrates (kbit/s), as the media worker records them; None for
    #: SHARED, which names only what corpora seeded before renditions have
    low_key: str | None = None
    kbps: int | None = None
    low_kbps: int | None = None


#: the first seed object: what the rows of corpora seeded before :func:`seed_media` existed name
SHARED = SeedMedia(SHARED_MEDIA_KEY, SHARED_THUMB_KEY, SEED_SECONDS, *SEED_SIZE)


def _keys(k: int) -> tuple[str, str, str]:
    if k == 0:
        return SHARED_MEDIA_KEY, SHARED_THUMB_KEY, "seed/shared-low.mp4"
    return f"seed/shared-{k}.mp4", f"seed/shared-{k}.jpg", f"seed/shared-{k}-low.mp4"


async def seed_media(objects: ObjectStore, settings: MediaSettings, count: int = 1, *,
                     seconds: float = SEED_SECONDS, size: tuple[int, int] = SEED_SIZE) -> list[SeedMedia]:
    """Make ``count`` distinct clips (testsrc2 with a tone, each a different length), transcode them as
    an upload is, and store them at the keys seeded rows name (the first at SHARED_MEDIA_KEY)."""
    gate = asyncio.Semaphore(2)

    async def one(k: int, tmp: Path) -> SeedMedia:
        async with gate:
            src = tmp / f"src{k}.mp4"
            # a different length each, so that no two objects' bytes (or a browser's cache entries) match
            await make_test_video(src, seconds=seconds + (k % 16) * 0.25, width=size[0], height=size[1],
                                  ffmpeg=settings.ffmpeg)
            done = await process_upload(src, tmp / f"out{k}", src.stat().st_size, "mp4", settings)
        media_key, thumb_key, low_key = _keys(k)
        stored = await store_processed(objects, done, media_key, thumb_key, low_key)
        out = done.output
        return SeedMedia(media_key, thumb_key, out.duration, out.width, out.height,
                         stored.low_key, stored.kbps, stored.low_kbps)

    with tempfile.TemporaryDirectory(prefix="cs-seed-") as tmp:
        return list(await asyncio.gather(*(one(k, Path(tmp)) for k in range(count))))


async def seed_ready_videos(videos: VideoRepo, cache: Cache, authors: dict[int, str], per_author: int,
                            media: Sequence[SeedMedia] = (SHARED,)) -> list[int]:
    """Create ``per_author`` ready videos for each (author_id -> username), pointing at ``media`` in
    turn (made by :func:`seed_media`); returns their ids."""
    made: list[Video] = []
    for author_id in authors:
        for _ in range(per_author):
            vid, m, at = new_id(), media[len(made) % len(media)], now_ms()
            made.append(Video(video_id=vid, author_id=author_id, status="ready", file_size=1, file_format="mp4",
                              upload_key=f"{author_id}/{vid}.mp4", media_key=m.media_key, thumb_key=m.thumb_key,
                              duration=m.duration, width=m.width, height=m.height, created_at=at, ready_at=at,
                              low_key=m.low_key, media_kbps=m.kbps, low_kbps=m.low_kbps))
    await videos.cql.execute_many(
        "INSERT INTO videos (video_id, author_id, status, file_size, file_format, upload_key, media_key, thumb_key, "
        "duration, width, height, created_at, ready_at, deleted, low_key, media_kbps, low_kbps) "
        "VALUES (?, ?, 'ready', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, false, ?, ?, ?)",
        [(v.video_id, v.author_id, v.file_size, v.file_format, v.upload_key, v.media_key, v.thumb_key, v.duration,
          v.width, v.height, v.created_at, v.ready_at, v.low_key, v.media_kbps, v.low_kbps) for v in made],
    )
    await videos.cql.execute_many(
        "INSERT INTO videos_by_author (author_id, video_id) VALUES (?, ?)", [(v.author_id, v.video_id) for v in made]
    )
    for v in made:
        await cache.publish_video(VideoCard.of(v, authors[v.author_id]))
    return [v.video_id for v in made]
