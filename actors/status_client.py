"""Gather the supervision trees of every live node over NATS: the one place the API and the CLI
ask "what runs where".

Every node answers on the shared ``<prefix>.node.status`` subject (see :func:`run_node`). A plain
NATS request returns the first answer only, so this publishes one request with its own reply inbox
and collects the answers for a short window: nodes do not register anywhere, and the number of
live nodes is not known in advance.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
from nats.aio.client import Client as NATS

from clipstream.actors.messages import NodeStatus
from clipstream.actors.node import status_subject
from clipstream.bus.topology import Topology

__all__ = ["StatusCache", "gather_status"]

_decoder = msgspec.json.Decoder(NodeStatus)


async def gather_status(
    nc: NATS,
    topology: Topology,
    *,
    window: float = 0.3,
    first_timeout: float = 3.0,
    expected: int | None = None,
) -> list[NodeStatus]:
    """The status of every node that answers, sorted by node name.

    Collects for ``window`` seconds; when nobody answered by then it waits up to ``first_timeout``
    for a first answer (a node busy restarting a shard answers late), then ``window`` more for the
    others. Stops early once ``expected`` nodes answered. No node at all: an empty list.
    """
    replies: dict[str, NodeStatus] = {}
    enough = asyncio.Event()
    first = asyncio.Event()

    async def on_reply(msg: object) -> None:
        try:
            status = _decoder.decode(msg.data)  # type: ignore[attr-defined]
        except msgspec.DecodeError:
            return  # another version's node, or noise: not a reason to fail the whole view
        replies[status.node] = status
        first.set()
        if expected is not None and len(replies) >= expected:
            enough.set()

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        await nc.publish(status_subject(topology), b"", reply=inbox)
        try:
            await asyncio.wait_for(enough.wait(), window)
        except asyncio.TimeoutError:
            if not first.is_set():
                try:
                    await asyncio.wait_for(first.wait(), max(0.0, first_timeout - window))
                    await asyncio.wait_for(enough.wait(), window)
                except asyncio.TimeoutError:
                    pass
    finally:
        await sub.unsubscribe()
    return [replies[name] for name in sorted(replies)]


class StatusCache:
    """At most one gather per ``ttl`` seconds, shared by concurrent callers.

    A status answer costs every node an ActorSystem ask; the admin page, the CLI and Prometheus all
    poll, and /metrics is unauthenticated, so their polls must not multiply the asks.
    """

    __slots__ = ("_nc", "_topology", "_ttl", "_window", "_lock", "_at", "_value")

    def __init__(self, nc: NATS, topology: Topology, ttl: float = 1.0, window: float = 0.3) -> None:
        self._nc = nc
        self._topology = topology
        self._ttl = ttl
        self._window = window
        self._lock = asyncio.Lock()
        self._at = float("-inf")
        self._value: list[NodeStatus] = []

    async def get(self) -> list[NodeStatus]:
        """The cached statuses if fresh, else a new gather (one at a time)."""
        async with self._lock:
            if time.monotonic() - self._at > self._ttl:
                self._value = await gather_status(self._nc, self._topology, window=self._window)
                self._at = time.monotonic()
            return self._value
