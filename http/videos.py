"""A video's page, deletion by its creator, likes and views."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated

import msgspec
import structlog
from litestar import delete, get, patch, post
from litestar.exceptions import NotFoundException, PermissionDeniedException, ValidationException
from litestar.params import JSONBody, Parameter

from clipstream.bus.messages import LikeRequest, VideoDeleted, ViewDelta, Watched
from clipstream.http.bootstrap import CurrentUser, Services, ServicesDep
from clipstream.http.errors import errors, parse_id
from clipstream.http.metrics import BUS_WAIT_SECONDS
from clipstream.http.schemas import (LikeRequestBody, VideoDetail, VideoList, VideoPatch,
                                     ViewRequestBody, WriteResponse)
from clipstream.http.security import Principal
from clipstream.storage.hashtags import TAG_MAX, TAG_PATTERN, parse_hashtags, tag_id
from clipstream.storage.models import Video, VideoCard
from clipstream.storage.repos import now_ms

__all__ = ["VIDEO_HANDLERS", "like"]

log = structlog.get_logger("clipstream.http.videos")
_PUBLISH_WAIT = BUS_WAIT_SECONDS.labels("publish")

_TAG = re.compile(TAG_PATTERN)

VideoIdPath = Annotated[str, Parameter(description="video id (decimal string)")]


async def _servable_card(svc: Services, video_id: str) -> VideoCard:
    """The card of a video that may be liked or viewed: 404 if missing, not ready or deleted."""
    vid = parse_id(video_id, "video")
    card = await svc.cards.card(vid)
    if card is None:
        raise NotFoundException("video not found")
    return card


@get("/v1/videos/{video_id:str}", tags=["videos"], responses=errors(401, 404, 503))
async def video_detail(video_id: VideoIdPath, svc: ServicesDep, me: CurrentUser) -> VideoDetail:
    """A video; one that is not ready yet (or failed) is visible to its creator only."""
    vid = parse_id(video_id, "video")
    video = await svc.videos.get(vid)
    if video.deleted or (not video.servable and video.author_id != me.user_id):
        raise NotFoundException("video not found")
    author, stats = await asyncio.gather(svc.users.get(video.author_id), svc.stats.get_many([vid]))
    row = stats.get(vid)
    likes, views = (row.likes, row.views) if row else (0, 0)
    return svc.cards.detail(video, author.username, likes, views)


async def owned_video(svc: Services, video_id: str, me: Principal, action: str) -> Video:
    """The caller's own, undeleted video: 404 if there is none, 403 if it is someone else's."""
    video = await svc.videos.get(parse_id(video_id, "video"))
    if video.deleted:
        raise NotFoundException("video not found")
    if video.author_id != me.user_id:
        raise PermissionDeniedException(f"only the creator can {action}")
    return video


@delete("/v1/videos/{video_id:str}", status_code=204, tags=["videos"], responses=errors(401, 403, 404, 503))
async def delete_video(video_id: VideoIdPath, svc: ServicesDep, me: CurrentUser) -> None:
    """Delete a video (its creator only): it leaves feeds and profiles, its files are removed."""
    video = await owned_video(svc, video_id, me, "delete a video")
    vid = video.video_id
    # Source of truth first, so a concurrent cache miss cannot re-cache the card after it is dropped.
    await svc.videos.mark_deleted(video)
    await svc.cache.unpublish_video(vid)
    await svc.publisher.publish(
        VideoDeleted(video_id=vid, author_id=video.author_id, at=now_ms()), msg_id=f"delete:{vid}"
    )
    objects = svc.objects
    try:
        await objects.remove(objects.uploads, [video.upload_key])
        media_keys = [k for k in (video.media_key, video.low_key, video.thumb_key) if k]
        if media_keys:
            await objects.remove(objects.media, media_keys)
    except Exception as exc:
        # The video is already hidden everywhere; files left behind are garbage, not a user-visible
        # error. VideoDeleted stays on the bus for a janitor to finish the job.
        log.warning("could not remove the objects of a deleted video", video_id=vid, error=repr(exc))


@patch("/v1/videos/{video_id:str}", tags=["videos"], responses=errors(400, 401, 403, 404, 413, 415, 503))
async def edit_video(video_id: VideoIdPath, data: JSONBody[VideoPatch], svc: ServicesDep, me: CurrentUser) -> VideoDetail:
    """Edit a video's caption (its creator only); its hashtags follow the new caption."""
    video = await owned_video(svc, video_id, me, "edit a video")
    tags = parse_hashtags(data.caption)
    await svc.videos.set_caption(video, data.caption, tags)
    edited = msgspec.structs.replace(video, caption=data.caption, hashtags=tags)
    author, stats = await asyncio.gather(svc.users.get(video.author_id), svc.stats.get_many([video.video_id]))
    if edited.servable and edited.media_key:
        await svc.cache.put_cards([VideoCard.of(edited, author.username)])  # feeds show the new caption
        await svc.cache.put_tags(video.video_id, tags)  # and the feeds' pools its new hashtags
        svc.cards.forget(video.video_id)
    row = stats.get(video.video_id)
    likes, views = (row.likes, row.views) if row else (0, 0)
    return svc.cards.detail(edited, author.username, likes, views)


@get("/v1/hashtags/{tag:str}/videos", tags=["videos"], responses=errors(400, 401, 503))
async def hashtag_videos(
    tag: Annotated[str, Parameter(min_length=1, max_length=TAG_MAX,
                                  description="a hashtag without its #, any case: 1-50 Unicode letters, digits or _ "
                                              "(anything else is a 400)")],
    svc: ServicesDep,
    me: CurrentUser,
    limit: Annotated[int, Parameter(ge=1, le=50, description="videos per page")] = 20,
    cursor: Annotated[str | None, Parameter(max_length=64, description="next_cursor of the previous page")] = None,
) -> VideoList:
    """A hashtag's ready videos, newest first."""
    # Checked here, not as the parameter's pattern: a JSON Schema pattern's \w is ASCII, Python's is
    # Unicode, so the document would have called "þ" invalid while the API accepts it.
    if not _TAG.fullmatch(tag):
        raise ValidationException(f"tag: 1-{TAG_MAX} letters, digits or _ (got {tag[:60]!r})")
    tag = tag.lower()
    signer = svc.security.hashtag_cursors
    scope = tag_id(tag)
    before = signer.verify(scope, cursor) if cursor else None  # InvalidCursor -> 400
    ids = await svc.videos.by_hashtag(tag, before, limit)
    items = await svc.cards.items(ids)
    next_cursor = signer.sign(scope, ids[-1]) if len(ids) == limit else None
    return VideoList(videos=items, next_cursor=next_cursor)


@post("/v1/videos/{video_id:str}/like", status_code=200, tags=["videos"], responses=errors(400, 401, 404, 413, 415, 503))
async def like_video(video_id: VideoIdPath, data: JSONBody[LikeRequestBody], svc: ServicesDep, me: CurrentUser) -> WriteResponse:
    """Like or unlike (idempotent per user and video); durable (JetStream ack) before it answers.
    ``read_after`` as ``after`` of the next ``GET /v1/feed`` makes that page take it in."""
    return await like(svc, me.user_id, video_id, data.action == "like")


async def like(svc: Services, user_id: int, video_id: str, liked: bool) -> WriteResponse:
    """A like or unlike as the API takes it (also used by :mod:`clipstream.http.fastpath`)."""
    card = await _servable_card(svc, video_id)
    started = time.perf_counter()
    seq = await svc.publisher.publish(
        LikeRequest(user_id=user_id, video_id=card.video_id, author_id=card.author_id, like=liked, at=now_ms(),
                    hashtags=card.hashtags)
    )
    _PUBLISH_WAIT.observe(time.perf_counter() - started)
    return WriteResponse(read_after=str(seq))


@post("/v1/videos/{video_id:str}/view", status_code=202, tags=["videos"], responses=errors(400, 401, 404, 413, 415, 503))
async def view_video(video_id: VideoIdPath, svc: ServicesDep, me: CurrentUser,
                     data: JSONBody[ViewRequestBody | None] = None) -> WriteResponse:
    """Count a view of a ready video; with ``watched_ms``, the viewer's feed learns from it too
    (and ``read_after`` is given, as for a like)."""
    card = await _servable_card(svc, video_id)
    at = now_ms()
    view = ViewDelta(video_id=card.video_id, user_id=me.user_id, at=at)
    if data is None or data.watched_ms is None:
        await svc.publisher.publish(view)
        return WriteResponse()
    watched = Watched(user_id=me.user_id, video_id=card.video_id, author_id=card.author_id,
                      watched_ms=data.watched_ms, duration_ms=int(card.duration * 1000), at=at,
                      hashtags=card.hashtags)
    _, seq = await svc.publisher.publish_many([(view, None), (watched, None)])
    return WriteResponse(read_after=str(seq))


VIDEO_HANDLERS = [video_detail, edit_video, hashtag_videos, delete_video, like_video, view_video]
