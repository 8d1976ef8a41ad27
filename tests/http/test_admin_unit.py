"""The operator's endpoints at the handler level: who may see the tree, and the static page."""

from __future__ import annotations

import asyncio

from clipstream.bus.status import GuardianStatus, NodeStatus, ShardStatus
from tests.http.test_app_unit import make_client, token


class _Statuses:
    """The gathered tree a StatusCache would hand out: one node with one feed shard."""

    def __init__(self, counters: dict[str, int]) -> None:
        shard = ShardStatus(kind="feed", index=0, partitions=(0, 1), state="running", counters=counters)
        self.statuses = [NodeStatus(node="n1", guardian=GuardianStatus(address="A", pid=9, session=9), shards=[shard])]

    async def get(self) -> list[NodeStatus]:
        return self.statuses


async def test_actors_without_token_is_401() -> None:
    async with make_client() as client:
        assert (await client.get("/v1/admin/actors")).status_code == 401


async def test_actors_for_a_non_admin_is_403_before_any_io() -> None:
    async with make_client() as client:  # node_status is None: reaching it would fail the test
        r = await client.get("/v1/admin/actors", headers=token(username="alice"))
        assert r.status_code == 403


async def test_page_is_static_with_a_strict_policy() -> None:
    async with make_client() as client:
        r = await client.get("/admin/actors")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"


async def test_actors_json_and_metrics_carry_the_kind_counters() -> None:
    counters = {"impressions.hashtag": 40, "likes.hashtag": 3, "new_video_impressions": 7, "pool_refresh_errors": 0}
    async with make_client(node_status=_Statuses(counters)) as client:
        r = await client.get("/v1/admin/actors", headers=token(username="boss"))
        assert r.status_code == 200
        assert r.json()["nodes"][0]["guardian"]["shards"][0]["counters"] == counters
        text = (await client.get("/metrics")).text
        assert 'clipstream_feed_impressions_total{node="n1",source="hashtag"} 40.0' in text
        assert 'clipstream_feed_like_through_rate{node="n1",source="hashtag"} 0.075' in text


async def test_metrics_expose_the_api_stage_histograms() -> None:
    from clipstream.http.metrics import API_LOOP_LAG_SECONDS, BUS_WAIT_SECONDS

    BUS_WAIT_SECONDS.labels("feed").observe(0.003)
    async with make_client(node_status=_Statuses({})) as client:
        await asyncio.sleep(0.05)  # the worker's loop-lag probe (started by the lifespan) ticks
        text = (await client.get("/metrics")).text
    assert 'clipstream_api_bus_wait_seconds_bucket{le="0.005",op="feed"}' in text
    assert "clipstream_api_loop_lag_seconds_count" in text and API_LOOP_LAG_SECONDS._sum.get() >= 0
    assert "clipstream_api_gc_pause_seconds_count" in text
