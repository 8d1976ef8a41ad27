"""The interest profile of a feed entity (clipstream.actors.entities.profile)."""

from __future__ import annotations

import pytest

from clipstream.actors.entities.profile import (BIAS0, CAP, FULL_WATCH, SHRINK, SKIP, TOP_K, Profile,
                                                watch_signal)


class TestSignals:
    def test_watch_signal(self) -> None:
        assert watch_signal(9_500, 10_000) == FULL_WATCH
        assert watch_signal(500, 10_000) == SKIP
        assert watch_signal(5_000, 10_000) == 0.0
        assert watch_signal(5_000, 0) == 0.0

    def test_a_view_to_the_end_teaches_less_against_than_a_skip(self) -> None:
        full, skipped = Profile(), Profile()
        full.viewed(7, [1], 9_500, 10_000)
        skipped.viewed(7, [1], 500, 10_000)
        assert skipped.tag_weights()[1] < 0 and full.tag_weights()[1] > skipped.tag_weights()[1]

    def test_top_lists_keep_only_positive_weights(self) -> None:
        p = Profile()
        p.learn(7, [1], 0.0)
        assert p.top_tags(5) == [] and p.top_authors(5) == []
        assert p.tag_weights()[1] < 0  # the skip is remembered

    def test_weights_are_capped(self) -> None:
        p = Profile.planted({1: CAP}, {7: CAP})
        for _ in range(100):
            p.learn(7, [1], 1.0)
        assert p.author_weights()[7] <= CAP and p.tag_weights()[1] <= CAP

    def test_planted_holds_the_weights_given(self) -> None:
        p = Profile.planted({1: 2.0, 2: -0.5}, {7: 1.5})
        assert p.tag_weights() == {1: 2.0, 2: -0.5} and p.author_weights() == {7: 1.5}
        assert p.top_tags(5) == [1] and p.bias == BIAS0


class TestBounds:
    def test_at_most_top_k_and_the_weakest_goes(self) -> None:
        p = Profile()
        for a in range(TOP_K):
            p.learn(a + 1, [], 1.0)  # author 1 has shrunk most
        p.learn(1000, [], 1.0)
        weights = p.author_weights()
        assert len(weights) == TOP_K and 1000 in weights and 1 not in weights

    def test_a_full_profile_is_small(self) -> None:
        p = Profile()
        for a in range(100):
            p.learn(a + 1, [a * 10 + i for i in range(3)], 1.0)
        assert len(p.authors) == len(p.tags) == TOP_K
        assert p.size() < 1300  # the 6 KB feed budget has ~1.9 KB to spare over 4,068


class TestStorage:
    def test_round_trip(self) -> None:
        p = Profile()
        p.learn(7, [1, 2], 1.0)
        p.learn(8, [2**62], 0.0)
        q = Profile.decode(p.encode())
        assert q.author_weights() == p.author_weights() and q.tag_weights() == p.tag_weights()

    def test_never_stored_is_empty(self) -> None:
        assert not Profile.decode(None) and not Profile.decode(b"")

    def test_a_feed_never_stored_learns_its_likes_and_follows_as_the_entity_does(self) -> None:
        # One update rule: the rebuild of a profile never stored is the entity's own learning of
        # each like and follow (it once summed them with decay, a second model in the same weights).
        from clipstream.actors.entities.feed import build_feed

        feed = build_feed(1, 0, 0, [], set(), {}, {100: 7, 101: 8}, {9}, None)
        expected = Profile()
        for author in (7, 8, 9):
            expected.learn(author, (), 1.0)
        assert feed.profile.author_weights() == pytest.approx(expected.author_weights())
        assert feed.profile.bias == pytest.approx(expected.bias) and feed.profile.top_authors(3) == [9, 8, 7]


class TestLearn:
    def test_a_like_raises_and_a_seen_not_liked_lowers(self) -> None:
        p = Profile()
        p.learn(7, [1, 2], 1.0)
        assert p.author_weights()[7] > 0 and p.tag_weights()[1] > 0
        p.learn(8, [3], 0.0)
        assert p.author_weights()[8] < 0 and p.tag_weights()[3] < 0

    def test_the_hashtag_that_explains_the_likes_wins_over_its_companion(self) -> None:
        # Liked: videos with hashtags {1, 2} (a creator's niche: 1 the viewer's, 2 its partner);
        # seen and not liked: videos of hashtag 2 alone. Decayed sums raised 1 and 2 alike by the
        # likes; the regression puts 1 first and turns 2 against.
        p = Profile()
        for i in range(20):
            p.learn(100 + i, [1, 2], 1.0)
            p.learn(200 + i, [2], 0.0)
            p.learn(300 + i, [1], 1.0)
        w = p.tag_weights()
        assert w[1] > 0 and w[1] > 3 * abs(w[2])
        assert p.top_tags(1) == [1]

    def test_old_evidence_fades_by_the_shrink(self) -> None:
        p = Profile()
        p.learn(7, [1], 1.0)
        first = p.tag_weights()[1]
        for _ in range(50):
            p.learn(8, [2], 1.0)
        assert p.tag_weights()[1] == pytest.approx(first * SHRINK**50, rel=1e-4)

    def test_the_bias_is_stored_and_an_old_profile_without_it_loads(self) -> None:
        import msgspec

        p = Profile()
        for _ in range(5):
            p.learn(7, [1], 0.0)
        q = Profile.decode(p.encode())
        assert q.bias == pytest.approx(p.bias) and q.bias < BIAS0
        old = msgspec.msgpack.encode(([1], [0.5], [7], [1.0]))  # stored before the bias existed
        r = Profile.decode(old)
        assert r.tag_weights() == {1: 0.5} and r.bias == BIAS0
