"""Processes killed with SIGKILL under load: the system comes back by itself and loses nothing accepted.

Each test kills one child of the session's `clipstream run` (the API, the actor node with every
Thespian process of its actor system, or the media worker) while clients keep working. Clients
behave like real ones: a request that fails with a connection error or a 503 is retried. The
supervisor restarts the dead process without a manual step; every like the API accepted is
counted exactly once and an upload being transcoded when its worker died still becomes ready.

Marked disruptive so that they run after the tests that expect an undisturbed system.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import nats
import pytest
from redis.asyncio import Redis

from clipstream.actors.node import request_status, session_processes
from clipstream.bus.topology import Topology
from clipstream.cli.apiclient import ApiClient
from clipstream.media.testsrc import make_test_video
from clipstream.storage.cache import Cache
from clipstream.storage.ids import new_id
from clipstream.storage.repos import StatsRepo, VideoRepo
from clipstream.workers.seed import seed_ready_videos
from tests.e2e.nodes import eventually

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]

USERS, VIDEOS, IN_FLIGHT = 40, 30, 32


def child_pid(run_pid: int, name: str) -> int | None:
    """The pid of the supervisor's child running `clipstream <name>`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")  # [python,] clipstream, name
        except (OSError, IndexError, ValueError):
            continue
        if ppid == run_pid and argv[-1] == name.encode():
            return int(entry.name)
    return None


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def healthy(base: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(base + "/health")).status_code == 200
    except httpx.HTTPError:
        return False


class LikeLoad:
    """Users liking seeded videos through the API, retrying like a real client until accepted."""

    def __init__(self, base: str, cql, settings) -> None:  # type: ignore[no-untyped-def]
        self.base, self.cql, self.settings = base, cql, settings
        self.http = httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=IN_FLIGHT))
        self.users: list[ApiClient] = []
        self.videos: list[str] = []
        self.retried = 0

    async def setup(self, tag: str) -> None:
        suffix = new_id() % 10**8
        sem = asyncio.Semaphore(8)

        async def signup(i: int) -> ApiClient:
            async with sem:
                return await ApiClient(self.base, self.http).signup(f"{tag}{suffix}_{i}")

        self.users = list(await asyncio.gather(*(signup(i) for i in range(USERS))))
        redis = Redis.from_url(self.settings.redis.url)
        try:
            creator = self.users[0]
            made = await seed_ready_videos(VideoRepo(self.cql), Cache(redis),
                                           {int(creator.user_id or 0): f"{tag}{suffix}_0"}, VIDEOS)
        finally:
            await redis.aclose()
        self.videos = [str(v) for v in made]

    async def like(self, user: ApiClient, video: str) -> None:
        deadline = time.monotonic() + 120
        while True:
            try:
                r = await self.http.post(f"{self.base}/v1/videos/{video}/like", json={"action": "like"},
                                         headers={"Authorization": f"Bearer {user.token}"})
                if r.status_code == 200:
                    return
                assert r.status_code == 503, (r.status_code, r.text)  # anything else is a bug
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "a like was never accepted"
            self.retried += 1
            await asyncio.sleep(0.2)

    async def run(self, fault, after: int = 200) -> None:  # type: ignore[no-untyped-def]
        """Every user likes every video; ``fault()`` runs once ``after`` likes were accepted."""
        pairs = [(u, v) for v in self.videos for u in self.users]
        gate = asyncio.Semaphore(IN_FLIGHT)
        accepted = 0
        fired = asyncio.Event()

        async def one(user: ApiClient, video: str) -> None:
            nonlocal accepted
            async with gate:
                await self.like(user, video)
            accepted += 1
            if accepted == after:
                fired.set()

        async def inject() -> None:
            await fired.wait()
            await fault()

        await asyncio.gather(inject(), *(one(u, v) for u, v in pairs))

    async def assert_exact(self) -> None:
        stats = StatsRepo(self.cql)
        ids = [int(v) for v in self.videos]
        want = {i: USERS for i in ids}

        async def counts() -> dict[int, int]:
            return {k: row[0] for k, row in (await stats.get_many(ids)).items()}

        async def exact() -> bool:
            return await counts() == want

        await eventually(exact, 90, "every accepted like is counted once", interval=0.5)
        await asyncio.sleep(2 * self.settings.actors.flush_interval + 1)  # nothing more may arrive
        assert await counts() == want

    async def close(self) -> None:
        await self.http.aclose()


async def test_api_killed_during_likes(system, system_process, cql, settings) -> None:
    load = LikeLoad(system, cql, settings)
    await load.setup("fapi")
    old = child_pid(system_process.pid, "api")
    assert old is not None

    async def kill_api() -> None:
        kill_group(old)
        await eventually(lambda: healthy(system), 60, "the API answers again")

    try:
        await load.run(kill_api)
        new = child_pid(system_process.pid, "api")
        assert new is not None and new != old, "the supervisor did not start a new API process"
        assert load.retried > 0, "the kill did not interrupt any request: the test proved nothing"
        await load.assert_exact()
    finally:
        await load.close()


async def test_node_killed_during_likes(system, system_process, node_name, cql, settings) -> None:
    load = LikeLoad(system, cql, settings)
    await load.setup("fnode")
    nc = await nats.connect(settings.nats.url, connect_timeout=5)
    topology = Topology.from_settings(settings.nats)
    old = child_pid(system_process.pid, "node")
    assert old is not None
    session = (await request_status(nc, topology, node_name)).guardian.session

    async def kill_node() -> None:
        kill_group(old)  # the node process ...
        for pid in session_processes(session):  # ... and every process of its actor system
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    try:
        await load.run(kill_node)

        async def node_back() -> bool:
            try:
                st = await request_status(nc, topology, node_name)
            except Exception:  # noqa: BLE001 - not up yet
                return False
            return st.guardian.session != session and all(s.state == "running" for s in st.shards)

        await eventually(node_back, 90, "a new node runs every shard")
        await load.assert_exact()
    finally:
        await nc.close()
        await load.close()


async def test_worker_killed_mid_transcode(system, system_process, tmp_path) -> None:
    clip = tmp_path / "clip.mp4"
    await make_test_video(clip, seconds=20.0, width=720, height=1280)
    async with httpx.AsyncClient(timeout=30) as http:
        creator = await ApiClient(system, http).signup(f"fwork{new_id() % 10**8}")
        old = child_pid(system_process.pid, "worker")
        assert old is not None
        video_id = await creator.upload(clip)

        async def processing() -> bool:
            return (await creator.video(video_id))["status"] == "processing"

        await eventually(processing, 60, "the worker claims the upload", interval=0.1)
        kill_group(old)
        killed_at = time.monotonic()

        async def ready() -> dict | None:
            video = await creator.video(video_id)
            assert video["status"] != "failed", video
            return video if video["status"] == "ready" else None

        video = await eventually(ready, 240, "the upload becomes ready after its worker was killed", interval=1.0)
        new = child_pid(system_process.pid, "worker")
        assert new is not None and new != old
        print(f"ready {time.monotonic() - killed_at:.1f}s after the worker was killed")
        assert video["duration"] == pytest.approx(20.0, abs=0.5)
