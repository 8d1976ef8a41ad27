"""Developers drive the system from the bus: `clipstream bus publish`, a raw `nats pub`, dead letters."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis

from clipstream.bus.codec import partition_of
from clipstream.bus.topology import Topology
from clipstream.cli.apiclient import ApiClient
from clipstream.storage.cache import Cache
from clipstream.storage.ids import new_id
from clipstream.storage.repos import StatsRepo, VideoRepo
from clipstream.workers.seed import seed_ready_videos

pytestmark = pytest.mark.integration

CLIPSTREAM = str(Path(sys.executable).with_name("clipstream"))


async def wait_likes(stats: StatsRepo, video_id: int, want: int, timeout: float = 20.0) -> int:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = (await stats.get_many([video_id])).get(video_id)
        got = row.likes if row else 0
        if got == want or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.2)


async def test_cli_publish_and_raw_json_are_applied_like_the_api(system, system_env, cql, settings, nc) -> None:
    user = await ApiClient(system).signup(f"inj{new_id() % 10**8}")
    other = int((await ApiClient(system).signup(f"inj{new_id() % 10**8}")).user_id or 0)
    redis = Redis.from_url(settings.redis.url)
    [video] = await seed_ready_videos(VideoRepo(cql), Cache(redis), {other: "creator"}, 1)
    uid = int(user.user_id or 0)
    stats = StatsRepo(cql)

    payload = json.dumps({"user_id": uid, "video_id": video, "author_id": other, "like": True})
    out = subprocess.run([CLIPSTREAM, "bus", "publish", "like.v1", payload], capture_output=True, text=True,
                         env=system_env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert await wait_likes(stats, video, 1) == 1

    # exactly what `nats pub cs.feed.<p> '<json>'` sends: a plain publish the stream captures
    topo = Topology.from_settings(settings.nats)
    subject = topo.feed_subject(partition_of(uid, settings.actors.partitions))
    raw = {"type": "like.v1", "user_id": uid, "video_id": video, "author_id": other, "like": False, "at": 0}
    await nc.publish(subject, json.dumps(raw).encode())
    await nc.flush()
    assert await wait_likes(stats, video, 0) == 0
    await nc.publish(subject, json.dumps({**raw, "like": True}).encode())
    await nc.publish(subject, json.dumps({**raw, "like": True}).encode())  # a second like: no change
    await nc.flush()
    assert await wait_likes(stats, video, 1) == 1
    await asyncio.sleep(1.0)
    assert await wait_likes(stats, video, 1, timeout=0) == 1
    await redis.aclose()
    await user.close()


async def test_invalid_input_is_refused_or_dead_lettered(system, system_env, settings, nc) -> None:
    bad = subprocess.run([CLIPSTREAM, "bus", "publish", "like.v1", '{"user_id": "nope"}'], capture_output=True,
                         text=True, env=system_env, timeout=60)
    assert bad.returncode == 2 and "user_id" in bad.stderr  # validated before it is sent

    topo = Topology.from_settings(settings.nats)
    marker = f"hostile-{new_id()}"
    await nc.publish(topo.feed_subject(3), json.dumps({"type": "like.v1", "note": marker}).encode())
    await nc.publish(topo.counter_subject(5), b"\xff\xfe not utf-8 " + marker.encode())
    # hostile: an unknown tag, a wrong field type, and a payload far over the message size limit
    await nc.publish(topo.feed_subject(4), json.dumps({"type": "drop.tables", "note": marker}).encode())
    await nc.publish(topo.counter_subject(6), json.dumps(
        {"type": "like_delta.v1", "video_id": "DROP", "user_id": 1, "delta": 1, "at": 0, "note": marker}).encode())
    huge = json.dumps({"note": marker, "type": "like.v1", "pad": "x" * 300_000}).encode()
    await nc.publish(topo.feed_subject(7), huge)
    await nc.flush()
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        out = subprocess.run([CLIPSTREAM, "bus", "dlq", "--last", "50"], capture_output=True, text=True,
                             env=system_env, timeout=60)
        assert out.returncode == 0, out.stderr
        if out.stdout.count(marker) >= 5 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    assert out.stdout.count(marker) >= 5, out.stdout[-3000:]
    lines = [line for line in out.stdout.splitlines() if "from cs." in line]
    assert any("undecodable" in line for line in lines)
    assert "the limit is" in out.stdout  # the huge one, with its size in the reason
    # the shards went on: a health check of the feed still answers
    user = await ApiClient(system).signup(f"dl{new_id() % 10**8}")
    assert "videos" in await user.feed()
    await user.close()
