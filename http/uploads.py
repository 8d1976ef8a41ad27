"""Uploads: a presigned PUT for one object key, and the "upload completed" fallback.

The client PUTs the file straight to object storage; MinIO's bucket notification on NATS starts
processing. Stores without notifications get ``POST /v1/videos/{id}/complete`` instead, which
publishes the same event with a message id so repeats are de-duplicated by JetStream.
"""

from __future__ import annotations

from typing import Annotated

from litestar import post
from litestar.exceptions import ClientException, HTTPException
from litestar.params import JSONBody, Parameter

from clipstream.bus.messages import UploadCompleted
from clipstream.http.bootstrap import CurrentUser, ServicesDep
from clipstream.http.errors import errors
from clipstream.http.schemas import StatusResponse, UploadUrlRequest, UploadUrlResponse
from clipstream.http.videos import owned_video
from clipstream.storage.errors import NotFound
from clipstream.storage.hashtags import parse_hashtags
from clipstream.storage.ids import new_id
from clipstream.storage.models import Video
from clipstream.storage.repos import now_ms

__all__ = ["UPLOAD_HANDLERS"]


def _check_upload(data: JSONBody[UploadUrlRequest], formats: frozenset[str], max_bytes: int) -> str:
    """The normalised format of a valid request; a 400 naming the problem otherwise."""
    fmt = data.file_format.strip().lower()
    if fmt not in formats:
        raise ClientException(f"file_format must be one of {', '.join(sorted(formats))}")
    if data.file_size_bytes <= 0:
        raise ClientException("file_size_bytes must be a positive number of bytes")
    if data.file_size_bytes > max_bytes:
        raise ClientException(
            f"file too large: {data.file_size_bytes} bytes; the limit is {max_bytes} bytes"
        )
    return fmt


@post("/v1/videos/upload-url", status_code=200, tags=["videos"], responses=errors(400, 401, 413, 415, 503))
async def upload_url(data: JSONBody[UploadUrlRequest], svc: ServicesDep, me: CurrentUser) -> UploadUrlResponse:
    """Create a video (status ``uploading``) and a presigned PUT URL for exactly its object key."""
    media = svc.settings.media
    fmt = _check_upload(data, media.format_set, media.max_upload_bytes)
    await svc.objects_probe.ensure_up()  # MinIO down -> 503 before anything is written
    video_id = new_id()
    video = Video(
        video_id=video_id,
        author_id=me.user_id,
        status="uploading",
        file_size=data.file_size_bytes,
        file_format=fmt,
        upload_key=f"{me.user_id}/{video_id}.{fmt}",
        created_at=now_ms(),
        caption=data.caption,
        hashtags=parse_hashtags(data.caption),
    )
    await svc.videos.create(video)
    return UploadUrlResponse(
        video_id=str(video_id),
        upload_url=svc.objects.upload_url(video.upload_key),
        expires_in=svc.settings.minio.upload_url_ttl,
    )


@post("/v1/videos/{video_id:str}/complete", status_code=202, tags=["videos"], responses=errors(401, 403, 404, 409, 503))
async def complete_upload(
    video_id: Annotated[str, Parameter(description="video id (decimal string)")], svc: ServicesDep, me: CurrentUser
) -> StatusResponse:
    """Tell the server the PUT finished (only needed without bucket notifications); idempotent."""
    video = await owned_video(svc, video_id, me, "complete an upload")
    vid = video.video_id
    if video.status != "uploading":
        return StatusResponse(status=video.status)  # already handed to processing: nothing to do
    try:
        await svc.objects.upload_size(video.upload_key)
    except NotFound:
        raise HTTPException(
            status_code=409, detail="the file has not been uploaded yet: PUT it to upload_url first"
        ) from None
    await svc.publisher.publish(
        UploadCompleted(video_id=vid, object_key=video.upload_key), msg_id=f"complete:{vid}"
    )
    return StatusResponse(status="processing")


UPLOAD_HANDLERS = [upload_url, complete_upload]
