"""Seeded videos point at real, playable media objects (real MinIO, Redis and CQL)."""

from __future__ import annotations

import pytest

from clipstream.media.probe import probe
from clipstream.storage.cache import Cache
from clipstream.storage.ids import new_id
from clipstream.storage.objects import ObjectStore, make_minio
from clipstream.storage.repos import VideoRepo
from clipstream.workers.seed import SHARED_MEDIA_KEY, seed_media, seed_ready_videos

pytestmark = pytest.mark.integration


async def test_seeded_rows_point_at_distinct_transcoded_clips(cql, redis, settings, tmp_path) -> None:
    objects = ObjectStore.from_settings(settings.minio)
    clips = await seed_media(objects, settings.media, 2, seconds=1.0, size=(360, 640))
    assert [c.media_key for c in clips][0] == SHARED_MEDIA_KEY and len({c.media_key for c in clips}) == 2
    client = make_minio(settings.minio)
    for i, clip in enumerate(clips):
        local = tmp_path / f"{i}.mp4"
        client.fget_object(settings.minio.media_bucket, clip.media_key, str(local))
        got = await probe(local, settings.media)
        assert got.video_codec == "h264" and (got.width, got.height) == (360, 640)
        assert abs(got.duration - clip.duration) < 0.1
    assert clips[1].duration > clips[0].duration  # different lengths: no two objects alike
    videos = VideoRepo(cql)
    ids = await seed_ready_videos(videos, Cache(redis, namespace=f"t{new_id()}"), {new_id(): "seeder"}, 3, clips)
    rows = [await videos.get(v) for v in ids]
    assert [r.media_key for r in rows if r] == [clips[0].media_key, clips[1].media_key, clips[0].media_key]
    assert all(r and r.status == "ready" and r.duration == clips[0 if i % 2 == 0 else 1].duration
               for i, r in enumerate(rows))
