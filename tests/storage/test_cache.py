"""Redis round trips of the derived data, against the real Redis."""

from __future__ import annotations

import pytest

from clipstream.storage.cache import Cache
from clipstream.storage.ids import new_id
from clipstream.storage.models import VideoCard

pytestmark = pytest.mark.integration


async def test_cards_counts_and_candidates(redis) -> None:
    cache = Cache(redis, namespace=f"t{new_id()}")
    a, b = new_id(), new_id()
    card = VideoCard(a, 11, "alice", "videos/a.mp4", "thumbs/a.jpg", 5.0, 1)
    await cache.publish_video(card)
    await cache.publish_video(VideoCard(b, 12, "bob", "videos/b.mp4", "thumbs/b.jpg", 3.0, 2))
    await cache.put_likes([(b, 4)])
    got = await cache.cards_and_likes([a, b, new_id()])
    assert got[0] == (card, 0) and got[1][1] == 4 and got[2] == (None, None)
    candidates = await cache.candidates(fresh=10, popular=10)
    assert sorted(candidates) == sorted([(a, 11, 0), (b, 12, 4)])
    # authors already known are not asked again: a stale hash entry does not show through
    await redis.hset(f"{cache.ns}:authors", str(a), 99)
    again = await cache.candidates(fresh=10, popular=10, known_authors={a: 11})
    assert sorted(again) == sorted([(a, 11, 0), (b, 12, 4)])
    await cache.unpublish_video(a)
    assert (await cache.cards_and_likes([a]))[0][0] is None
    assert [c[0] for c in await cache.candidates(10, 10)] == [b]
