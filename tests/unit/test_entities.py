"""Entity logic without runtime or storage: dedupe, exact counts under redelivery, feed ranking."""

from __future__ import annotations

import math
from array import array

import msgspec
import pytest

from clipstream.actors.entities.counter import Counter, CounterKind, CounterSnapshot
from clipstream.actors.entities import feed as feed_module
from clipstream.actors.entities.feed import (EXPOSURE_FLOOR, FRESH_WINDOW, SOURCES, TAG_CAP, CandidatePool, FeedKind,
                                             UserFeed, base_score, build_feed)
from clipstream.actors.entities.profile import Profile
from clipstream.actors.entity import Outbox
from clipstream.bus.messages import Follow, FollowDelta, LikeDelta, LikeRequest, NewVideo, ViewDelta, Watched
from clipstream.bus.rpc import FeedPage, FeedQuery
from clipstream.storage.ids import IdGenerator, created_ms
from clipstream.storage.models import Stats

ids = IdGenerator(salt=7)


# These tests rank a profile as it is (tests/unit/conftest.py).
pytestmark = pytest.mark.usefixtures("no_onboarding")


def feed_kind() -> FeedKind:
    return FeedKind(None, None, None, None, subject_for=lambda m: f"subj.{type(m).__name__}")  # type: ignore[arg-type]


class TestCounter:
    def test_like_deltas_are_applied_once_per_sequence(self) -> None:
        kind, c = CounterKind(None, None), Counter(5)  # type: ignore[arg-type]
        like = LikeDelta(video_id=5, user_id=1, delta=1, at=0)
        assert kind.handle(c, like, 10, Outbox())
        assert not kind.handle(c, like, 10, Outbox())  # redelivery of the same stream message
        assert not kind.handle(c, like, 9, Outbox())
        assert kind.handle(c, like, 11, Outbox())
        assert c.likes == 2 and c.seq == 11

    def test_counts_never_go_negative(self) -> None:
        kind, c = CounterKind(None, None), Counter(5)  # type: ignore[arg-type]
        kind.handle(c, LikeDelta(video_id=5, user_id=1, delta=-1, at=0), 1, Outbox())
        kind.handle(c, FollowDelta(author_id=5, user_id=1, delta=-1, at=0), 2, Outbox())
        assert (c.likes, c.followers) == (0, 0)

    def test_views_and_followers(self) -> None:
        kind, c = CounterKind(None, None), Counter(5)  # type: ignore[arg-type]
        kind.handle(c, ViewDelta(video_id=5, user_id=1, at=0), 1, Outbox())
        kind.handle(c, FollowDelta(author_id=5, user_id=2, delta=1, at=0), 2, Outbox())
        assert (c.views, c.followers) == (1, 1)

    def test_snapshot_carries_the_applied_sequence(self) -> None:
        kind, c = CounterKind(None, None), Counter(5, likes=3, seq=40)  # type: ignore[arg-type]
        kind.handle(c, LikeDelta(video_id=5, user_id=1, delta=1, at=0), 41, Outbox())
        assert kind.snapshot(c) == CounterSnapshot(Stats(5, likes=4, applied_seq=41), likes_changed=True)
        assert kind.snapshot(c).likes_changed is False


class TestFeedLikes:
    def test_second_like_and_stray_unlike_change_nothing(self) -> None:
        kind, f = feed_kind(), UserFeed(1)
        out = Outbox()
        like = LikeRequest(user_id=1, video_id=9, author_id=2, like=True, at=0)
        kind.handle(f, like, 1, out)
        kind.handle(f, like, 2, out)
        kind.handle(f, LikeRequest(user_id=1, video_id=8, author_id=2, like=False, at=0), 3, out)
        assert [p.message.delta for p in out.publishes] == [1]
        kind.handle(f, LikeRequest(user_id=1, video_id=9, author_id=2, like=False, at=0), 4, out)
        assert [p.message.delta for p in out.publishes] == [1, -1]
        assert len({p.msg_id for p in out.publishes}) == 2

    def test_redelivered_like_emits_the_same_message_id(self) -> None:
        kind = feed_kind()
        like = LikeRequest(user_id=1, video_id=9, author_id=2, like=True, at=0)
        first, second = Outbox(), Outbox()
        kind.handle(UserFeed(1), like, 7, first)
        kind.handle(UserFeed(1), like, 7, second)  # state lost before the flush: replayed
        assert first.publishes[0].msg_id == second.publishes[0].msg_id

    def test_follow_self_is_ignored_and_follow_is_idempotent(self) -> None:
        kind, f, out = feed_kind(), UserFeed(1), Outbox()
        kind.handle(f, Follow(user_id=1, author_id=1, follow=True, at=0), 1, out)
        kind.handle(f, Follow(user_id=1, author_id=2, follow=True, at=0), 2, out)
        kind.handle(f, Follow(user_id=1, author_id=2, follow=True, at=0), 3, out)
        assert f.following == {2} and len(out.publishes) == 1


def page(kind: FeedKind, f: UserFeed, limit: int = 5, at: int | None = None) -> FeedPage:
    raw, _ = kind.query(f, msgspec.json.encode(FeedQuery(limit=limit, page=at)))
    return msgspec.json.decode(raw, type=FeedPage)


class TestFeedPages:
    def setup_method(self) -> None:
        self.videos = [(ids(), author, likes) for author in range(100, 110) for likes in (0, 5, 50)]
        self.kind = feed_kind()
        self.kind.pool = CandidatePool(self.videos)

    def test_paging_to_the_end_never_repeats(self) -> None:
        f = UserFeed(1)
        seen: list[int] = []
        p = page(self.kind, f)
        while p.next_page is not None:
            seen.extend(p.video_ids)
            p = page(self.kind, f, at=p.next_page)
        assert sorted(seen) == sorted(v for v, _, _ in self.videos)
        assert p.video_ids == []

    def test_same_cursor_same_page(self) -> None:
        f = UserFeed(1)
        first = page(self.kind, f)
        second = page(self.kind, f, at=first.next_page)
        again = page(self.kind, f, at=first.next_page)
        assert again == second and set(second.video_ids).isdisjoint(first.video_ids)

    def test_one_video_per_author_while_possible(self) -> None:
        p = page(self.kind, UserFeed(1), limit=10)
        authors = [a for v, a, _ in self.videos if v in p.video_ids]
        assert len(set(authors)) == 10

    def test_own_videos_are_not_served(self) -> None:
        p = page(self.kind, UserFeed(100), limit=50)
        own = {v for v, a, _ in self.videos if a == 100}
        assert own.isdisjoint(p.video_ids)

    def test_followed_creators_new_video_comes_first(self) -> None:
        f, kind = UserFeed(1), self.kind
        new = ids()
        kind.handle(f, Follow(user_id=1, author_id=555, follow=True, at=0), 1, Outbox())
        kind.handle(f, NewVideo(user_id=1, video_id=new, author_id=555, at=0), 2, Outbox())
        assert page(kind, f).video_ids[0] == new

    def test_pool_ranks_by_the_base_score(self) -> None:
        now = created_ms(max(v for v, _, _ in self.videos)) + 3_600_000
        pool = CandidatePool(self.videos, now_ms=now)
        expected = sorted(self.videos, key=lambda v: (base_score(v[0], v[2], now), v[0]), reverse=True)
        assert pool.ids == [v for v, _, _ in expected]
        for v, a, n in self.videos:
            author, score = pool.ranked[v]
            assert author == a and math.isclose(score, base_score(v, n, now))

    def test_a_long_inbox_is_served_to_the_end_without_repeats(self) -> None:
        f, kind = UserFeed(1), feed_kind()
        kind.handle(f, Follow(user_id=1, author_id=555, follow=True, at=0), 1, Outbox())
        new = [ids() for _ in range(130)]  # more than a page's window of candidates (6 x 10)
        for seq, vid in enumerate(new, start=2):
            kind.handle(f, NewVideo(user_id=1, video_id=vid, author_id=555, at=0), seq, Outbox())
        served: list[int] = []
        p = page(kind, f)
        while p.next_page is not None:
            served.extend(p.video_ids)
            p = page(kind, f, at=p.next_page)
        assert sorted(served) == sorted(new) and served[:10] == new[::-1][:10]  # newest first

    def test_empty_pool_answers_an_empty_last_page(self) -> None:
        kind = feed_kind()
        p = page(kind, UserFeed(1))
        assert p.video_ids == [] and p.next_page is None


def test_the_inbox_keeps_each_videos_author_with_it() -> None:
    """After a reload (a fresh kind, nothing shard-wide remembered) a followed creator's video still ranks first."""
    kind, f = feed_kind(), UserFeed(1)
    new = ids()
    kind.handle(f, Follow(user_id=1, author_id=555, follow=True, at=0), 1, Outbox())
    kind.handle(f, NewVideo(user_id=1, video_id=new, author_id=555, at=0), 2, Outbox())
    kind.handle(f, NewVideo(user_id=1, video_id=new, author_id=555, at=0), 3, Outbox())  # fan-out redelivered
    assert f.inbox == [(new, 555)]
    reloaded = feed_kind()
    reloaded.pool = CandidatePool([(ids(), 100, 50)])
    assert page(reloaded, f, limit=2).video_ids[0] == new


class TestCompactContainers:
    """The arrays that replace a feed's sets, dict and lists answer like them."""

    def test_id_set_is_a_set(self) -> None:
        from clipstream.actors.entities.compact import IdSet

        s, ref = IdSet([5, 3, 3, 2**62]), {5, 3, 2**62}
        for x in (9, 1, 5, -4, 2**62):
            s.add(x)
            ref.add(x)
        s.discard(3)
        ref.discard(3)
        s.discard(77)
        assert s == ref and list(s) == sorted(ref)
        assert all(x in s for x in ref) and 3 not in s and 4 not in s

    def test_id_map_is_a_dict(self) -> None:
        from clipstream.actors.entities.compact import IdMap

        m, ref = IdMap({7: 70, 2: 20}), {7: 70, 2: 20}
        m.set(5, 50)
        ref[5] = 50
        m.set(7, 71)
        ref[7] = 71
        m.remove(2)
        del ref[2]
        m.remove(99)
        assert m == ref and m.get(5) == 50 and m.get(2) is None
        assert 7 in m and 2 not in m and m.count_keys() == 2
        assert sorted(m.authors()) == sorted(ref.values())

    def test_pairs_keep_order_and_the_newest(self) -> None:
        from clipstream.actors.entities.compact import Pairs

        p = Pairs([(1, 10), (2, 20)])
        p.push(3, 30)
        assert p.has(2, 20) and not p.has(20, 3) and not p.has(2, 10)
        p.keep_last(2)
        assert p == [(2, 20), (3, 30)] and list(p.reversed_pairs()) == [(3, 30), (2, 20)]

    def test_a_grown_array_is_trimmed_to_its_items(self) -> None:
        import sys

        from clipstream.actors.entities.compact import IdMap, IdSet, Pairs, trimmed

        s = IdSet(range(0, 600, 2))
        exact = sys.getsizeof(s)
        assert trimmed(s) is s  # built exact: kept as it is
        s.add(7)
        assert sys.getsizeof(s) > exact + 8  # growing left spare room
        t = trimmed(s)
        assert type(t) is IdSet and t == s and 7 in t and sys.getsizeof(t) == exact + 8
        m = IdMap({1: 10})
        m.set(2, 20)
        assert trimmed(m) == m and type(trimmed(m)) is IdMap and trimmed(m).get(2) == 20
        p = Pairs([(1, 10)])
        p.push(2, 20)
        assert trimmed(p).pairs() == [(1, 10), (2, 20)] and type(trimmed(p)) is Pairs

    def test_a_served_page_leaves_no_spare_room_in_the_served_ids(self) -> None:
        import sys

        kind = feed_kind()
        kind.pool = CandidatePool([(ids(), 100 + n, n) for n in range(40)])
        f = UserFeed(1)
        page(kind, f, limit=10)
        page(kind, f, limit=10)
        assert len(f.served) == 20
        assert sys.getsizeof(f.served) == sys.getsizeof(type(f.served)()) + 20 * 8

    def test_pages_keep_the_newest(self) -> None:
        from clipstream.actors.entities.compact import Pages

        pages = Pages({1: [5, 6], 2: [7], 3: []}, keep=2)
        assert pages.numbers() == [2, 3] and pages.get(2) == [7] and pages.get(3) == [] and pages.get(1) is None
        pages.put(4, [8, 9], keep=2)
        assert pages.numbers() == [3, 4] and pages.get(4) == [8, 9]


def test_feed_state_survives_the_compact_forms() -> None:
    from clipstream.actors.entities.feed import build_feed

    f = build_feed(1, seq=9, next_page=3, inbox=[(11, 2)], served={4, 5}, pages={1: [4], 2: [5]},
                   liked={4: 2}, following={2})
    assert f.served == {4, 5} and f.following == {2} and f.liked == {4: 2} and f.inbox == [(11, 2)]
    assert f.pages.get(2) == [5]
    kind = feed_kind()
    kind.pool = CandidatePool([(ids(), 100, 50)])
    again = page(kind, f, at=2)
    assert again.video_ids == [5] and not again.video_ids == []


async def test_concurrent_first_loads_start_one_pool_refresher() -> None:
    import asyncio

    class Cache:
        calls = 0

        async def candidate_lists(self, fresh: int, popular: int) -> tuple[list[bytes], list[bytes]]:
            Cache.calls += 1
            await asyncio.sleep(0.01)
            return [], []

    kind = FeedKind(None, None, None, Cache(), subject_for=str, refresh_every=60)  # type: ignore[arg-type]

    await asyncio.gather(*(kind.load([]) for _ in range(32)))
    assert Cache.calls == 1
    assert kind._refresher is not None
    kind._refresher.cancel()


async def test_the_state_row_is_written_after_the_likes_it_covers() -> None:
    """A crash between the two writes must leave the stored sequence behind the stored likes."""
    import asyncio

    order: list[str] = []

    class Repo:
        def __init__(self, name: str, delay: float) -> None:
            self.name, self.delay = name, delay

        async def apply(self, changes) -> None:  # type: ignore[no-untyped-def]
            list(changes)
            await asyncio.sleep(self.delay)
            order.append(self.name)

        async def save(self, states, pages) -> None:  # type: ignore[no-untyped-def]
            order.append("state")

    kind = FeedKind(Repo("feeds", 0), Repo("likes", 0.02), Repo("follows", 0.01), None,  # type: ignore[arg-type]
                    subject_for=lambda m: "s")
    f = UserFeed(1)
    kind.handle(f, LikeRequest(user_id=1, video_id=10, author_id=2, like=True, at=0), 5, Outbox())
    await kind.flush([kind.snapshot(f)])
    assert order[-1] == "state" and set(order[:-1]) == {"likes", "follows"}


class _ListsCache:
    """The Redis side of a pool refresh: the newest list, and the most liked as id, count (one)."""

    def __init__(self) -> None:
        self.lists: tuple[list[bytes], list[bytes]] = ([b"5"], [b"6", b"3"])
        self.asked_tags: list[int] = []

    async def candidate_lists(self, fresh: int, popular: int) -> tuple[list[bytes], list[bytes]]:
        return self.lists

    async def candidates(self, fresh, popular, known_authors=None, lists=None):  # type: ignore[no-untyped-def]
        new, pop = lists
        return [(int(v), 100, 0) for v in new] + [(int(pop[0]), 100, int(pop[1]))]

    async def tags_of(self, video_ids):  # type: ignore[no-untyped-def]
        self.asked_tags = list(video_ids)
        return {v: (v * 10,) for v in video_ids if v == 7}


async def test_a_pool_is_rebuilt_only_when_its_lists_change() -> None:
    cache = _ListsCache()
    kind = FeedKind(None, None, None, cache, subject_for=str)  # type: ignore[arg-type]
    await kind.refresh()
    first = kind.pool
    assert first.version == 1 and sorted(first.ids) == [5, 6]
    await kind.refresh()
    assert kind.pool is first  # nothing changed: the same pool, and every feed's scan position holds
    cache.lists = ([b"5", b"7"], [b"6", b"4"])
    kind.shown = {5, 3, 99}
    await kind.refresh()
    assert kind.shown == {5}  # what the shard showed is kept while it is in the pool
    assert kind.pool.version == 2 and sorted(kind.pool.ids) == [5, 6, 7]
    assert cache.asked_tags == [7]  # only the new video's hashtags are read
    assert kind.pool.tags == {7: (70,)} and kind.pool.by_tag == {70: [7]}


async def test_like_counts_alone_rebuild_the_pool_at_most_every_rebuild_every() -> None:
    """A move of the most-liked list waits until the pool is ``rebuild_every`` old; a new video
    (the newest list) rebuilds it at once."""
    now = [100.0]
    cache = _ListsCache()
    kind = FeedKind(None, None, None, cache, subject_for=str, rebuild_every=10.0,  # type: ignore[arg-type]
                    clock=lambda: now[0])
    await kind.refresh()
    assert kind.pool.version == 1 and kind.pool.likes[6] == 3
    cache.lists = ([b"5"], [b"6", b"4"])  # a like
    now[0] += 9.0
    await kind.refresh()
    assert kind.pool.version == 1 and kind.pool.likes[6] == 3  # not yet
    now[0] += 1.0
    await kind.refresh()
    assert kind.pool.version == 2 and kind.pool.likes[6] == 4  # ten seconds on: the new count
    cache.lists = ([b"5", b"7"], [b"6", b"4"])  # an upload, a second later
    now[0] += 1.0
    await kind.refresh()
    assert kind.pool.version == 3 and 7 in kind.pool.ids


def test_a_resumed_scan_picks_what_a_full_scan_picks() -> None:
    """Pages picked with the scan resuming where the last one stopped equal pages picked by a full
    scan of the pool, page after page, with own videos and followed authors among the candidates."""
    from clipstream.actors.entities.feed import rank_page

    videos = [(ids(), author, likes) for author in range(100, 140) for likes in (0, 3, 30, 300)]
    pool = CandidatePool(videos, version=7)
    feed = UserFeed(100)  # an author: its own videos are candidates it must skip
    feed.following.add(120)
    resumed_pages = 0
    while True:
        full = msgspec.structs.replace(feed, scan_pool=-1, scan_from=0, served=type(feed.served)(feed.served))
        expected = rank_page(full, pool, 10)
        resumed_pages += feed.scan_pool == pool.version
        got = rank_page(feed, pool, 10)
        assert got == expected
        if not got:
            break
        feed.served.update(got)
    assert resumed_pages > 10
    assert feed.scan_from == len(pool.ids)


class TestPersonalFeed:
    """The profile, the sources and the page's diversity (the feed that learns)."""

    def setup_method(self) -> None:
        # 20 authors x 10 videos; author a's videos carry hashtag 1000 + a % 5 (5 hashtags, 40 videos each)
        self.videos = [(ids(), 100 + a, 5) for a in range(20) for _ in range(10)]
        self.tags = {v: (1000 + (a - 100) % 5,) for v, a, _ in self.videos}
        self.kind = feed_kind()
        self.kind.pool = CandidatePool(self.videos, tags=self.tags)

    def like(self, f: UserFeed, vid: int, seq: int, like: bool = True) -> None:
        author = self.kind.pool.authors[vid]
        tag = self.tags[vid][0]
        # the hashtags travel as text; the entity maps them to ids as the pool does
        msg = LikeRequest(user_id=f.key, video_id=vid, author_id=author, like=like, at=seq, hashtags=(f"t{tag}",))
        self.kind.handle(f, msg, seq, Outbox())

    def test_a_like_changes_the_next_page(self) -> None:
        from clipstream.storage.hashtags import tag_id

        tagged = {v: (tag_id(f"t{t}"),) for v, (t,) in self.tags.items()}
        self.kind.pool = CandidatePool(self.videos, tags=tagged)
        liker, other = UserFeed(1), UserFeed(2)
        first = page(self.kind, liker, limit=10).video_ids
        page(self.kind, other, limit=10)
        target = first[0]
        self.like(liker, target, 1)
        liked_tag = tagged[target][0]
        mine = page(self.kind, liker, limit=10).video_ids
        theirs = page(self.kind, other, limit=10).video_ids
        share = lambda vids: sum(tagged[v][0] == liked_tag for v in vids)  # noqa: E731
        # one video each of the hashtag's creators in its window (its TAG_DEPTH best and the unshown
        # of the TAG_DEEPER after them: all 4 of them)
        assert share(mine[:-1]) == 4
        assert share(mine) > share(theirs)
        assert any(self.kind.pool.authors[v] == self.kind.pool.authors[target] for v in mine)

    def test_a_page_caps_each_hashtag_and_author_while_it_can(self) -> None:
        from clipstream.storage.hashtags import tag_id

        # 12 of the 20 authors post #hot only, the other 8 a hashtag each
        text = {v: ("hot" if a < 112 else f"other{a}") for v, a, _ in self.videos}
        self.kind.pool = CandidatePool(self.videos, tags={v: (tag_id(t),) for v, t in text.items()})
        f = UserFeed(1)
        for seq, (vid, author, _) in enumerate([x for x in self.videos if x[1] < 103], start=1):
            self.kind.handle(f, LikeRequest(user_id=1, video_id=vid, author_id=author, like=True, at=seq,
                                            hashtags=("hot",)), seq, Outbox())
        for _ in range(3):
            vids = page(self.kind, f, limit=10).video_ids
            assert len({self.kind.pool.authors[v] for v in vids}) == 10
            # liked, and capped (the last slot is exploration's, outside the cap)
            assert sum(text[v] == "hot" for v in vids[:-1]) == TAG_CAP

    def test_a_video_the_shard_has_not_shown_goes_before_a_shown_one_as_good(self) -> None:
        # 20 authors' videos, all as good (5 likes, the same hashtag hour): the pool's order is the
        # ids', and a page takes one per author, so without novelty both pages start alike
        from clipstream.actors.entities.feed import W_NOVEL, rank_page

        assert W_NOVEL > 0
        pool = self.kind.pool
        first = rank_page(UserFeed(1), pool, 10, shown=set())
        assert rank_page(UserFeed(2), pool, 10, shown=set()) == first
        again = rank_page(UserFeed(2), pool, 10, shown=set(first))
        # the trending scan stops at the tenth author's first video, which both pages take
        assert len(set(again) - set(first)) == 9

    def test_past_a_hashtags_best_only_what_the_shard_never_showed_is_a_candidate(self) -> None:
        from clipstream.actors.entities.feed import S_HASHTAG, TAG_DEEPER, TAG_DEPTH, rank
        from clipstream.storage.hashtags import tag_id

        hot = tag_id("hot")
        n = TAG_DEPTH + TAG_DEEPER
        videos = [(ids(), 500 + a, 50) for a in range(n)]  # one per author, the newest the best
        pool = CandidatePool(videos, tags={v: (hot,) for v, _, _ in videos})
        best, deeper = pool.by_tag[hot][:TAG_DEPTH], pool.by_tag[hot][TAG_DEPTH:]
        f = UserFeed(1)
        f.profile = Profile.planted({hot: 1.0}, {9: 1.0})
        from_tag = lambda shown: {v for v, _, s in rank(msgspec.structs.replace(f), pool, n, None, shown)  # noqa: E731
                                  if s == S_HASHTAG}
        assert from_tag(set(deeper)) == set(best)  # the deeper ones shown: only the best
        assert from_tag(set(best)) == set(pool.by_tag[hot])  # unshown past the best: candidates too
        assert from_tag(None) == set(best)  # no shown set (a caller without one): the best only
        assert from_tag(set()) == set(pool.by_tag[hot])  # a shard that has shown nothing yet

    def test_the_kind_remembers_what_it_showed_while_it_is_in_the_pool(self) -> None:
        a = page(self.kind, UserFeed(1), limit=10).video_ids
        b = page(self.kind, UserFeed(2), limit=10).video_ids
        assert self.kind.shown == set(a) | set(b) and len(self.kind.shown) > 15

    def test_unlike_and_skip_turn_the_profile_against(self) -> None:
        f = UserFeed(1)
        vid = self.videos[0][0]
        self.like(f, vid, 1)
        after_like = f.profile.author_weights()[100]
        assert after_like > 0
        self.like(f, vid, 2, like=False)
        assert f.profile.author_weights()[100] < after_like * 0.7  # the unlike takes back most of it
        g = UserFeed(2)
        self.kind.handle(g, Watched(user_id=2, video_id=vid, author_id=100, watched_ms=300, duration_ms=15_000, at=5,
                                    hashtags=("cats",)), 1, Outbox())
        assert g.profile.author_weights()[100] < 0 and g.feedback_at == 5
        # the view of a liked video is not a second example: the like was
        before = f.profile.author_weights()[100]
        self.like(f, vid, 3)
        liked = f.profile.author_weights()[100]
        self.kind.handle(f, Watched(user_id=1, video_id=vid, author_id=100, watched_ms=300, duration_ms=15_000, at=6,
                                    hashtags=("cats",)), 4, Outbox())
        assert liked > before and f.profile.author_weights()[100] == liked

    def test_the_newest_unexposed_video_gets_the_exploration_slot(self) -> None:
        newcomer = ids()  # newest of all, no likes, an author nobody knows
        self.kind.pool = CandidatePool([*self.videos, (newcomer, 999, 0)], tags=self.tags)
        shown = 0
        for user in range(1, 30):
            if newcomer in page(self.kind, UserFeed(user), limit=10).video_ids:
                shown += 1
        assert shown == EXPOSURE_FLOOR  # then the slot goes to the next least-shown new video
        assert self.kind.exposure[newcomer] == EXPOSURE_FLOOR

    def test_impressions_and_likes_are_counted_per_source(self) -> None:
        f = UserFeed(1)
        vids = page(self.kind, f, limit=10).video_ids
        assert sum(self.kind.impressions) == 10
        self.like(f, vids[-1], 1)  # the exploration slot is last
        assert self.kind.source_likes[SOURCES.index("fresh")] == 1

    def test_counters_export_a_served_page_and_a_like_by_source(self) -> None:
        assert self.kind.counters()["impressions.hashtag"] == 0  # every source named before any page
        f = UserFeed(1)
        p = page(self.kind, f, limit=10)
        self.like(f, p.video_ids[-1], 1)  # the exploration slot is last
        c = self.kind.counters()
        assert sum(c[f"impressions.{s}"] for s in SOURCES) == 10 and c["impressions.fresh"] == 1
        assert c["likes.fresh"] == 1 and sum(c[f"likes.{s}"] for s in SOURCES) == 1
        # 200 videos: all are among the pool's newest, so the whole page counts into the exposure
        assert c["new_video_impressions"] == 10 == sum(self.kind.exposure.values())
        assert c["new_videos_exposed"] == 10 and c["pool_refresh_errors"] == 0
        page(self.kind, UserFeed(2), limit=10)
        assert self.kind.counters()["new_video_impressions"] == 20

    def test_only_the_pool_newest_count_as_new_video_impressions(self) -> None:
        # newer than setup's videos and the whole fresh window, but unliked: the pages take setup's
        newer = [(ids(), 200 + a, 0) for a in range(FRESH_WINDOW)]
        self.kind.pool = CandidatePool([*self.videos, *newer], tags=self.tags)
        for user in range(1, 6):
            page(self.kind, UserFeed(user), limit=10)
        c = self.kind.counters()
        assert c["new_video_impressions"] == sum(self.kind.exposure.values())
        assert c["new_video_impressions"] < sum(c[f"impressions.{s}"] for s in SOURCES) == 50

    def test_flags_tell_liked_and_followed(self) -> None:
        f = UserFeed(1)
        self.kind.handle(f, Follow(user_id=1, author_id=105, follow=True, at=0), 1, Outbox())
        p = page(self.kind, f, limit=20)
        by_author = {self.kind.pool.authors[v]: flag for v, flag in zip(p.video_ids, p.flags)}
        assert by_author[105] == 2 and all(flag == 0 for a, flag in by_author.items() if a != 105)

    def test_the_profile_is_flushed_and_rebuilt(self) -> None:
        f = UserFeed(1)
        self.like(f, self.videos[0][0], 1)
        snap = self.kind.snapshot(f)
        assert snap.state is not None
        stored = build_feed(1, 1, 0, [], set(), {}, {self.videos[0][0]: 100}, set(), snap.state.profile)
        assert stored.profile.tag_weights() == f.profile.tag_weights()
        # never stored (a feed of before profiles): rebuilt from its likes and follows
        rebuilt = build_feed(1, 1, 0, [], set(), {}, {self.videos[0][0]: 100}, {105}, None)
        assert rebuilt.profile.top_authors(2) == [105, 100]

    def test_a_feed_with_its_profile_stays_under_6_kb(self) -> None:
        f = UserFeed(1)
        for seq in range(1, 200):
            vid, author, _ = self.videos[seq % len(self.videos)]
            self.kind.handle(f, LikeRequest(user_id=1, video_id=vid, author_id=author, like=True, at=seq,
                                            hashtags=tuple(f"h{seq % 50 + i}" for i in range(3))), seq, Outbox())
        assert len(f.profile.tags) == 32
        assert f.profile.size() < 1300


def _tagged_pool() -> tuple[list[tuple[int, int, int]], dict[int, tuple[int, ...]], CandidatePool]:
    """12 hashtags, tag k on (12 - k) * 4 videos (popularity by k), each video of its own author
    and with two hashtags."""
    items, tags, author = [], {}, 100
    for k in range(12):
        for n in range((12 - k) * 4):
            vid = ids()
            author += 1
            items.append((vid, author, 10 + n))
            tags[vid] = (k, (k + 1 + n) % 12)
    return items, tags, CandidatePool(items, version=1, tags=tags)


def test_a_new_feed_first_explores_popular_hashtags_then_after_an_unliked_page_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "ONBOARD_PAGES", 2)
    monkeypatch.setattr(feed_module, "REEXPLORE_AFTER", 10)
    monkeypatch.setattr(feed_module, "REEXPLORE_SLOTS", 5)
    items, tags, pool = _tagged_pool()
    f = UserFeed(1)
    seen: set[int] = set()
    for p in range(2):
        picked = feed_module.rank(f, pool, 10, {}, set())
        vids = [v for v, _, _ in picked]
        assert len(vids) == 10 and not seen & set(vids) and len({pool.authors[v] for v in vids}) == 10
        # (each hashtag is worth showing 3 times: past that, a place is ranked as usual)
        assert sum(s == feed_module.S_EXPLORE for _, _, s in picked) >= (9 if p == 0 else 6)
        seen.update(vids)
        f.served.update(vids)
        f.next_page += 1
    # two pages showed every hashtag, the popular ones more than once
    shown = [t for v in seen for t in tags[v]]
    assert set(shown) == set(range(12)) and shown.count(0) >= 2
    # past onboarding: a page ranked as usual, then half a page of exploration after 10 unliked
    f.profile = Profile.planted({0: 2.0})
    f.liked.set(items[0][0], items[0][1])
    unliked = [v for v, _, _ in items if tags[v][0] == 0 and v not in seen][1:11]
    f.recent = array("q", unliked)
    assert not any(s == feed_module.S_EXPLORE for _, _, s in feed_module.rank(f, pool, 10, {}, set()))
    f.next_page += 2  # (the window must be past onboarding's pages)
    picked = feed_module.rank(f, pool, 10, {}, set())
    assert sum(s == feed_module.S_EXPLORE for _, _, s in picked) == 5
    # (chosen for the hashtags the profile does not hold: each carries one besides the liked one)
    assert all(set(tags[v]) - {0} for v, _, s in picked if s == feed_module.S_EXPLORE)
    assert sum(0 not in tags[v] for v, _, s in picked if s == feed_module.S_EXPLORE) >= 3
    f.recent = array("q", [items[0][0]] + unliked[:9])
    assert all(s != feed_module.S_EXPLORE for _, _, s in feed_module.rank(f, pool, 10, {}, set()))


def test_onboarding_after_a_like_ranks_most_of_the_page_first_and_keeps_followed_creators(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "ONBOARD_PAGES", 4)
    monkeypatch.setattr(feed_module, "ONBOARD_EXPLOIT", 0.6)
    items, tags, pool = _tagged_pool()
    f = UserFeed(1)
    f.next_page = 1
    f.profile = Profile.planted({5: 2.0})  # liked on the first page: hashtag 5
    picked = feed_module.rank(f, pool, 10)  # (no exposure: no slot for new uploads)
    sources = [s for _, _, s in picked]
    # 6 of 10 (0.6, rounded up) ranked as usual and first, so the like shows at the top; 4 explore
    assert feed_module.S_EXPLORE not in sources[:6] and sources[6:] == [feed_module.S_EXPLORE] * 4
    assert sum(5 in tags[v] for v, _, _ in picked[:6]) >= 4  # (5 here; one trending video may rank in)
    # a page of 5 (the watch page asks 5 at a time): 3 ranked, 2 explored
    assert [s == feed_module.S_EXPLORE for _, _, s in feed_module.rank(f, pool, 5)] == [False] * 3 + [True] * 2
    # a followed creator's new videos are not displaced by exploration, even on the first page
    g = UserFeed(2)
    followed = [(ids(), 900 + i) for i in range(3)]
    pool2 = CandidatePool(items + [(v, a, 0) for v, a in followed], version=2,
                          tags={**tags, **{v: (11,) for v, _ in followed}})
    for v, a in followed:
        g.following.add(a)
        g.inbox.push(v, a)
    picked = feed_module.rank(g, pool2, 10)
    assert {v for v, _ in followed} <= {v for v, _, _ in picked}
    assert sum(s == feed_module.S_EXPLORE for _, _, s in picked) == 7
