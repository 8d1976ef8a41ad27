"""CQL repositories: the source of truth for users, videos, likes, follows, counts and feeds.

Each repository is handed an open :class:`~clipstream.storage.cql.Cql` and never reads settings.
"""

from __future__ import annotations

import asyncio
import calendar
import time
from typing import Any, Iterable

import msgspec

from clipstream.storage.cql import Cql
from clipstream.storage.data_migrations import LEGACY_PAGE
from clipstream.storage.errors import Conflict, NotFound
from clipstream.storage.models import FeedState, Stats, StoredFeed, User, Video

__all__ = [
    "Claim", "FENCE_BASE", "FeedRepo", "FollowRepo", "LikeRepo", "StatsRepo", "UserRepo", "VideoRepo", "fence_timestamp", "now_ms",
    "timestamp_ms",
]


def now_ms() -> int:
    return int(time.time() * 1000)


class Claim(msgspec.Struct, frozen=True):
    """What :meth:`VideoRepo.claim_processing` got: the video, or nothing to do, or another
    worker's claim that lapses in ``held_ms`` unless that worker renews it."""

    taken: bool
    held_ms: int = 0


class UserRepo:
    """Accounts, with usernames and emails claimed uniquely through lightweight transactions."""

    def __init__(self, cql: Cql) -> None:
        self.cql = cql

    async def create(self, user: User) -> None:
        """Insert a user; raises Conflict("username"/"email") if either is taken."""
        claimed = await self.cql.execute(
            "INSERT INTO users_by_username (username, user_id) VALUES (?, ?) IF NOT EXISTS",
            (user.username, user.user_id),
        )
        if not claimed[0].applied:
            raise Conflict("username")
        claimed = await self.cql.execute(
            "INSERT INTO users_by_email (email, user_id) VALUES (?, ?) IF NOT EXISTS",
            (user.email, user.user_id),
        )
        if not claimed[0].applied:
            await self.cql.execute("DELETE FROM users_by_username WHERE username = ?", (user.username,))
            raise Conflict("email")
        await self.cql.execute(
            "INSERT INTO users (user_id, username, email, password_hash, is_admin, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (user.user_id, user.username, user.email, user.password_hash, user.is_admin, user.created_at),
        )

    async def get(self, user_id: int) -> User:
        rows = await self.cql.execute(
            "SELECT user_id, username, email, password_hash, is_admin, created_at FROM users WHERE user_id = ?",
            (user_id,),
        )
        if not rows:
            raise NotFound(f"user {user_id}")
        return _user(rows[0])

    async def get_many(self, user_ids: Iterable[int]) -> dict[int, User]:
        results = await self.cql.execute_many(
            "SELECT user_id, username, email, password_hash, is_admin, created_at FROM users WHERE user_id = ?",
            [(u,) for u in set(user_ids)],
        )
        return {rows[0].user_id: _user(rows[0]) for rows in results if rows}

    async def by_username(self, username: str) -> User:
        rows = await self.cql.execute("SELECT user_id FROM users_by_username WHERE username = ?", (username,))
        if not rows:
            raise NotFound(f"user {username!r}")
        return await self.get(rows[0].user_id)


def _user(row: Any) -> User:
    return User(
        user_id=row.user_id,
        username=row.username,
        email=row.email,
        password_hash=row.password_hash,
        is_admin=bool(row.is_admin),
        created_at=timestamp_ms(row.created_at),
    )


def timestamp_ms(value: Any) -> int:
    """Unix ms of a CQL timestamp (the driver returns naive UTC datetimes)."""
    if value is None:
        return 0
    return calendar.timegm(value.utctimetuple()) * 1000 + value.microsecond // 1000



_VIDEO_COLS = (
    "video_id, author_id, status, file_size, file_format, upload_key, media_key, thumb_key, duration, "
    "width, height, failure_reason, created_at, ready_at, deleted, caption, hashtags, low_key, media_kbps, low_kbps"
)


class VideoRepo:
    """Videos and the per-creator index of ready ones."""

    def __init__(self, cql: Cql) -> None:
        self.cql = cql

    async def create(self, video: Video) -> None:
        await self.cql.execute(
            "INSERT INTO videos (video_id, author_id, status, file_size, file_format, upload_key, created_at, deleted, "
            "caption, hashtags) VALUES (?, ?, ?, ?, ?, ?, ?, false, ?, ?)",
            (video.video_id, video.author_id, video.status, video.file_size, video.file_format,
             video.upload_key, video.created_at, video.caption, list(video.hashtags)),
        )

    async def get(self, video_id: int) -> Video:
        rows = await self.cql.execute(f"SELECT {_VIDEO_COLS} FROM videos WHERE video_id = ?", (video_id,))
        if not rows:
            raise NotFound(f"video {video_id}")
        return _video(rows[0])

    async def get_many(self, video_ids: Iterable[int]) -> dict[int, Video]:
        results = await self.cql.execute_many(
            f"SELECT {_VIDEO_COLS} FROM videos WHERE video_id = ?", [(v,) for v in set(video_ids)]
        )
        return {rows[0].video_id: _video(rows[0]) for rows in results if rows}

    async def claim_processing(self, video_id: int, lease_ms: int) -> "Claim":
        """Take a video for processing: uploading -> processing, or a processing claim whose worker
        went silent for ``lease_ms``. Not taken if it is ready, failed, deleted, or if another
        worker's claim is younger than the lease (then ``held_ms`` says for how much longer)."""
        now = now_ms()
        rows = await self.cql.execute(
            "UPDATE videos SET status = 'processing', claimed_at = ? WHERE video_id = ? IF status = 'uploading'",
            (now, video_id),
        )
        if not rows or rows[0].applied:
            return Claim(bool(rows))
        if rows[0].status != "processing":
            return Claim(False)
        current = await self.cql.execute("SELECT claimed_at FROM videos WHERE video_id = ?", (video_id,))
        claimed = timestamp_ms(current[0].claimed_at) if current else 0
        if now - claimed < lease_ms:
            return Claim(False, held_ms=lease_ms - (now - claimed))
        rows = await self.cql.execute(
            "UPDATE videos SET claimed_at = ? WHERE video_id = ? IF status = 'processing' AND claimed_at = ?",
            (now, video_id, claimed),
        )
        if rows and rows[0].applied:
            return Claim(True)
        return Claim(False, held_ms=lease_ms)  # another worker took it over just now

    def scan_servable(self) -> list[tuple[int, int, int, tuple[str, ...]]]:
        """(video_id, author_id, created_at ms, hashtags) of every ready, undeleted video. A full
        table scan, paged by the driver and blocking: for the rare rebuild of Redis (run it in a thread)."""
        rows = self.cql.execute_sync("SELECT video_id, author_id, status, deleted, created_at, hashtags FROM videos")
        return [(r.video_id, r.author_id, timestamp_ms(r.created_at), tuple(r.hashtags or ()))
                for r in rows if r.status == "ready" and not r.deleted]

    async def renew_claim(self, video_id: int) -> bool:
        """Heartbeat of the worker processing a video: push its claim's lease forward. False if the
        video is no longer being processed (finished, failed or deleted meanwhile)."""
        rows = await self.cql.execute(
            "UPDATE videos SET claimed_at = ? WHERE video_id = ? IF status = 'processing'", (now_ms(), video_id)
        )
        return bool(rows and rows[0].applied)

    async def release_processing(self, video_id: int) -> None:
        """Hand a video back (transient failure) so a redelivered event processes it again."""
        await self.cql.execute(
            "UPDATE videos SET status = 'uploading' WHERE video_id = ? IF status = 'processing'", (video_id,)
        )

    async def mark_ready(self, video: Video, media_key: str, thumb_key: str, duration: float,
                         width: int, height: int, *, low_key: str | None = None, media_kbps: int | None = None,
                         low_kbps: int | None = None) -> int:
        ready_at = now_ms()
        await self.cql.execute(
            "UPDATE videos SET status = 'ready', media_key = ?, thumb_key = ?, duration = ?, width = ?, "
            "height = ?, ready_at = ?, low_key = ?, media_kbps = ?, low_kbps = ? WHERE video_id = ?",
            (media_key, thumb_key, duration, width, height, ready_at, low_key, media_kbps, low_kbps, video.video_id),
        )
        await self.cql.execute(
            "INSERT INTO videos_by_author (author_id, video_id) VALUES (?, ?)", (video.author_id, video.video_id)
        )
        if video.hashtags:
            await self.cql.execute_many(
                "INSERT INTO videos_by_hashtag (tag, video_id, author_id) VALUES (?, ?, ?)",
                [(tag, video.video_id, video.author_id) for tag in video.hashtags],
            )
        return ready_at

    async def mark_failed(self, video_id: int, reason: str) -> None:
        await self.cql.execute(
            "UPDATE videos SET status = 'failed', failure_reason = ? WHERE video_id = ?", (reason, video_id)
        )

    async def mark_deleted(self, video: Video) -> None:
        await self.cql.execute("UPDATE videos SET deleted = true WHERE video_id = ?", (video.video_id,))
        await self.cql.execute(
            "DELETE FROM videos_by_author WHERE author_id = ? AND video_id = ?", (video.author_id, video.video_id)
        )
        if video.hashtags:
            await self.cql.execute_many(
                "DELETE FROM videos_by_hashtag WHERE tag = ? AND video_id = ?",
                [(tag, video.video_id) for tag in video.hashtags],
            )

    async def by_author(self, author_id: int, before: int | None, limit: int) -> list[int]:
        """Ids of a creator's ready videos, newest first, strictly older than ``before``."""
        if before is None:
            rows = await self.cql.execute(
                "SELECT video_id FROM videos_by_author WHERE author_id = ? LIMIT ?", (author_id, limit)
            )
        else:
            rows = await self.cql.execute(
                "SELECT video_id FROM videos_by_author WHERE author_id = ? AND video_id < ? LIMIT ?",
                (author_id, before, limit),
            )
        return [r.video_id for r in rows]

    async def by_hashtag(self, tag: str, before: int | None, limit: int) -> list[int]:
        """Ids of a hashtag's ready videos, newest first, strictly older than ``before``."""
        if before is None:
            rows = await self.cql.execute("SELECT video_id FROM videos_by_hashtag WHERE tag = ? LIMIT ?", (tag, limit))
        else:
            rows = await self.cql.execute(
                "SELECT video_id FROM videos_by_hashtag WHERE tag = ? AND video_id < ? LIMIT ?", (tag, before, limit)
            )
        return [r.video_id for r in rows]

    async def set_caption(self, video: Video, caption: str, hashtags: tuple[str, ...]) -> None:
        """A new caption; a ready video's hashtag rows follow it (the old tags' rows go)."""
        await self.cql.execute(
            "UPDATE videos SET caption = ?, hashtags = ? WHERE video_id = ?", (caption, list(hashtags), video.video_id)
        )
        if video.status != "ready":
            return  # mark_ready writes the rows of the tags the video has then
        gone = [t for t in video.hashtags if t not in hashtags]
        if gone:
            await self.cql.execute_many(
                "DELETE FROM videos_by_hashtag WHERE tag = ? AND video_id = ?", [(t, video.video_id) for t in gone]
            )
        if hashtags:
            await self.cql.execute_many(
                "INSERT INTO videos_by_hashtag (tag, video_id, author_id) VALUES (?, ?, ?)",
                [(t, video.video_id, video.author_id) for t in hashtags],
            )

    async def count_by_author(self, author_id: int) -> int:
        rows = await self.cql.execute("SELECT COUNT(*) AS n FROM videos_by_author WHERE author_id = ?", (author_id,))
        return int(rows[0].n) if rows else 0


def _video(row: Any) -> Video:
    return Video(
        video_id=row.video_id,
        author_id=row.author_id,
        status=row.status,
        file_size=row.file_size or 0,
        file_format=row.file_format or "",
        upload_key=row.upload_key or "",
        media_key=row.media_key,
        thumb_key=row.thumb_key,
        duration=row.duration,
        width=row.width,
        height=row.height,
        failure_reason=row.failure_reason,
        created_at=timestamp_ms(row.created_at),
        ready_at=timestamp_ms(row.ready_at) if row.ready_at else None,
        deleted=bool(row.deleted),
        caption=row.caption or "",
        hashtags=tuple(row.hashtags or ()),
        low_key=row.low_key,
        media_kbps=row.media_kbps,
        low_kbps=row.low_kbps,
    )


#: Write timestamps of sequence-fenced rows start here: above any wall-clock timestamp in
#: microseconds (2**52 µs is the year 2112), so rows written with the default timestamp before
#: fencing existed are overwritten too.
FENCE_BASE = 1 << 52


def fence_timestamp(applied_seq: int) -> int:
    """The CQL write timestamp of a row holding state up to stream sequence ``applied_seq``."""
    return FENCE_BASE + applied_seq


class StatsRepo:
    """Absolute counts per id with the last applied stream sequence (exact under redelivery)."""

    def __init__(self, cql: Cql) -> None:
        self.cql = cql

    async def get_many(self, ids: Iterable[int]) -> dict[int, Stats]:
        """id -> its row; missing ids are absent."""
        results = await self.cql.execute_many(
            "SELECT id, likes, views, followers, applied_seq FROM stats WHERE id = ?", [(i,) for i in set(ids)]
        )
        return {
            row.id: Stats(row.id, row.likes or 0, row.views or 0, row.followers or 0, row.applied_seq or 0)
            for row in (r[0] for r in results if r)
        }

    def scan_likes(self) -> dict[int, int]:
        """id -> like count of every row. A full table scan, blocking: for the rare rebuild of Redis."""
        return {r.id: r.likes or 0 for r in self.cql.execute_sync("SELECT id, likes FROM stats")}

    async def put_many(self, rows: Iterable[Stats]) -> None:
        """Write rows, fenced by ``applied_seq``.

        The write timestamp is derived from the applied stream sequence, so for one id the row
        with the highest sequence wins whatever order the writes land in. That fences a stale
        owner: a node that lost its lease (cut off from NATS, not from Scylla) may still land its
        last flush after the new owner's, and without this its older counts would overwrite the
        newer ones. No lightweight transaction (a Paxos round per row) is needed.
        """
        await self.cql.write_many((
            "INSERT INTO stats (id, likes, views, followers, applied_seq) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?",
            [(r.id, r.likes, r.views, r.followers, r.applied_seq, fence_timestamp(r.applied_seq)) for r in rows],
        ))


class LikeRepo:
    """Like state per (user, video)."""

    def __init__(self, cql: Cql) -> None:
        self.cql = cql

    async def liked_by(self, user_id: int) -> dict[int, int]:
        """video_id -> author_id of every video the user likes."""
        rows = await self.cql.execute(
            "SELECT video_id, author_id FROM likes_by_user WHERE user_id = ?", (user_id,)
        )
        return {r.video_id: r.author_id for r in rows}

    async def apply(self, changes: Iterable[tuple[int, int, int, bool, int]]) -> None:
        """(user_id, video_id, author_id, liked, at_ms) changes in order -> rows inserted or deleted.

        Only the last change of a (user, video) is written: a user's rows go in one batch, with
        one write timestamp, on which a delete beats an insert; so a like, unlike and like again
        in one flush must not send the unlike (sending the adds, then the removes lost it too)."""
        last = {(user, video): (user, video, author, liked, at) for user, video, author, liked, at in changes}
        await self.cql.write_many(
            ("INSERT INTO likes_by_user (user_id, video_id, author_id, liked_at) VALUES (?, ?, ?, ?)",
             [(u, v, a, at) for u, v, a, liked, at in last.values() if liked]),
            ("DELETE FROM likes_by_user WHERE user_id = ? AND video_id = ?",
             [(u, v) for u, v, _, liked, _ in last.values() if not liked]),
        )


class FollowRepo:
    """The follow graph, written in both directions."""

    def __init__(self, cql: Cql) -> None:
        self.cql = cql

    async def following(self, user_id: int) -> set[int]:
        rows = await self.cql.execute("SELECT author_id FROM follows WHERE user_id = ?", (user_id,))
        return {r.author_id for r in rows}

    async def is_following(self, user_id: int, author_id: int) -> bool:
        rows = await self.cql.execute(
            "SELECT author_id FROM follows WHERE user_id = ? AND author_id = ?", (user_id, author_id)
        )
        return bool(rows)

    async def followers(self, author_id: int, limit: int = 100_000) -> list[int]:
        rows = await self.cql.execute(
            "SELECT user_id FROM followers WHERE author_id = ? LIMIT ?", (author_id, limit)
        )
        return [r.user_id for r in rows]

    async def apply(self, changes: Iterable[tuple[int, int, bool]]) -> None:
        """(user_id, author_id, follows) changes in order -> both directions written or removed
        (the last change of a pair only, as in :meth:`LikeRepo.apply`)."""
        last = {(u, a): follows for u, a, follows in changes}
        adds = [pair for pair, follows in last.items() if follows]
        removes = [pair for pair, follows in last.items() if not follows]
        await self.cql.write_many(
            ("INSERT INTO follows (user_id, author_id) VALUES (?, ?)", adds),
            ("INSERT INTO followers (author_id, user_id) VALUES (?, ?)", [(a, u) for u, a in adds]),
            ("DELETE FROM follows WHERE user_id = ? AND author_id = ?", removes),
            ("DELETE FROM followers WHERE author_id = ? AND user_id = ?", [(a, u) for u, a in removes]),
        )


class FeedRepo:
    """A user's feed state: applied sequence, inbox, and every page served (the served videos are
    their union; the next page number follows the newest)."""

    def __init__(self, cql: Cql) -> None:
        self.cql = cql

    async def load(self, user_id: int, recent: int = 8) -> StoredFeed:
        """The user's feed with its ``recent`` newest pages; zeros and None for a new user.

        The inbox is stored flat, video and author interleaved, in one list<bigint> column; what
        was served since it was last written is dropped from it here.
        """
        state, pages = await asyncio.gather(
            self.cql.execute("SELECT applied_seq, next_page, inbox, profile FROM feed_state WHERE user_id = ?", (user_id,)),
            self.cql.execute("SELECT page, video_ids FROM feed_pages WHERE user_id = ?", (user_id,)),
        )
        seq, next_page, inbox, profile = (0, 0, [], None)
        if state:
            seq, next_page, profile = state[0].applied_seq or 0, state[0].next_page or 0, state[0].profile
            flat = list(state[0].inbox or [])
            inbox = list(zip(flat[0::2], flat[1::2]))
        served: set[int] = set()
        for r in pages:  # newest first (clustering order); LEGACY_PAGE, if any, last
            served.update(r.video_ids or ())
        pages = [r for r in pages if r.page != LEGACY_PAGE]  # served, never a page to show again
        if pages:
            next_page = max(next_page, pages[0].page + 1)
        return StoredFeed(
            applied_seq=seq, next_page=next_page, inbox=[pair for pair in inbox if pair[0] not in served],
            served=served, pages={r.page: list(r.video_ids or []) for r in pages[:recent]}, profile=profile,
        )

    async def page(self, user_id: int, page: int) -> list[int] | None:
        """The video ids of a page served before; None if it is not (yet) stored."""
        rows = await self.cql.execute(
            "SELECT video_ids FROM feed_pages WHERE user_id = ? AND page = ?", (user_id, page)
        )
        return list(rows[0].video_ids or []) if rows else None

    async def save(self, states: Iterable[FeedState], pages: Iterable[tuple[int, int, list[int]]]) -> None:
        """Write state rows and new (user, page, video ids) pages.

        A page is one row whatever its size, and a feed that only served pages since its last
        flush needs no state row: that is one CQL row per page served, batched with the user's
        other rows."""
        await self.cql.write_many(
            ("INSERT INTO feed_state (user_id, applied_seq, next_page, inbox, profile) VALUES (?, ?, ?, ?, ?)",
             [(s.user_id, s.applied_seq, s.next_page, [n for pair in s.inbox for n in pair], s.profile)
              for s in states]),
            ("INSERT INTO feed_pages (user_id, page, video_ids) VALUES (?, ?, ?)", pages),
        )
