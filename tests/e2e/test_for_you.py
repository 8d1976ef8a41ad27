"""The For You feed learns within a swipe: through the public API, against the running system."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from clipstream.cli.apiclient import ApiClient, ApiError
from clipstream.http.bootstrap import open_services
from clipstream.storage.hashtags import parse_hashtags
from clipstream.storage.ids import new_id
from clipstream.storage.models import User, Video, VideoCard
from clipstream.storage.repos import now_ms

pytestmark = pytest.mark.integration

TAGS = 4
AUTHORS = 40


async def seed_videos(settings, suffix: int) -> dict[str, str]:
    """40 ready videos of 40 creators, video i tagged ``#k<suffix>_<i % 4>``, written as the media
    worker leaves them (no transcoding: the pipeline has tests of its own). Video id -> its tag."""
    tagged: dict[str, str] = {}
    async with open_services(settings) as svc:
        for i in range(AUTHORS):
            vid, author, tag = new_id(), new_id(), f"k{suffix}_{i % TAGS}"
            await svc.users.create(User(user_id=author, username=f"m{suffix}_{i}", email=f"m{suffix}_{i}@example.test",
                                        password_hash="-", created_at=now_ms()))
            caption = f"clip {i} #{tag}"
            video = Video(video_id=vid, author_id=author, status="uploading", file_size=100, file_format="mp4",
                          upload_key=f"{author}/{vid}.mp4", created_at=now_ms(), caption=caption,
                          hashtags=parse_hashtags(caption))
            await svc.videos.create(video)
            await svc.videos.mark_ready(video, f"{author}/{vid}/v.mp4", f"{author}/{vid}/t.jpg", 8.0, 360, 640)
            ready = msgspec.structs.replace(video, status="ready", media_key=f"{author}/{vid}/v.mp4",
                                            thumb_key=f"{author}/{vid}/t.jpg", duration=8.0)
            await svc.cache.publish_video(VideoCard.of(ready, f"m{suffix}_{i}"))
            tagged[str(vid)] = tag
    return tagged


async def test_a_page_asked_with_read_after_takes_the_like_in(system, migrated) -> None:
    """Read your own writes: the page asked at once, with no wait on the client's side, with a
    like's ``read_after`` says it took the like in, every time (without it, the page may be
    answered before the feed shard has fetched the like; checked: with the shard's wait turned
    off this test fails)."""
    suffix = new_id() % 10**8
    await seed_videos(migrated, suffix)
    viewer = await ApiClient(system).signup(f"raw{suffix}")
    try:
        videos = (await viewer.feed(limit=20))["videos"]
        assert len(videos) >= 10
        for video in videos[:10]:
            liked_at = now_ms()
            answer = await viewer.like(video["video_id"])
            assert answer["read_after"].isdigit()
            page = await viewer.feed(limit=1, after=answer["read_after"])
            assert page["feedback_at"] >= liked_at
        followed_at = now_ms()
        followed = await viewer.follow(videos[10]["author_id"])
        assert (await viewer.feed(limit=1, after=followed["read_after"]))["feedback_at"] >= followed_at
        with pytest.raises(ApiError) as bad:
            await viewer.feed(limit=1, after="01")
        assert bad.value.status == 400 and "after" in str(bad.value)
    finally:
        await viewer.close()


async def test_a_held_page_does_not_hold_up_the_others(system, migrated) -> None:
    """A page held for its ``after`` (a token no write of this user reached: held its whole
    second, then answered) does not hold up the other queries of its partition, which the shard
    receives one at a time from the same subscription."""
    suffix = new_id() % 10**8
    await seed_videos(migrated, suffix)
    viewer = await ApiClient(system).signup(f"hld{suffix}")
    try:
        await viewer.feed(limit=2)  # the entity is in memory
        held = asyncio.create_task(viewer.feed(limit=2, after="999999999999999999"))
        await asyncio.sleep(0.1)
        assert (await viewer.feed(limit=2))["videos"]
        assert not held.done()  # answered while the held page was still waiting
        assert (await held)["videos"]  # and the held one is answered, late, not refused
    finally:
        await viewer.close()


async def test_a_like_changes_the_next_page(system, migrated) -> None:
    suffix = new_id() % 10**8
    tagged = await seed_videos(migrated, suffix)
    liker = await ApiClient(system).signup(f"liz{suffix}")
    control = await ApiClient(system).signup(f"con{suffix}")

    async def in_the_pools() -> bool:  # the shards' pools refresh from Redis once a second
        probe = await ApiClient(system).signup(f"p{new_id() % 10**10}")
        try:
            return any(v["video_id"] in tagged for v in (await probe.feed(limit=10))["videos"])
        finally:
            await probe.close()

    for _ in range(40):
        if await in_the_pools():
            break
        await asyncio.sleep(0.5)

    first = (await liker.feed(limit=5))["videos"]
    await control.feed(limit=5)
    target = next(v for v in first if v["video_id"] in tagged)
    assert target["hashtags"] == [tagged[target["video_id"]]] and target["liked"] is False
    liked_at = now_ms()
    await liker.like(target["video_id"])
    # The like is applied by the liker's entity before its delta reaches the video's counter, so
    # once the count shows it the next page was ranked with it.
    for _ in range(100):
        if (await liker.video(target["video_id"]))["like_count"] == 1:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the like was never counted")
    tag = tagged[target["video_id"]]
    page = await liker.feed(limit=5)
    assert page["feedback_at"] >= liked_at  # the page says it took the like in
    mine = page["videos"]
    theirs = (await control.feed(limit=5))["videos"]
    mine_share = sum(tagged.get(v["video_id"]) == tag for v in mine)
    theirs_share = sum(tagged.get(v["video_id"]) == tag for v in theirs)
    assert mine_share >= 3, (mine, tag)  # the page's cap for one hashtag, filled
    assert theirs_share <= 2, (theirs, tag)  # in upload order, one video in four carries it
    await liker.close()
    await control.close()


async def test_views_with_watch_time_and_bad_watch_time(system, migrated) -> None:
    suffix = new_id() % 10**8
    tagged = await seed_videos(migrated, suffix)
    viewer = await ApiClient(system).signup(f"vic{suffix}")
    vid = next(iter(tagged))
    watched = await viewer.call("POST", f"/v1/videos/{vid}/view", {"watched_ms": 7900})
    assert watched["success"] is True and watched["read_after"].isdigit()  # it reaches the feed: a token
    # no body: a plain view, counted, not for the feed (no token)
    assert await viewer.call("POST", f"/v1/videos/{vid}/view") == {"success": True, "read_after": None}
    for bad in ({"watched_ms": -1}, {"watched_ms": "long"}, {"watched_ms": 10**9}, {"seconds": 3}):
        with pytest.raises(ApiError) as refused:
            await viewer.call("POST", f"/v1/videos/{vid}/view", bad)
        assert refused.value.status == 400, (bad, refused.value.body)
    await viewer.close()
