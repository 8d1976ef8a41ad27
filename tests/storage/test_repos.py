"""CQL round trips through the migrated schema, against the real CQL server."""

from __future__ import annotations

from typing import Any

import pytest
from cassandra.query import BatchStatement

from clipstream.storage.cql import BATCH_ROWS, apply_migrations
from clipstream.storage.data_migrations import LEGACY_PAGE, feed_served_into_pages
from clipstream.storage.errors import Conflict, NotFound
from clipstream.storage.ids import new_id
from clipstream.storage.models import FeedState, Stats, StoredFeed, User, Video
from clipstream.storage.repos import Claim, FeedRepo, FollowRepo, LikeRepo, StatsRepo, UserRepo, VideoRepo, now_ms
from tests.storage.conftest import rows_of

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
        assert (await videos.claim_processing(v1.video_id, lease_ms=60_000)).taken
        held = await videos.claim_processing(v1.video_id, lease_ms=60_000)  # a redelivery
        assert not held.taken and 50_000 < held.held_ms <= 60_000  # try again when the lease lapses
        assert (await videos.claim_processing(v1.video_id, lease_ms=0)).taken  # the lease lapsed: taken over
        await videos.mark_ready(v1, "m.mp4", "t.jpg", 5.0, 720, 1280)
        assert await videos.claim_processing(v1.video_id, lease_ms=0) == Claim(False)  # nothing to do
        await videos.mark_ready(v2, "m2.mp4", "t2.jpg", 4.0, 720, 1280, low_key="m2-low.mp4", media_kbps=1370,
                                low_kbps=390)
        ready = await videos.get(v1.video_id)
        assert ready.servable and ready.media_key == "m.mp4" and ready.duration == 5.0
        assert (ready.low_key, ready.media_kbps, ready.low_kbps) == (None, None, None)
        two = await videos.get(v2.video_id)
        assert (two.low_key, two.media_kbps, two.low_kbps) == ("m2-low.mp4", 1370, 390)
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
        await stats.put_many([Stats(vid, 3, 7, 0, 42)])
        assert (await stats.get_many([vid, new_id()])) == {vid: Stats(vid, 3, 7, 0, 42)}
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
        await feeds.save([FeedState(user, 9, 2, [(vid, author), (other, author)], b"profile")], [(user, 1, [vid])])
        # served = the stored pages' videos; the inbox loses what was served since it was written
        assert await feeds.load(user) == StoredFeed(9, 2, [(other, author)], {vid}, {1: [vid]}, b"profile")
        await feeds.save([], [(user, p, [p]) for p in range(2, 12)])  # pages alone, no state row
        stored = await feeds.load(user, recent=8)
        assert stored.profile == b"profile"
        assert (stored.applied_seq, stored.next_page, stored.inbox) == (9, 12, [(other, author)])
        assert stored.served == {vid, *range(2, 12)} and sorted(stored.pages) == list(range(4, 12))
        # served before migration 2: in feed_served, which migration 5 copies into one page
        cql.execute_sync("INSERT INTO feed_served (user_id, video_id) VALUES (%s, %s)", (user, other))
        assert (await feeds.load(user)).served == {vid, *range(2, 12)}  # feed_served is read no more
        assert feed_served_into_pages(cql) >= 1
        assert feed_served_into_pages(cql) >= 1  # a rerun is harmless
        stored = await feeds.load(user, recent=20)
        assert stored.served == {vid, other, *range(2, 12)}
        assert stored.next_page == 12 and LEGACY_PAGE not in stored.pages and sorted(stored.pages) == list(range(1, 12))
        assert await feeds.page(user, LEGACY_PAGE) == [other]


def batched(sent: list[Any], rows: int) -> None:
    """All ``rows`` went out in fewer requests, as unlogged batches of at most BATCH_ROWS."""
    assert sum(len(rows_of(r)) for r in sent) == rows and len(sent) < rows
    assert all(isinstance(r, BatchStatement) and len(r) <= BATCH_ROWS for r in sent if len(rows_of(r)) > 1)


class TestBatchedWrites:
    """Each write-behind repository call writes all its rows through Cql.write_many's batches."""

    async def test_likes_over_many_users(self, cql, sent) -> None:
        users, author = [new_id() for _ in range(4)], new_id()
        videos = [new_id() for _ in range(BATCH_ROWS + 10)]
        likes = LikeRepo(cql)
        await likes.apply([(u, v, author, True, now_ms()) for u in users for v in videos])
        batched(sent, len(users) * len(videos))
        for u in users:
            assert await likes.liked_by(u) == dict.fromkeys(videos, author)
        # unlike half, and like-unlike-like one video in the same call: it stays liked
        v0 = videos[0]
        await likes.apply([(users[0], v0, author, False, now_ms()), (users[0], v0, author, True, now_ms())]
                          + [(u, v, author, False, now_ms()) for u in users for v in videos[1::2]])
        assert await likes.liked_by(users[0]) == dict.fromkeys(videos[0::2], author)
        assert await likes.liked_by(users[1]) == dict.fromkeys(videos[0::2], author)

    async def test_follows_in_both_directions(self, cql, sent) -> None:
        users, authors = [new_id() for _ in range(BATCH_ROWS + 3)], [new_id() for _ in range(3)]
        follows = FollowRepo(cql)
        await follows.apply([(u, a, True) for u in users for a in authors])
        batched(sent, 2 * len(users) * len(authors))
        assert all([await follows.following(u) == set(authors) for u in users])
        for a in authors:
            assert sorted(await follows.followers(a)) == sorted(users)
        await follows.apply([(u, authors[0], False) for u in users] + [(users[0], authors[1], False),
                                                                        (users[0], authors[1], True)])
        assert await follows.followers(authors[0]) == []
        assert await follows.following(users[0]) == set(authors[1:])

    async def test_stats_rows(self, cql, sent) -> None:
        rows = [Stats(new_id(), i, 2 * i, 3, 1000 + i) for i in range(3 * BATCH_ROWS)]
        stats = StatsRepo(cql)
        await stats.put_many(rows)
        batched(sent, len(rows))
        assert await stats.get_many(r.id for r in rows) == {r.id: r for r in rows}

    async def test_feed_states_and_pages(self, cql, sent) -> None:
        users = [new_id() for _ in range(5)]
        feeds = FeedRepo(cql)
        states = [FeedState(u, 7, 20, [(new_id(), new_id()) for _ in range(40)], None) for u in users]
        await feeds.save(states, [(u, p, [p, 1000 + p]) for u in users for p in range(20)])
        batched(sent, len(users) * 21)
        for s in states:
            assert await feeds.load(s.user_id, recent=20) == StoredFeed(
                s.applied_seq, s.next_page, s.inbox, {*range(20), *range(1000, 1020)}, {p: [p, 1000 + p] for p in range(20)},
            )


class TestStatsFencing:
    """A stale owner's late flush (lower applied sequence) never overwrites a newer one."""

    async def test_highest_applied_sequence_wins_in_any_order(self, cql) -> None:
        vid = new_id()
        stats = StatsRepo(cql)
        await stats.put_many([Stats(vid, 10, 1, 0, 500)])  # the new owner's flush lands first
        await stats.put_many([Stats(vid, 7, 1, 0, 300)])  # the old owner's last flush lands late
        assert (await stats.get_many([vid]))[vid] == Stats(vid, 10, 1, 0, 500)
        await stats.put_many([Stats(vid, 11, 2, 0, 501)])
        assert (await stats.get_many([vid]))[vid] == Stats(vid, 11, 2, 0, 501)

    async def test_fencing_holds_inside_a_batch(self, cql, sent) -> None:
        """Each row's USING TIMESTAMP in an unlogged batch (which sets none) still decides."""
        ids = [new_id() for _ in range(BATCH_ROWS)]
        stats = StatsRepo(cql)
        await stats.put_many([Stats(i, 10, 1, 0, 500) for i in ids])
        await stats.put_many([Stats(i, 7, 1, 0, 300) if n % 2 else Stats(i, 11, 2, 0, 501) for n, i in enumerate(ids)])
        batched(sent, 2 * len(ids))
        assert await stats.get_many(ids) == {
            i: Stats(i, 10, 1, 0, 500) if n % 2 else Stats(i, 11, 2, 0, 501) for n, i in enumerate(ids)
        }

    async def test_rows_written_before_fencing_are_still_overwritten(self, cql) -> None:
        vid = new_id()
        cql.execute_sync("INSERT INTO stats (id, likes, views, followers, applied_seq) VALUES (%s, 5, 0, 0, 9)", (vid,))
        await StatsRepo(cql).put_many([Stats(vid, 6, 0, 0, 10)])
        assert (await StatsRepo(cql).get_many([vid]))[vid] == Stats(vid, 6, 0, 0, 10)
