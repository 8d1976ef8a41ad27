"""Creators' side end to end: rejected uploads, follow fan-out, profile grid, views."""

from __future__ import annotations

import asyncio
import os

import pytest

from clipstream.cli.apiclient import ApiClient, ApiError
from clipstream.media.testsrc import make_test_video
from clipstream.storage.ids import new_id
from clipstream.storage.repos import StatsRepo

pytestmark = pytest.mark.integration


async def feed_ids(client: ApiClient) -> set[str]:
    ids, cursor = set(), None
    while True:
        page = await client.feed(limit=50, cursor=cursor)
        ids |= {v["video_id"] for v in page["videos"]}
        cursor = page["next_cursor"]
        if not cursor:
            return ids


async def test_bad_uploads_fail_with_a_reason_and_are_never_served(system, tmp_path) -> None:
    suffix = new_id() % 10**8
    creator = await ApiClient(system).signup(f"fay{suffix}")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(50_000))
    too_long = tmp_path / "long.mp4"
    await make_test_video(too_long, seconds=181.0, width=64, height=64, fps=1, audio=False)
    junk_id = await creator.upload(junk)
    long_id = await creator.upload(too_long)
    junk_video = await creator.wait_processed(junk_id)
    long_video = await creator.wait_processed(long_id)
    assert junk_video["status"] == "failed" and junk_video["failure_reason"], junk_video
    assert long_video["status"] == "failed" and "180" in long_video["failure_reason"], long_video
    viewer = await ApiClient(system).signup(f"gus{suffix}")
    with pytest.raises(ApiError) as hidden:
        await viewer.video(junk_id)
    assert hidden.value.status == 404  # only its creator sees a video that is not ready
    with pytest.raises(ApiError) as hidden:
        await viewer.like(long_id)
    assert hidden.value.status == 404
    await asyncio.sleep(1.5)
    assert {junk_id, long_id}.isdisjoint(await feed_ids(viewer))
    grid = await viewer.call("GET", f"/v1/users/{creator.user_id}/videos")
    assert grid["videos"] == []
    await creator.close()
    await viewer.close()


async def test_a_followed_creators_new_video_reaches_the_follower_first(system, tmp_path, cql) -> None:
    suffix = new_id() % 10**8
    creator = await ApiClient(system).signup(f"hal{suffix}")
    fan = await ApiClient(system).signup(f"ida{suffix}")
    await fan.follow(creator.user_id or "")
    await fan.follow(creator.user_id or "")  # idempotent
    with pytest.raises(ApiError) as self_follow:
        await fan.follow(fan.user_id or "")
    assert self_follow.value.status == 400
    await feed_ids(fan)  # the fan has seen everything there was
    clip = tmp_path / "new.mp4"
    await make_test_video(clip, seconds=2.0, width=360, height=640)
    vid = await creator.upload(clip)
    assert (await creator.wait_processed(vid))["status"] == "ready"

    async def first_item() -> str | None:
        page = await fan.feed(limit=5)
        return page["videos"][0]["video_id"] if page["videos"] else None

    deadline = asyncio.get_running_loop().time() + 20
    got = await first_item()
    while got != vid and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.3)
        got = got if got == vid else await first_item()
    assert got == vid

    profile = await fan.call("GET", f"/v1/users/{creator.user_id}")
    assert profile["username"] == f"hal{suffix}" and profile["video_count"] == 1
    deadline = asyncio.get_running_loop().time() + 10
    while profile["follower_count"] != 1 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.3)
        profile = await fan.call("GET", f"/v1/users/{creator.user_id}")
    assert profile["follower_count"] == 1
    grid = await fan.call("GET", f"/v1/users/{creator.user_id}/videos")
    assert [v["video_id"] for v in grid["videos"]] == [vid]

    for _ in range(3):
        await fan.call("POST", f"/v1/videos/{vid}/view")
    stats = StatsRepo(cql)
    deadline = asyncio.get_running_loop().time() + 10
    while getattr((await stats.get_many([int(vid)])).get(int(vid)), "views", 0) != 3:
        assert asyncio.get_running_loop().time() < deadline, "views were not counted"
        await asyncio.sleep(0.3)
    await creator.close()
    await fan.close()
