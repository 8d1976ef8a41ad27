"""Every message on the bus: small frozen msgspec Structs in one tagged union, JSON on the wire.

The tag (field ``type``) names the message and its version, e.g. ``{"type": "like.v1", ...}``; a
change that breaks readers gets a new tag and both are decoded until the old one is retired.
IDs are 63-bit time-ordered integers (see :mod:`clipstream.storage.ids`), carried as JSON numbers.
"""

from __future__ import annotations

from typing import Annotated, Union

import msgspec
from msgspec import Meta

__all__ = [
    "BusMessage",
    "DeadLetter",
    "Follow",
    "FollowDelta",
    "LikeDelta",
    "LikeRequest",
    "NewVideo",
    "UploadCompleted",
    "VideoDeleted",
    "VideoFailed",
    "VideoReady",
    "ViewDelta",
    "Watched",
    "MESSAGE_TYPES",
]

Id = Annotated[int, Meta(ge=1, le=2**63 - 1, description="63-bit clipstream id")]
Millis = Annotated[int, Meta(ge=0, description="unix time in milliseconds")]
Tags = Annotated[tuple[str, ...], Meta(max_length=10, description="a video's hashtags, lower-cased, without #")]


class _Msg(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=True):
    """Base of bus messages: frozen, tagged, strict about unknown fields."""


# --- user-keyed: UserFeed entities, subject <p>.feed.<partition of user_id> -------------------


class LikeRequest(_Msg, tag="like.v1"):
    """A user likes or unlikes a video; the user's entity dedupes it and emits a LikeDelta."""

    user_id: Id
    video_id: Id
    author_id: Id
    like: bool
    at: Millis
    #: the video's hashtags, for the user's interest profile (absent in messages of before captions)
    hashtags: Tags = ()


class Follow(_Msg, tag="follow.v1"):
    """A user follows (or unfollows) a creator."""

    user_id: Id
    author_id: Id
    follow: bool
    at: Millis


class Watched(_Msg, tag="watched.v1"):
    """A user watched a video for ``watched_ms`` of its ``duration_ms``: a full watch or a quick skip
    moves the user's interest profile (the video's counter gets a ViewDelta beside it)."""

    user_id: Id
    video_id: Id
    author_id: Id
    watched_ms: Annotated[int, Meta(ge=0)]
    duration_ms: Annotated[int, Meta(ge=0)]
    at: Millis
    hashtags: Tags = ()


class NewVideo(_Msg, tag="new_video.v1"):
    """A followed creator published a ready video: a candidate for the follower's feed."""

    user_id: Id
    video_id: Id
    author_id: Id
    at: Millis


# --- video-keyed: VideoCounter entities, subject <p>.counter.<partition of video_id> ----------


class LikeDelta(_Msg, tag="like_delta.v1"):
    """A like (+1) or unlike (-1) that changed a user's like state of a video."""

    video_id: Id
    user_id: Id
    delta: Annotated[int, Meta(ge=-1, le=1)]
    at: Millis


class FollowDelta(_Msg, tag="follow_delta.v1"):
    """A follow (+1) or unfollow (-1) that changed a creator's follower count."""

    author_id: Id
    user_id: Id
    delta: Annotated[int, Meta(ge=-1, le=1)]
    at: Millis


class ViewDelta(_Msg, tag="view.v1"):
    """A viewer watched a video."""

    video_id: Id
    user_id: Id
    at: Millis


# --- video lifecycle, subject <p>.video.<event> -----------------------------------------------


class UploadCompleted(_Msg, tag="upload_completed.v1"):
    """The client says the upload finished (fallback for stores without notifications)."""

    video_id: Id
    object_key: str


class VideoReady(_Msg, tag="video_ready.v1"):
    """A video was processed and may be served."""

    video_id: Id
    author_id: Id
    duration_s: float
    at: Millis


class VideoFailed(_Msg, tag="video_failed.v1"):
    """A video was rejected by processing; the reason is shown to its creator."""

    video_id: Id
    author_id: Id
    reason: str
    at: Millis


class VideoDeleted(_Msg, tag="video_deleted.v1"):
    """The creator deleted a video: drop it from feeds and caches."""

    video_id: Id
    author_id: Id
    at: Millis


class DeadLetter(_Msg, tag="dead_letter.v1"):
    """A message that could not be decoded or handled, kept with the reason."""

    origin_subject: str
    reason: str
    #: the start of the dead message (see ``payload_bytes`` for its whole size)
    payload: str
    stream_seq: int = 0
    at: Millis = 0
    payload_bytes: int = 0


BusMessage = Union[
    LikeRequest,
    Follow,
    NewVideo,
    Watched,
    LikeDelta,
    FollowDelta,
    ViewDelta,
    UploadCompleted,
    VideoReady,
    VideoFailed,
    VideoDeleted,
    DeadLetter,
]

MESSAGE_TYPES: dict[str, type[_Msg]] = {
    cls.__struct_config__.tag: cls for cls in BusMessage.__args__  # type: ignore[attr-defined]
}
