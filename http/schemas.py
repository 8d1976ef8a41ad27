"""Request and response bodies of the public API (msgspec Structs: validated on the way in, fast out).

Ids are 63-bit integers and travel as decimal strings: JavaScript clients lose precision above 2^53.
Request bodies refuse unknown fields so a typo in a field name is a clear 400, not a silent default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from clipstream.storage.hashtags import CAPTION_MAX, CAPTION_PATTERN

__all__ = [
    "Caption",
    "FeedItem",
    "FeedResponse",
    "FollowRequest",
    "LikeRequestBody",
    "LoginRequest",
    "LoginResponse",
    "RefreshRequest",
    "RegisterRequest",
    "RegisterResponse",
    "StatusResponse",
    "TokenResponse",
    "UploadUrlRequest",
    "UploadUrlResponse",
    "UserProfile",
    "VideoDetail",
    "VideoList",
    "VideoPatch",
    "ViewRequestBody",
]

IdStr = Annotated[str, Meta(pattern=r"^[0-9]{1,19}$", description="63-bit id as a decimal string", examples=["1234567890123"])]


#: the rules of :mod:`clipstream.storage.hashtags`, stated in the schema (so the OpenAPI document says
#: them) and checked by msgspec: a 400 naming ``$.caption``
Caption = Annotated[str, Meta(max_length=CAPTION_MAX, pattern=CAPTION_PATTERN,
                              description="at most 300 characters, no control characters but newlines; #hashtags are parsed from it")]


class _Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of request bodies."""


class RegisterRequest(_Request):
    username: Annotated[str, Meta(pattern=r"^[a-z0-9_]{3,30}$", description="3-30 of a-z, 0-9, _")]
    # Spaces and control characters spelled out: `\s` means different sets in Python (which checks)
    # and ECMA-262 (what the OpenAPI document's readers use), so the document would say otherwise.
    email: Annotated[str, Meta(max_length=254, pattern=r"^[^@\x00-\x20\x7f]{1,64}@[^@\x00-\x20\x7f]+\.[^@\x00-\x20\x7f]+$")]
    password: Annotated[str, Meta(min_length=8, max_length=256)]


class LoginRequest(_Request):
    username: Annotated[str, Meta(min_length=1, max_length=64)]
    password: Annotated[str, Meta(min_length=1, max_length=256)]


class RefreshRequest(_Request):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$",
                                       description="refresh_token of the last login or refresh")]


class UploadUrlRequest(_Request):
    # Bounds against the configured limit are checked by the handler so the message can name it;
    # the type bound only keeps the value inside a CQL bigint.
    file_size_bytes: Annotated[int, Meta(le=2**62, description="size of the file to upload, bytes (1 up to the configured limit)")]
    file_format: Annotated[
        str, Meta(max_length=16, description="container, one of the configured formats (default: mp4, mov, webm)")
    ]
    caption: Caption = ""


class VideoPatch(_Request):
    """The fields of a video its creator may change."""

    caption: Caption


class ViewRequestBody(_Request):
    watched_ms: Annotated[int, Meta(ge=0, le=3_600_000, description="how long the viewer watched, ms: a full watch or a quick skip teaches the feed")] | None = None


class LikeRequestBody(_Request):
    action: Literal["like", "unlike"]


class FollowRequest(_Request):
    action: Literal["follow", "unfollow"]


class RegisterResponse(msgspec.Struct, frozen=True):
    user_id: IdStr
    username: str


class TokenResponse(msgspec.Struct, frozen=True):
    access_token: str
    expires_in: int
    user_id: IdStr
    token_type: str = "bearer"
    #: spent by ``POST /v1/auth/refresh`` for the next access token (and the next refresh token);
    #: a refresh token used twice signs the session out
    refresh_token: str = ""
    refresh_expires_in: int = 0
    username: str = ""


class WriteResponse(msgspec.Struct, frozen=True):
    """A like, follow or view taken (durable: JetStream acked it)."""

    success: bool = True
    #: pass it as ``after`` to ``GET /v1/feed`` and the page takes this action in (read your own
    #: writes: the feed entity has it before it ranks); null when the action does not reach the
    #: feed (a view without ``watched_ms``)
    read_after: str | None = None


class StatusResponse(msgspec.Struct, frozen=True):
    status: str


class UploadUrlResponse(msgspec.Struct, frozen=True):
    video_id: IdStr
    upload_url: str
    expires_in: int


class UserProfile(msgspec.Struct, frozen=True):
    user_id: IdStr
    username: str
    follower_count: int
    following_count: int
    video_count: int
    #: the caller follows this user (as of the last flush of the caller's follows, ~0.25 s)
    following: bool = False


class FeedItem(msgspec.Struct, frozen=True):
    """One ready video as shown in a feed or a profile grid."""

    video_id: IdStr
    author_id: IdStr
    username: str
    video_url: str
    thumbnail_url: str
    like_count: int
    duration: float
    created_at: datetime
    caption: str = ""
    hashtags: list[str] = msgspec.field(default_factory=list)
    #: the caller likes this video (feed items; false where the caller's state is not at hand)
    liked: bool = False
    #: the caller follows its author (feed items; false where the caller's state is not at hand)
    following_author: bool = False
    #: a smaller rendition of the same video for slow links (360x640, ~390 kbit/s); null for videos
    #: processed before renditions existed: play ``video_url``
    video_url_low: str | None = None
    #: average bitrates of ``video_url`` and ``video_url_low``, kbit/s (null: not known), so that a
    #: client can set them against its measured throughput
    video_kbps: int | None = None
    video_low_kbps: int | None = None


class FeedResponse(msgspec.Struct, frozen=True):
    next_cursor: str | None
    videos: list[FeedItem]
    #: when the newest like, follow or watch this page's ranking took in happened (ms since the
    #: Unix epoch; 0: none yet): a client, or the bench, can tell whether a like made it in
    feedback_at: int = 0


class LoginResponse(TokenResponse, frozen=True):
    #: the first page of the For You feed when the login asked for it (``?feed=N``), so that a client
    #: shows it without another round trip; null if not asked, or if the feed did not answer in time
    feed: FeedResponse | None = None


class VideoList(msgspec.Struct, frozen=True):
    videos: list[FeedItem]
    next_cursor: str | None


class VideoDetail(msgspec.Struct, frozen=True):
    """A video as its page shows it; URLs are null until it is ready."""

    video_id: IdStr
    author_id: IdStr
    username: str
    status: str
    failure_reason: str | None
    duration: float | None
    video_url: str | None
    thumbnail_url: str | None
    like_count: int
    view_count: int
    created_at: datetime
    caption: str = ""
    hashtags: list[str] = msgspec.field(default_factory=list)
    #: as in FeedItem: the low rendition and the bitrates, null until ready (or when not made)
    video_url_low: str | None = None
    video_kbps: int | None = None
    video_low_kbps: int | None = None
