"""Backing services failing under the running system: it degrades clearly and heals by itself.

- NATS restarted in the middle of a like stream: the API, the node and the worker reconnect; every
  accepted like is counted once.
- Redis restarted and flushed: cards and counts are read from Scylla meanwhile, the worker's cache
  keeper rebuilds the candidate lists, feeds have videos again and every count shown is exact.
- Cassandra down: reads that need it answer 503 with Retry-After (never a hang or a 500), likes
  are still accepted, and they are counted once Cassandra is back.
- MinIO down: upload-url answers 503 with Retry-After; it works again once MinIO is back.

Each stops a shared service with the stack's own command, so they are marked disruptive.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from redis.asyncio import Redis

from clipstream.cli.apiclient import ApiClient, ApiError
from clipstream.storage.ids import new_id
from tests.e2e.load import LikeLoad
from tests.e2e.nodes import Outage, eventually

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, (r.status_code, r.text)
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["detail"]


async def test_nats_restarted_mid_stream(system, cql, settings) -> None:
    load = LikeLoad(system, cql, settings)
    await load.setup("fnats")
    async with Outage("nats") as nats:

        async def restart() -> None:
            await nats.stop()
            await asyncio.sleep(2)
            await nats.start()

        try:
            await load.run(restart, busy=True)
            assert load.retried > 0, "no request met the outage: the test proved nothing"
            await load.assert_exact()
        finally:
            await load.close()


async def test_redis_restarted_and_flushed(system, cql, settings) -> None:
    load = LikeLoad(system, cql, settings)
    await load.setup("fredis")
    async with Outage("redis") as redis_outage:

        async def restart_and_flush() -> None:
            await redis_outage.stop()
            await redis_outage.start()
            client = Redis.from_url(settings.redis.url)
            try:
                await client.flushdb()  # whatever the restart kept, it is all gone now
            finally:
                await client.aclose()

        try:
            await load.run(restart_and_flush)
            await load.assert_exact()
            viewer = load.users[1]

            async def counts_shown() -> bool:  # cards and counts come back from Scylla
                shown = [(await viewer.video(v))["like_count"] for v in load.videos]
                return shown == [len(load.users)] * len(load.videos)

            await eventually(counts_shown, 30, "the API shows every exact count after the flush")
            fresh = await ApiClient(system, load.http).signup(f"fresh{new_id() % 10**8}")

            async def feed_has_videos() -> bool:  # the candidate lists were rebuilt
                return bool((await fresh.feed(limit=10))["videos"])

            await eventually(feed_has_videos, 30, "a new user's feed has videos again", interval=1.0)
        finally:
            await load.close()


async def test_cassandra_down_reads_503_and_likes_apply_later(system, cql, settings) -> None:
    load = LikeLoad(system, cql, settings)
    await load.setup("fcass")
    viewer, video = load.users[1], load.videos[0]
    async with Outage("cassandra") as cassandra:
        try:
            await cassandra.stop()
            started = time.monotonic()
            # A read that needs Cassandra: a clear 503 within the API's own timeouts, not a hang.
            async with httpx.AsyncClient(timeout=30) as http:
                r = await http.get(f"{system}/v1/users/{viewer.user_id}",
                                   headers={"Authorization": f"Bearer {viewer.token}"})
            assert_unavailable(r)
            print(f"profile read answered {r.status_code} in {time.monotonic() - started:.1f}s")
            # Likes only need NATS (and the card in Redis): accepted while Cassandra is away.
            await load.like_all()
            await cassandra.start()
            await load.assert_exact()

            async def shown() -> bool:  # the API's session reconnects within a second or two
                try:
                    return (await viewer.video(video))["like_count"] == len(load.users)
                except ApiError as exc:
                    assert exc.status == 503, exc
                    return False

            await eventually(shown, 30, "the API shows the exact count once Cassandra is back")
        finally:
            await load.close()


async def test_minio_down_upload_url_503(system) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        creator = await ApiClient(system, http).signup(f"fminio{new_id() % 10**8}")
        body = {"file_size_bytes": 1000, "file_format": "mp4"}
        headers = {"Authorization": f"Bearer {creator.token}"}
        async with Outage("minio") as minio:
            await minio.stop()
            assert_unavailable(await http.post(f"{system}/v1/videos/upload-url", json=body, headers=headers))
            await minio.start()

            async def works_again() -> bool:
                r = await http.post(f"{system}/v1/videos/upload-url", json=body, headers=headers)
                return r.status_code == 200

            await eventually(works_again, 30, "upload-url works again once MinIO is back")
