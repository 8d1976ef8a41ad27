"""The per-worker feed item cache of ``Cards.items`` (pure: a dict stands in for Redis)."""

from __future__ import annotations

import time

import pytest

from clipstream.http.cards import Cards, MediaUrls
from clipstream.storage.models import VideoCard


class FakeCache:
    """Cards and counts in a dict; counts the MGETs it answers."""

    def __init__(self) -> None:
        self.cards: dict[int, VideoCard] = {}
        self.likes: dict[int, int] = {}
        self.mgets: list[list[int]] = []

    async def cards_and_likes(self, ids):
        self.mgets.append(list(ids))
        return [(self.cards.get(v), self.likes.get(v)) for v in ids]


class NoVideos:
    """Scylla knows no other video either (the fallback for a card Redis lacks)."""

    async def get_many(self, ids):
        return {}


class FakeObjects:
    def media_url(self, key: str) -> str:
        return f"http://media/{key}"


def _card(vid: int) -> VideoCard:
    return VideoCard(vid, 1, "ann", f"{vid}.mp4", f"{vid}.jpg", 5.0, 1_700_000_000_000)


@pytest.fixture
def cache() -> FakeCache:
    c = FakeCache()
    for vid in (1, 2, 3):
        c.cards[vid], c.likes[vid] = _card(vid), vid * 10
    return c


def _cards(cache: FakeCache, ttl: float) -> Cards:
    return Cards(cache, NoVideos(), None, None, MediaUrls(FakeObjects(), 60), item_ttl=ttl)  # type: ignore[arg-type]


async def test_a_second_page_within_the_ttl_reads_only_what_it_lacks(cache: FakeCache) -> None:
    cards = _cards(cache, ttl=60)
    first = await cards.items([1, 2])
    cache.likes[1] = 99  # not seen until the item expires: counts may lag by the TTL
    second = await cards.items([2, 1, 3])
    assert cache.mgets == [[1, 2], [3]]
    assert [i.video_id for i in second] == ["2", "1", "3"]
    assert second[1] == first[0] and second[1].like_count == 10


async def test_expired_items_are_read_again(cache: FakeCache, monkeypatch: pytest.MonkeyPatch) -> None:
    cards = _cards(cache, ttl=1.0)
    await cards.items([1])
    cache.likes[1] = 99
    later = time.monotonic() + 2
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert (await cards.items([1]))[0].like_count == 99
    assert len(cache.mgets) == 2


async def test_ttl_zero_keeps_nothing_and_unservable_videos_are_dropped(cache: FakeCache) -> None:
    cards = _cards(cache, ttl=0)
    cache.likes[4] = 0  # a count but no card: deleted or not ready
    assert [i.video_id for i in await cards.items([4, 1])] == ["1"]
    await cards.items([1])
    assert cache.mgets == [[4, 1], [1]]


async def test_requests_of_one_loop_turn_share_one_mget(cache: FakeCache) -> None:
    import asyncio

    cards = _cards(cache, ttl=0)
    pages = await asyncio.gather(cards.items([1, 2]), cards.items([2, 3]), cards.items([3]))
    assert cache.mgets == [[1, 2, 3]]
    assert [[i.video_id for i in p] for p in pages] == [["1", "2"], ["2", "3"], ["3"]]
    await cards.items([1])  # a later turn: a batch of its own
    assert cache.mgets == [[1, 2, 3], [1]]


async def test_a_failed_mget_fails_every_request_of_its_batch_and_a_leaver_cancels_nobody(cache: FakeCache) -> None:
    import asyncio

    class Down(FakeCache):
        async def cards_and_likes(self, ids):
            await asyncio.sleep(0.01)
            raise ConnectionError("redis is down")

    cards = _cards(Down(), ttl=0)
    results = await asyncio.gather(cards.items([1]), cards.items([2]), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]

    slow = _cards(cache, ttl=0)
    leaver, stayer = asyncio.ensure_future(slow.items([1])), asyncio.ensure_future(slow.items([2]))
    await asyncio.sleep(0)  # both joined the batch
    leaver.cancel()
    assert [i.video_id for i in await stayer] == ["2"]


async def test_cards_for_likes_of_one_loop_turn_share_one_mget(cache: FakeCache) -> None:
    import asyncio

    cards = _cards(cache, ttl=0)
    got = await asyncio.gather(cards.card(1), cards.card(3), cards.card(1))
    assert cache.mgets == [[1, 3]]
    assert [c.video_id for c in got] == [1, 3, 1]
