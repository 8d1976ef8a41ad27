"""Lease keepers against a real NATS KV bucket (the private nats-server), with the Guardian faked:
claims, fair share for a joining node, hand-off only once the shards let go, a lost CAS, expiry."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import AsyncIterator

import nats
import pytest

from clipstream.actors.leases import LeaseKeeper, lease_key, open_bucket

PARTITIONS = 8
KINDS = ("counter", "feed")


class FakeNode:
    """Stands for the Guardian: hosts what it was last assigned, or keeps old partitions while
    'flushing' (``hold``)."""

    def __init__(self) -> None:
        self.assigned: dict[str, tuple[int, ...]] = {}
        self.hold: dict[str, set[int]] = {}

    async def assign(self, owned: dict[str, tuple[int, ...]]) -> None:
        self.assigned = owned

    async def hosted(self) -> dict[str, set[int]]:
        return {k: set(self.assigned.get(k, ())) | self.hold.get(k, set()) for k in KINDS}


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[object]:
    nc = await nats.connect(nats_url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def keeper(js, prefix: str, name: str, ttl: float = 6.0) -> tuple[LeaseKeeper, FakeNode]:  # type: ignore[no-untyped-def]
    fake = FakeNode()
    kv = await open_bucket(js, prefix, ttl)
    return LeaseKeeper(kv=kv, node=name, kinds=KINDS, partitions=PARTITIONS, assign=fake.assign,
                       hosted=fake.hosted, ttl=ttl), fake


async def owners(k: LeaseKeeper) -> dict[str, str]:
    out = {}
    for kind in KINDS:
        for p in range(PARTITIONS):
            try:
                out[lease_key(kind, p)] = (await k.kv.get(lease_key(kind, p))).value.decode()
            except nats.js.errors.KeyNotFoundError:
                pass
    return out


def prefix() -> str:
    return "l" + uuid.uuid4().hex[:10]


class TestLeaseKeeper:
    async def test_a_lone_node_takes_everything_in_one_round(self, js) -> None:
        a, fake = await keeper(js, prefix(), "a")
        await a.round()
        assert fake.assigned == {k: tuple(range(PARTITIONS)) for k in KINDS}
        assert set((await owners(a)).values()) == {"a"} and len(await owners(a)) == 2 * PARTITIONS

    async def test_a_joining_node_gets_a_fair_share_after_the_hand_off(self, js) -> None:
        p = prefix()
        a, fa = await keeper(js, p, "a")
        await a.round()
        b, fb = await keeper(js, p, "b")
        await b.round()  # heartbeat: now two live nodes; nothing free yet
        assert fb.assigned == {k: () for k in KINDS}
        fa.hold = {"counter": set(range(PARTITIONS))}  # counter shards still flushing
        await a.round()
        assert all(len(v) == PARTITIONS // 2 for v in fa.assigned.values())
        assert sum(1 for o in (await owners(a)).values() if o == "a") == PARTITIONS + PARTITIONS // 2
        fa.hold = {}
        await a.round()  # the shards let go: leases deleted
        await b.round()
        mine = {k: set(v) for k, v in fa.assigned.items()}
        theirs = {k: set(v) for k, v in fb.assigned.items()}
        for kind in KINDS:
            assert len(mine[kind]) == len(theirs[kind]) == PARTITIONS // 2
            assert not mine[kind] & theirs[kind]
        assert sorted((await owners(a)).values()) == ["a"] * PARTITIONS + ["b"] * PARTITIONS

    async def test_a_lost_compare_and_set_drops_the_partition(self, js) -> None:
        a, fake = await keeper(js, prefix(), "a")
        await a.round()
        await a.kv.put(lease_key("counter", 3), b"intruder")
        await a.round()
        assert 3 not in fake.assigned["counter"]
        assert (await owners(a))[lease_key("counter", 3)] == "intruder"

    async def test_released_leases_are_free_at_once(self, js) -> None:
        p = prefix()
        a, _ = await keeper(js, p, "a")
        await a.round()
        a.draining = True
        await a.release_all()
        assert await owners(a) == {}
        b, fb = await keeper(js, p, "b")
        await b.round()
        assert fb.assigned == {k: tuple(range(PARTITIONS)) for k in KINDS}

    async def test_leases_of_a_silent_node_lapse_after_the_ttl(self, js) -> None:
        p = prefix()
        a, _ = await keeper(js, p, "a", ttl=2.0)
        await a.round()  # then a goes silent: no more rounds
        b, fb = await keeper(js, p, "b", ttl=2.0)
        started = time.monotonic()
        while fb.assigned != {k: tuple(range(PARTITIONS)) for k in KINDS}:
            assert time.monotonic() - started < 10, f"b owns {fb.assigned}"
            await b.round()
            await asyncio.sleep(b.interval)
        assert time.monotonic() - started >= 1.0
        assert set((await owners(b)).values()) == {"b"}
