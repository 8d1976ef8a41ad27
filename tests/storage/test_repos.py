"""CQL round trips through the migrated schema, against the real CQL server."""

from __future__ import annotations

import pytest

from clipstream.storage.cql import apply_migrations
from clipstream.storage.errors import Conflict, NotFound
from clipstream.storage.ids import new_id
from clipstream.storage.models import User, Video
from clipstream.storage.repos import FeedRepo, FollowRepo, LikeRepo, StatsRepo, UserRepo, VideoRepo, now_ms

pytestmark = pytest.mark.integration


def a_user(name: str | None = None) -> User:
    uid = new_id()
    name = name or f"u{uid}"
    return User(user_id=uid, username=name, email=f"{name}@example.test", password_hash="h", created_at=now_ms())


def a_video(author: int) -> Video:
    vid = new_id()
    return Video(video_id=vid, author_id=author, status="uploading", file_size=10, file_format="mp4",
                 upload_key=f"{author}/{vid}.mp4", created_at=now_ms())


class TestMigrations:
    def test_applying_again_changes_nothing(self, migrated) -> None:
        assert apply_migrations(migrated.cql) == []


class TestUsers:
    async def test_round_trip_and_unique_names(self, cql) -> None:
        users = UserRepo(cql)
        user = a_user()
        await users.create(user)
        assert await users.get(user.user_id) == user
        assert (await users.by_username(user.username)).user_id == user.user_id
        with pytest.raises(Conflict) as taken:
            await users.create(a_user(user.username))
        assert taken.value.field == "username"
        clash = User(user_id=new_id(), username=f"x{new_id()}", email=user.email, password_hash="h")
        with pytest.raises(Conflict) as taken:
            await users.create(clash)
        assert taken.value.field == "email"
        # the losing claim released its username
        await users.create(User(user_id=new_id(), username=clash.username, email=f"{clash.username}@e.test",
                                password_hash="h"))

    async def test_unknown_user(self, cql) -> None:
        with pytest.raises(NotFound):
            await UserRepo(cql).get(new_id())


class TestVideos:
    async def test_lifecycle_and_author_index(self, cql) -> None:
        videos = VideoRepo(cql)
        author = new_id()
        v1, v2 = a_video(author), a_video(author)
        for v in (v1, v2):
            await videos.create(v)
        assert (await videos.get(v1.video_id)).status == "uploading"
        assert await videos.claim_processing(v1.video_id, lease_ms=60_000)
        assert not await videos.claim_processing(v1.video_id, lease_ms=60_000)  # a redelivery
        assert await videos.claim_processing(v1.video_id, lease_ms=0)  # the lease lapsed: taken over
        await videos.mark_ready(v1, "m.mp4", "t.jpg", 5.0, 720, 1280)
        assert not await videos.claim_processing(v1.video_id, lease_ms=0)
        await videos.mark_ready(v2, "m2.mp4", "t2.jpg", 4.0, 720, 1280)
        ready = await videos.get(v1.video_id)
        assert ready.servable and ready.media_key == "m.mp4" and ready.duration == 5.0
        assert await videos.by_author(author, None, 10) == [v2.video_id, v1.video_id]
        assert await videos.by_author(author, v2.video_id, 10) == [v1.video_id]
        assert await videos.count_by_author(author) == 2
        await videos.mark_deleted(ready)
        assert not (await videos.get(v1.video_id)).servable
        assert await videos.by_author(author, None, 10) == [v2.video_id]

    async def test_failed_keeps_the_reason(self, cql) -> None:
        videos = VideoRepo(cql)
        v = a_video(new_id())
        await videos.create(v)
        await videos.mark_failed(v.video_id, "video is 212.0 s long; the limit is 180 s")
        got = await videos.get(v.video_id)
        assert got.status == "failed" and "212.0 s" in (got.failure_reason or "")


class TestGraph:
    async def test_stats_likes_follows_feed(self, cql) -> None:
        vid, user, author = new_id(), new_id(), new_id()
        stats = StatsRepo(cql)
        await stats.put_many([(vid, 3, 7, 0, 42)])
        assert (await stats.get_many([vid, new_id()])) == {vid: (3, 7, 0, 42)}
        likes = LikeRepo(cql)
        await likes.apply([(user, vid, author, True, now_ms())])
        assert await likes.liked_by(user) == {vid: author}
        await likes.apply([(user, vid, author, False, now_ms())])
        assert await likes.liked_by(user) == {}
        follows = FollowRepo(cql)
        await follows.apply([(user, author, True)])
        assert await follows.following(user) == {author} and await follows.followers(author) == [user]
        feeds = FeedRepo(cql)
        other = new_id()
        await feeds.save([(user, 9, 2, [(vid, author), (other, author)])], [(user, 1, [vid])])
        # served = the stored pages' videos; the inbox loses what was served since it was written
        assert await feeds.load(user) == (9, 2, [(other, author)], {vid}, {1: [vid]})
        await feeds.save([], [(user, p, [p]) for p in range(2, 12)])  # pages alone, no state row
        seq, next_page, inbox, served, pages = await feeds.load(user, recent=8)
        assert (seq, next_page, inbox) == (9, 12, [(other, author)])
        assert served == {vid, *range(2, 12)} and sorted(pages) == list(range(4, 12))
        cql.execute_sync("INSERT INTO feed_served (user_id, video_id) VALUES (%s, %s)", (user, other))
        assert (await feeds.load(user))[3] == {vid, other, *range(2, 12)}  # served before migration 2


class TestStatsFencing:
    """A stale owner's late flush (lower applied sequence) never overwrites a newer one."""

    async def test_highest_applied_sequence_wins_in_any_order(self, cql) -> None:
        vid = new_id()
        stats = StatsRepo(cql)
        await stats.put_many([(vid, 10, 1, 0, 500)])  # the new owner's flush lands first
        await stats.put_many([(vid, 7, 1, 0, 300)])  # the old owner's last flush lands late
        assert (await stats.get_many([vid]))[vid] == (10, 1, 0, 500)
        await stats.put_many([(vid, 11, 2, 0, 501)])
        assert (await stats.get_many([vid]))[vid] == (11, 2, 0, 501)

    async def test_rows_written_before_fencing_are_still_overwritten(self, cql) -> None:
        vid = new_id()
        cql.execute_sync("INSERT INTO stats (id, likes, views, followers, applied_seq) VALUES (%s, 5, 0, 0, 9)", (vid,))
        await StatsRepo(cql).put_many([(vid, 6, 0, 0, 10)])
        assert (await StatsRepo(cql).get_many([vid]))[vid] == (6, 0, 0, 10)
