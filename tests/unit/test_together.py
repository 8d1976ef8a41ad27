"""Liked together: the item-to-item source from the like stream, and the quality-weighted score."""

from __future__ import annotations

from array import array

import msgspec
import pytest

from clipstream.actors.entities.feed import S_TOGETHER, SOURCES, CandidatePool, FeedKind, UserFeed, rank
from clipstream.actors.entities.profile import Profile
from clipstream.actors.entities.together import NEIGHBOURS, LikedTogether
from clipstream.actors.entity import Outbox
from clipstream.bus.messages import LikeRequest
from clipstream.bus.rpc import FeedQuery
from clipstream.storage.ids import IdGenerator

ids = IdGenerator(salt=7)


# These tests rank a profile as it is (tests/unit/conftest.py).
pytestmark = pytest.mark.usefixtures("no_onboarding")


class TestLikedTogether:
    def test_co_likes_make_neighbours_both_ways(self) -> None:
        t = LikedTogether()
        t.observe(1, [])
        t.observe(2, [1])
        t.observe(3, [1, 2])
        assert dict(t.neighbours([1], 5)).keys() == {2, 3}
        assert dict(t.neighbours([3], 5)).keys() == {1, 2}
        assert t.neighbours([4], 5) == [] and t.pairs == 3

    def test_a_video_everyone_likes_is_not_everyones_first_neighbour(self) -> None:
        t = LikedTogether()
        for _ in range(50):  # video 9 liked by everybody, beside all sorts
            t.observe(9, [])
        for other in range(100, 110):
            t.observe(other, [9])
        t.observe(2, [1])  # 1 and 2: liked together by the one user who liked either
        t.observe(9, [1])
        got = t.neighbours([1], 5)
        assert got[0] == (2, 1.0) and dict(got)[9] < 0.5

    def test_weights_are_summed_over_seeds_and_skip_is_honoured(self) -> None:
        t = LikedTogether()
        t.observe(10, [1])
        t.observe(11, [1, 2])
        assert t.neighbours([1, 2], 5)[0][0] == 11
        assert [v for v, _ in t.neighbours([1, 2], 5, skip={11})] == [10]

    def test_bounded_per_video_and_by_the_pool(self) -> None:
        t = LikedTogether()
        for other in range(1000, 1000 + 5 * NEIGHBOURS):
            t.observe(other, [1])
        assert len(t.links[1]) < 2 * NEIGHBOURS
        t.keep_only({1: 5, 1000: 5})  # the pool's authors map, as the feed kind passes it
        assert set(t.links) == {1, 1000} and set(t.likes) <= {1, 1000}

    def test_unlike_lowers_the_norm(self) -> None:
        t = LikedTogether()
        t.observe(1, [])
        t.observe(1, [])
        t.unobserve(1)
        assert t.likes[1] == 1
        t.unobserve(1)
        assert 1 not in t.likes


def _kind() -> FeedKind:
    return FeedKind(None, None, None, None, subject_for=lambda m: "s")  # type: ignore[arg-type]


def test_a_like_makes_its_co_liked_videos_candidates_of_the_next_page() -> None:
    # 40 authors, one video each, all alike; user 1 likes a and b on one page: b is a's neighbour.
    # User 2 likes a: b comes from the together source on user 2's next page.
    videos = [(ids(), 100 + a, 5) for a in range(40)]
    kind = _kind()
    kind.pool = CandidatePool(videos)
    authors = kind.pool.authors
    query = msgspec.json.encode(FeedQuery(limit=10))

    def like(f: UserFeed, vid: int, seq: int) -> None:
        kind.handle(f, LikeRequest(user_id=f.key, video_id=vid, author_id=authors[vid], like=True, at=seq), seq,
                    Outbox())

    u1, u2 = UserFeed(1), UserFeed(2)
    first = msgspec.json.decode(kind.query(u1, query)[0])["video_ids"]
    a, b = first[0], first[5]
    like(u1, a, 1)
    like(u1, b, 2)
    assert dict(kind.together.neighbours([a], 5)) == {b: 1.0}
    # user 2 is served a (and not b: b must come later, from the source)
    u2.served.update(v for v in first if v != b)
    u2.recent, u2.recent_src = array("q", [a]), bytes([0])
    like(u2, a, 1)
    picked = rank(u2, kind.pool, 10, None, kind.shown, kind.together)  # no exploration slot to take b
    assert (b, authors[b], S_TOGETHER) in picked
    assert "impressions.together" in kind.counters() and SOURCES[S_TOGETHER] == "together"


def test_a_well_liked_match_beats_a_closer_match_nobody_likes() -> None:
    # The viewer likes #hot and #cold alike. A video of both with 3 likes is the closer match, one
    # of #hot alone with 400 likes the one they are likelier to like: affinity times quality puts
    # it first, where adding them (W_QUALITY 0) put the closer match first.
    from clipstream.storage.hashtags import tag_id

    hot, cold = tag_id("hot"), tag_id("cold")
    good, poor = ids(), ids()
    pool = CandidatePool([(good, 500, 400), (poor, 501, 3)], tags={good: (hot,), poor: (hot, cold)})
    f = UserFeed(1)
    f.profile = Profile.planted({hot: 4.0 / 2**0.5, cold: 4.0 / 2**0.5}, {9: 4.0})
    assert [v for v, _, _ in rank(f, pool, 2)] == [good, poor]


def test_a_faded_profile_no_longer_outranks_what_everyone_likes() -> None:
    # A profile whose only weight decayed to 0.05 (a taste that moved): with the norm floor its
    # hashtag no longer beats a much better liked video without it; a strong one still does.
    from clipstream.storage.hashtags import tag_id

    old = tag_id("old")
    mine, loved = ids(), ids()
    pool = CandidatePool([(mine, 500, 100), (loved, 501, 900)], tags={mine: (old,)})
    faded, strong = UserFeed(1), UserFeed(2)
    faded.profile = Profile.planted({old: 0.05}, {9: 0.05})
    strong.profile = Profile.planted({old: 3.0}, {9: 3.0})
    assert [v for v, _, _ in rank(faded, pool, 2)][0] == loved
    assert [v for v, _, _ in rank(strong, pool, 2)][0] == mine


def test_a_new_video_another_source_proposed_still_gets_the_exploration_slot() -> None:
    # A new upload of the viewer's hashtag is a hashtag candidate too, scored below the hashtag's
    # liked videos and capped off the page by them: it must still get the exploration slot (it
    # used to be skipped as "seen", so a new video of a popular hashtag waited for its views).
    from clipstream.actors.entities.feed import FRESH_WINDOW, S_FRESH, TAG_CAP
    from clipstream.storage.hashtags import tag_id

    hot = tag_id("hot")
    fillers = [(ids(), 1000 + i, 200) for i in range(FRESH_WINDOW)]
    liked = [(ids(), 5000 + i, 200) for i in range(TAG_CAP + 10)]
    new = ids()
    pool = CandidatePool([*fillers, *liked, (new, 9000, 0)], tags={v: (hot,) for v, _, _ in [*liked, (new, 0, 0)]})
    f = UserFeed(1)
    f.profile = Profile.planted({hot: 4.0}, {9: 4.0})
    picked = rank(f, pool, 10, {}, set())
    assert (new, 9000, S_FRESH) in picked
    assert len({a for _, a, _ in picked}) == 10
