"""A fast path to ready videos, for benchmarks and load tests: they share one small media object.

It writes what the media worker writes for a processed upload (video row, author index, Redis
card and candidate lists), skipping only the transcode.
"""

from __future__ import annotations

from clipstream.storage.cache import Cache
from clipstream.storage.ids import new_id
from clipstream.storage.models import Video, VideoCard
from clipstream.storage.repos import VideoRepo, now_ms

__all__ = ["SHARED_MEDIA_KEY", "SHARED_THUMB_KEY", "seed_ready_videos"]

SHARED_MEDIA_KEY = "seed/shared.mp4"
SHARED_THUMB_KEY = "seed/shared.jpg"


async def seed_ready_videos(videos: VideoRepo, cache: Cache, authors: dict[int, str], per_author: int) -> list[int]:
    """Create ``per_author`` ready videos for each (author_id -> username); returns their ids."""
    made: list[Video] = []
    for author_id in authors:
        for _ in range(per_author):
            vid = new_id()
            made.append(Video(video_id=vid, author_id=author_id, status="uploading", file_size=1,
                              file_format="mp4", upload_key=f"{author_id}/{vid}.mp4", created_at=now_ms()))
    await videos.cql.execute_many(
        "INSERT INTO videos (video_id, author_id, status, file_size, file_format, upload_key, media_key, thumb_key, "
        "duration, width, height, created_at, ready_at, deleted) VALUES (?, ?, 'ready', ?, ?, ?, ?, ?, 5.0, 720, "
        "1280, ?, ?, false)",
        [(v.video_id, v.author_id, v.file_size, v.file_format, v.upload_key, SHARED_MEDIA_KEY, SHARED_THUMB_KEY,
          v.created_at, v.created_at) for v in made],
    )
    await videos.cql.execute_many(
        "INSERT INTO videos_by_author (author_id, video_id) VALUES (?, ?)", [(v.author_id, v.video_id) for v in made]
    )
    for v in made:
        await cache.publish_video(
            VideoCard(v.video_id, v.author_id, authors[v.author_id], SHARED_MEDIA_KEY, SHARED_THUMB_KEY, 5.0,
                      v.created_at)
        )
    return [v.video_id for v in made]
