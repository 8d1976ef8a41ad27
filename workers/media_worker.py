"""Turns uploads into servable videos: MinIO event (or the client's /complete) -> ready or failed.

At-least-once and idempotent: a video is claimed with a lightweight transaction before any work,
so a redelivered event for a video that is processing, ready or failed does nothing; a worker that
dies mid-transcode leaves a claim that another takes over once its lease lapses.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import msgspec
import structlog
from nats.aio.msg import Msg

from clipstream.bus.consumer import RetryLater
from clipstream.bus.messages import UploadCompleted, VideoFailed, VideoReady
from clipstream.bus.minio_events import ObjectCreated
from clipstream.bus.publisher import Publisher
from clipstream.bus.tasks import stop_task
from clipstream.config.settings import MediaSettings
from clipstream.media.errors import MediaRejected
from clipstream.media.pipeline import ProcessedMedia, process_upload
from clipstream.media.transcode import kbps
from clipstream.storage.cache import Cache
from clipstream.storage.errors import NotFound
from clipstream.storage.models import Video, VideoCard
from clipstream.storage.objects import ObjectStore
from clipstream.storage.repos import UserRepo, VideoRepo, now_ms

__all__ = ["MediaWorker", "StoredMedia", "store_processed", "video_id_of_key"]

log = structlog.get_logger(__name__)

#: a claim whose worker has not renewed it for this long is taken over by another worker: a worker
#: killed mid-transcode delays its video by about this (plus the redelivery), not for good
CLAIM_LEASE_MS = 30_000
#: seconds between a working worker's heartbeats (claim renewal and JetStream in-progress)
HEARTBEAT_S = 10.0


def video_id_of_key(key: str) -> int | None:
    """Upload keys are ``<author_id>/<video_id>.<format>``; None for any other key."""
    name = key.rsplit("/", 1)[-1]
    stem = name.split(".", 1)[0]
    return int(stem) if stem.isdigit() and 0 < len(stem) <= 19 else None


class StoredMedia(msgspec.Struct, frozen=True):
    """What a video row records of its stored renditions: the low one's key (None: none was made)
    and the average bitrates, kbit/s."""

    low_key: str | None
    kbps: int
    low_kbps: int | None


async def store_processed(objects: ObjectStore, media: ProcessedMedia, media_key: str, thumb_key: str,
                          low_key: str) -> StoredMedia:
    """Put a processed upload's files in the media bucket at these keys (the low rendition only if
    one was made): the one way an upload and a seeded clip become servable objects."""
    await objects.store_media(media_key, Path(media.video_path), "video/mp4")
    if media.low_path:
        await objects.store_media(low_key, Path(media.low_path), "video/mp4")
    await objects.store_media(thumb_key, Path(media.thumbnail_path), "image/jpeg")
    out = media.output
    return StoredMedia(low_key if media.low_path else None, kbps(out.video_size, out.duration),
                       kbps(out.low_size, out.duration) if media.low_path else None)


class MediaWorker:
    """Processes one upload at a time per call; run several calls concurrently for more."""

    def __init__(self, videos: VideoRepo, users: UserRepo, store: ObjectStore, cache: Cache,
                 publisher: Publisher, settings: MediaSettings, workdir: str | None = None) -> None:
        self.videos = videos
        self.users = users
        self.store = store
        self.cache = cache
        self.publisher = publisher
        self.settings = settings
        self.workdir = workdir
        self.processed = 0
        self.failed = 0

    async def on_minio_event(self, records: list[ObjectCreated], msg: Msg) -> None:
        """Handler for the uploads stream."""
        for record in records:
            if record.bucket != self.store.uploads:
                continue
            video_id = video_id_of_key(record.key)
            if video_id is None:
                log.warning("ignoring object with a foreign key", key=record.key)
                continue
            await self.process(video_id, msg)

    async def on_video_event(self, message: object, msg: Msg) -> None:
        """Handler for lifecycle events: only UploadCompleted concerns this worker."""
        if isinstance(message, UploadCompleted):
            await self.process(message.video_id, msg)

    async def process(self, video_id: int, msg: Msg | None = None) -> None:
        """Claim, process and publish one video; a transient error propagates (redelivery retries)."""
        try:
            video = await self.videos.get(video_id)
        except NotFound:
            log.warning("upload for an unknown video", video_id=video_id)
            return
        if video.deleted or video.status in ("ready", "failed"):
            return
        claim = await self.videos.claim_processing(video_id, CLAIM_LEASE_MS)
        if not claim.taken:
            if claim.held_ms:
                # Another worker has it, or had it and died (a redelivery can come before its
                # lease lapses). Acking would lose the upload with that worker: look again once
                # the lease has run out; by then it is done, renewed, or ours to take over.
                raise RetryLater(claim.held_ms / 1000 + 1.0, "another worker's claim is still live")
            return
        keepalive = asyncio.create_task(self._heartbeat(video_id, msg))
        try:
            await self._process_claimed(video)
        except BaseException:
            await self.videos.release_processing(video_id)
            raise
        finally:
            await stop_task(keepalive)  # a lost cancel would leave it renewing the claim forever

    async def _process_claimed(self, video: Video) -> None:
        with tempfile.TemporaryDirectory(prefix=f"clip-{video.video_id}-", dir=self.workdir) as tmp:
            src = Path(tmp) / f"source.{video.file_format}"
            try:
                await self.store.download_upload(video.upload_key, src)
            except NotFound:
                await self._fail(video, "the upload was not found in storage")
                return
            try:
                media = await process_upload(src, Path(tmp) / "out", video.file_size, video.file_format,
                                             self.settings)
            except MediaRejected as exc:
                await self._fail(video, exc.reason)
                return
            media_key = f"videos/{video.author_id}/{video.video_id}.mp4"
            thumb_key = f"thumbs/{video.author_id}/{video.video_id}.jpg"
            stored = await store_processed(self.store, media, media_key, thumb_key,
                                           f"videos/{video.author_id}/{video.video_id}-low.mp4")
        out = media.output
        await self.videos.mark_ready(video, media_key, thumb_key, out.duration, out.width, out.height,
                                     low_key=stored.low_key, media_kbps=stored.kbps, low_kbps=stored.low_kbps)
        author = await self.users.get(video.author_id)
        ready = await self.videos.get(video.video_id)
        await self.cache.publish_video(VideoCard.of(ready, author.username))
        await self.publisher.publish(
            VideoReady(video_id=video.video_id, author_id=video.author_id, duration_s=out.duration, at=now_ms()),
            msg_id=f"ready:{video.video_id}",
        )
        self.processed += 1
        log.info("video ready", video_id=video.video_id, duration=out.duration, transcode_s=out.elapsed)

    async def _fail(self, video: Video, reason: str) -> None:
        await self.videos.mark_failed(video.video_id, reason)
        await self.publisher.publish(
            VideoFailed(video_id=video.video_id, author_id=video.author_id, reason=reason, at=now_ms()),
            msg_id=f"failed:{video.video_id}",
        )
        self.failed += 1
        log.info("video rejected", video_id=video.video_id, reason=reason)


    async def _heartbeat(self, video_id: int, msg: Msg | None) -> None:
        """While a video is processed: renew its claim, and tell JetStream the message is still
        being worked on, so that a long transcode is neither taken over nor redelivered."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                if not await self.videos.renew_claim(video_id):
                    return  # finished, failed or deleted meanwhile: nothing left to keep alive
                if msg is not None:
                    await msg.in_progress()
            except Exception as exc:  # a missed beat: the lease is three beats long
                log.warning("heartbeat failed", video_id=video_id, error=repr(exc))
