"""gather_status against the real NATS: every node's answer within the window, none without nodes."""

from __future__ import annotations

import asyncio
import time
import uuid

import msgspec

from clipstream.bus.status import GuardianStatus, NodeStatus, StatusCache, gather_status, request_status, serve_status
from clipstream.bus.topology import Topology


def topology() -> Topology:
    return Topology(prefix="st" + uuid.uuid4().hex[:8])


async def fake_node(nc, topo: Topology, name: str, delay: float = 0.0, calls: list[str] | None = None):
    async def answer(msg) -> None:
        if calls is not None:
            calls.append(name)
        await asyncio.sleep(delay)
        status = NodeStatus(node=name, guardian=GuardianStatus(address="a", pid=1, session=1), shards=[])
        await msg.respond(msgspec.json.encode(status))

    return await nc.subscribe(topo.status_subject(), cb=answer)


async def test_collects_every_node_sorted(nc) -> None:
    topo = topology()
    for name in ("n2", "n1", "n3"):
        await fake_node(nc, topo, name, delay=0.05)
    statuses = await gather_status(nc, topo, window=0.3)
    assert [s.node for s in statuses] == ["n1", "n2", "n3"]


async def test_stops_early_at_the_expected_count(nc) -> None:
    topo = topology()
    await fake_node(nc, topo, "only")
    started = time.monotonic()
    statuses = await gather_status(nc, topo, window=2.0, expected=1)
    assert [s.node for s in statuses] == ["only"] and time.monotonic() - started < 1.0


async def test_waits_for_a_slow_first_answer_then_returns(nc) -> None:
    topo = topology()
    await fake_node(nc, topo, "slow", delay=0.6)
    statuses = await gather_status(nc, topo, window=0.2, first_timeout=2.0)
    assert [s.node for s in statuses] == ["slow"]


async def test_no_node_is_an_empty_list(nc) -> None:
    started = time.monotonic()
    assert await gather_status(nc, topology(), window=0.1, first_timeout=0.3) == []
    assert time.monotonic() - started < 1.0


async def test_cache_asks_once_per_ttl(nc) -> None:
    topo = topology()
    calls: list[str] = []
    await fake_node(nc, topo, "n", calls=calls)
    cache = StatusCache(nc, topo, ttl=5.0, window=0.1)
    results = await asyncio.gather(*(cache.get() for _ in range(5)))
    assert all([s.node for s in r] == ["n"] for r in results)
    assert calls == ["n"]


async def test_an_undecodable_answer_is_left_out_and_logged(nc) -> None:
    import structlog.testing

    topo = topology()
    await fake_node(nc, topo, "n1")

    async def garbage(msg) -> None:
        await msg.respond(b'{"node": 1}')

    await nc.subscribe(topo.status_subject(), cb=garbage)
    with structlog.testing.capture_logs() as logs:
        statuses = await gather_status(nc, topo, window=0.3)
    assert [s.node for s in statuses] == ["n1"]
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["undecodable status answer; left out of the view"]


async def test_serve_status_answers_on_the_shared_and_the_own_subject(nc) -> None:
    topo = topology()
    status = NodeStatus(node="n9", guardian=GuardianStatus(address="a", pid=1, session=1), shards=[])

    async def answer() -> NodeStatus:
        return status

    await serve_status(nc, topo, "n9", answer)
    assert await request_status(nc, topo, timeout=2) == status
    assert await request_status(nc, topo, "n9", timeout=2) == status
