"""Records of the data model, as stored and as cached."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["FeedState", "Stats", "StoredFeed", "User", "Video", "VideoCard", "VideoStatus"]

VideoStatus = Literal["uploading", "processing", "ready", "failed"]


class User(msgspec.Struct, frozen=True, kw_only=True):
    """An account."""

    user_id: int
    username: str
    email: str
    password_hash: str
    is_admin: bool = False
    created_at: int = 0  # unix ms


class Video(msgspec.Struct, frozen=True, kw_only=True):
    """A video and its processing state."""

    video_id: int
    author_id: int
    status: VideoStatus
    file_size: int
    file_format: str
    upload_key: str
    media_key: str | None = None
    thumb_key: str | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    failure_reason: str | None = None
    created_at: int = 0
    ready_at: int | None = None
    deleted: bool = False
    caption: str = ""
    hashtags: tuple[str, ...] = ()
    #: the low rendition for slow links (None: processed before there was one, or none made)
    low_key: str | None = None
    #: average bitrates of the main and the low rendition, kbit/s (None: not known)
    media_kbps: int | None = None
    low_kbps: int | None = None

    @property
    def servable(self) -> bool:
        return self.status == "ready" and not self.deleted


class VideoCard(msgspec.Struct, frozen=True, array_like=True):
    """What a feed item needs of a ready video, cached in Redis (array-encoded: compact)."""

    video_id: int
    author_id: int
    username: str
    media_key: str
    thumb_key: str
    duration: float
    created_at: int
    #: trailing and defaulted, so a card cached before captions existed still decodes
    caption: str = ""
    hashtags: tuple[str, ...] = ()
    #: trailing too (cards cached before it decode as "", a video without one; code of before
    #: ignores the extra elements): the low rendition and the bitrates, kbit/s (0: unknown)
    low_key: str = ""
    kbps: int = 0
    low_kbps: int = 0

    @classmethod
    def of(cls, video: Video, username: str) -> "VideoCard":
        """The card of a ready video (its media keys must be set)."""
        assert video.media_key and video.thumb_key, "only processed videos have cards"
        return cls(video.video_id, video.author_id, username, video.media_key, video.thumb_key,
                   video.duration or 0.0, video.created_at, video.caption, video.hashtags,
                   video.low_key or "", video.media_kbps or 0, video.low_kbps or 0)


class Stats(msgspec.Struct, frozen=True, gc=False):
    """One ``stats`` row: the counts of a video (likes, views) or a creator (followers), with the
    highest stream sequence applied to them (which fences the row's writes)."""

    id: int
    likes: int = 0
    views: int = 0
    followers: int = 0
    applied_seq: int = 0


class FeedState(msgspec.Struct, frozen=True, gc=False):
    """One ``feed_state`` row: a user's feed apart from its pages."""

    user_id: int
    applied_seq: int
    next_page: int
    #: (video, author) candidates from followed creators, oldest first
    inbox: list[tuple[int, int]]
    #: the encoded interest profile (None: never stored; rebuilt from likes and follows)
    profile: bytes | None = None


class StoredFeed(msgspec.Struct, frozen=True, gc=False):
    """A user's feed as loaded: its state row and what its stored pages say (zeros for a new user)."""

    applied_seq: int = 0
    #: the page number that follows the newest stored page (or the state's, if higher)
    next_page: int = 0
    #: the inbox without what was served since it was written
    inbox: list[tuple[int, int]] = []
    #: every video of every stored page
    served: set[int] = set()
    #: the newest pages, by page number
    pages: dict[int, list[int]] = {}
    profile: bytes | None = None
