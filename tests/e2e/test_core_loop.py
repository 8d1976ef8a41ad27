"""The seed's core loops end to end, through the public HTTP API and plain HTTP PUTs only."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from clipstream.cli.apiclient import ApiClient, ApiError
from clipstream.media.testsrc import make_test_video
from clipstream.storage.ids import new_id

pytestmark = pytest.mark.integration


async def eventually(check, timeout: float = 20.0, every: float = 0.2):
    """Poll an async check until it returns a truthy value (eventual consistency is the contract)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(every)


async def all_feed_items(client: ApiClient, limit: int = 10) -> list[dict]:
    items, cursor = [], None
    for _ in range(500):
        page = await client.feed(limit=limit, cursor=cursor)
        items.extend(page["videos"])
        cursor = page["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("the feed never ended")


async def test_upload_feed_like_delete(system, tmp_path) -> None:
    suffix = new_id() % 10**8
    alice = await ApiClient(system).signup(f"alice{suffix}")
    bob = await ApiClient(system).signup(f"bob{suffix}")
    clip = tmp_path / "clip.mp4"
    await make_test_video(clip, seconds=5.0, width=720, height=1280)

    video_id = await alice.upload(clip)
    video = await alice.wait_processed(video_id, timeout=120)
    assert video["status"] == "ready", video
    async with httpx.AsyncClient() as plain:
        thumb = await plain.get(video["thumbnail_url"])
        media = await plain.get(video["video_url"])
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    assert media.status_code == 200 and media.content[4:8] == b"ftyp"

    async def in_bobs_feed() -> dict | None:
        return next((v for v in await all_feed_items(bob) if v["video_id"] == video_id), None)

    item = await eventually(in_bobs_feed)
    assert item is not None, "the ready video never reached another user's feed"
    assert item["author_id"] == alice.user_id and item["username"] == f"alice{suffix}"
    assert item["like_count"] == 0

    await bob.like(video_id)
    await bob.like(video_id)

    async def likes_are(n: int):
        return (await bob.video(video_id))["like_count"] == n

    assert await eventually(lambda: likes_are(1))
    await asyncio.sleep(1.5)
    assert (await bob.video(video_id))["like_count"] == 1  # the second like changed nothing
    await bob.like(video_id, "unlike")
    assert await eventually(lambda: likes_are(0))

    await alice.call("DELETE", f"/v1/videos/{video_id}")
    with pytest.raises(ApiError) as gone:
        await bob.like(video_id)
    assert gone.value.status == 404
    carol = await ApiClient(system).signup(f"carol{suffix}")
    assert video_id not in {v["video_id"] for v in await all_feed_items(carol)}
    for c in (alice, bob, carol):
        await c.close()


async def test_paging_to_the_end_never_repeats(system, tmp_path) -> None:
    suffix = new_id() % 10**8
    creator = await ApiClient(system).signup(f"dave{suffix}")
    ids = []
    for n in range(3):
        clip = tmp_path / f"c{n}.mp4"
        await make_test_video(clip, seconds=2.0, width=360, height=640)
        ids.append(await creator.upload(clip))
    for vid in ids:
        assert (await creator.wait_processed(vid))["status"] == "ready"
    viewer = await ApiClient(system).signup(f"erin{suffix}")
    await asyncio.sleep(1.5)  # shards refresh their candidate pool once a second: let it see the last one

    first = await viewer.feed(limit=2)
    seen = [v["video_id"] for v in first["videos"]]
    again = await viewer.feed(limit=2, cursor=first["next_cursor"])
    same = await viewer.feed(limit=2, cursor=first["next_cursor"])
    assert again == same, "the same cursor must return the same page"
    seen += [v["video_id"] for v in again["videos"]]
    cursor = again["next_cursor"]
    while cursor:
        page = await viewer.feed(limit=2, cursor=cursor)
        seen += [v["video_id"] for v in page["videos"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)), "a video was served twice"
    assert set(ids) <= set(seen)
    await creator.close()
    await viewer.close()


async def test_an_older_cursor_returns_its_page_again(system, cql, settings) -> None:
    """The feed entity keeps only its newest page in memory; older ones come back from storage."""
    from redis.asyncio import Redis

    from clipstream.storage.cache import Cache
    from clipstream.storage.repos import VideoRepo
    from clipstream.workers.seed import seed_ready_videos

    suffix = new_id() % 10**8
    creator = await ApiClient(system).signup(f"olga{suffix}")
    redis = Redis.from_url(settings.redis.url)
    await seed_ready_videos(VideoRepo(cql), Cache(redis), {int(creator.user_id or 0): f"olga{suffix}"}, 12)
    await redis.aclose()
    viewer = await ApiClient(system).signup(f"pete{suffix}")
    await asyncio.sleep(1.5)  # the candidate pool refresh
    pages, cursors = [], [None]
    for _ in range(3):
        page = await viewer.feed(limit=3, cursor=cursors[-1])
        pages.append(page)
        cursors.append(page["next_cursor"])
    assert all(p["videos"] for p in pages)

    async def first_again() -> dict | None:
        try:
            return await viewer.feed(limit=3, cursor=cursors[1])
        except ApiError as exc:  # 503 while that page is still being saved
            assert exc.status == 503, exc
            return None

    again = await eventually(first_again, timeout=10)
    assert again == pages[1], "an older cursor must return the page it returned the first time"
    await creator.close()
    await viewer.close()
