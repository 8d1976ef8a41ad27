"""Processes killed with SIGKILL under load: the system comes back by itself and loses nothing accepted.

Each test kills one child of the session's `clipstream run` (the API, the actor node with every
Thespian process of its actor system, or the media worker) while clients keep working. Clients
behave like real ones: a request that fails with a connection error or a 503 is retried. The
supervisor restarts the dead process without a manual step; every like the API accepted is
counted exactly once and an upload being transcoded when its worker died still becomes ready.

Marked disruptive so that they run after the tests that expect an undisturbed system.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
import nats
import pytest

from clipstream.actors.leftovers import session_processes
from clipstream.bus.status import request_status
from clipstream.bus.topology import Topology
from clipstream.cli.apiclient import ApiClient
from clipstream.media.testsrc import make_test_video
from clipstream.storage.ids import new_id
from tests.e2e.load import LikeLoad, child_pid, healthy, kill_group
from tests.e2e.nodes import eventually

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]

async def test_api_killed_during_likes(system, system_process, cql, settings) -> None:
    load = LikeLoad(system, cql, settings)
    await load.setup("fapi")
    old = child_pid(system_process.pid, "api")
    assert old is not None

    async def kill_api() -> None:
        kill_group(old)
        await eventually(lambda: healthy(system), 60, "the API answers again")

    try:
        await load.run(kill_api, busy=True)
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
