"""The node status contract: what a node answers on ``<prefix>.node.status``, how it answers, and
how the API and the CLI gather the answers of every live node (the one place they ask "what runs
where").

The structs are JSON on NATS (and pickled by Thespian between the Guardian and its node). A plain
NATS request returns the first answer only, so :func:`gather_status` publishes one request with its
own reply inbox and collects the answers for a short window: nodes do not register anywhere, and the
number of live nodes is not known in advance. Nodes answer through :func:`serve_status`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from clipstream.bus.timings import StageHist
from clipstream.bus.topology import Topology

__all__ = [
    "GuardianStatus",
    "NodeStatus",
    "ShardStatus",
    "StatusCache",
    "gather_status",
    "per_source",
    "request_status",
    "serve_status",
]

log = structlog.get_logger("clipstream.bus.status")


class ShardStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One shard slot of the tree."""

    kind: str
    index: int
    partitions: tuple[int, ...]
    #: "starting", "running", "restarting", "failed", "stopping", "stopped", "reassigning" (stopping
    #: to start again with another part) or "idle" (the node owns none of this slot's partitions)
    state: str
    address: str = ""
    pid: int = 0
    restarts: int = 0
    entities: int = 0
    dirty: int = 0
    backlog: int = 0
    processed: int = 0
    #: mean messages per non-empty pull request
    avg_fetch: float = 0.0
    dead_letters: int = 0
    flush_failures: int = 0
    last_flush_age: float = -1.0
    stats_age: float = -1.0
    error: str = ""
    flushes: int = 0
    flush_seconds: float = 0.0
    last_flush_latency: float = 0.0
    #: estimated bytes of the shard's entities, against ``CLIPSTREAM_ACTORS_MEMORY_BUDGET_MB``
    memory_bytes: int = 0
    #: busiest entities of the shard's last complete hot window: (decimal key, messages)
    hot: tuple[tuple[str, int], ...] = ()
    #: the kind's own counters by name (the feed's: impressions and likes per candidate source);
    #: last, with a default, so that a node of the version before still decodes
    counters: dict[str, int] = msgspec.field(default_factory=dict)
    #: the shard's per-stage latency histograms, by stage (``clipstream_shard_stage_seconds``)
    stages: dict[str, StageHist] = msgspec.field(default_factory=dict)


def per_source(counters: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Candidate source -> (impressions, likes) from a feed's ``impressions.<source>`` and
    ``likes.<source>`` counters, in the order the feed lists its sources ({}: not a feed's)."""
    out: dict[str, tuple[int, int]] = {}
    for name, shown in counters.items():
        if name.startswith("impressions."):
            source = name.removeprefix("impressions.")
            out[source] = (shown, counters.get("likes." + source, 0))
    return out


class GuardianStatus(msgspec.Struct, frozen=True, kw_only=True):
    address: str
    pid: int
    #: session of the actor system's processes (Thespian's admin daemonizes with setsid)
    session: int
    poison: int = 0


class NodeStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The supervision tree of one node."""

    node: str
    guardian: GuardianStatus
    shards: list[ShardStatus]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(NodeStatus)


async def serve_status(nc: NATS, topology: Topology, node: str, status: Callable[[], Awaitable[NodeStatus]]) -> None:
    """Answer status requests for ``node`` (on the shared subject and on its own) with ``status()``.
    A failed answer is logged, never raised: the asker sees one node fewer."""

    async def answer(msg: Msg) -> None:
        try:
            await msg.respond(_encoder.encode(await status()))
        except Exception as exc:
            log.warning("status request failed", node=node, error=repr(exc))

    await nc.subscribe(topology.status_subject(), cb=answer)
    await nc.subscribe(topology.status_subject(node), cb=answer)


async def request_status(nc: NATS, topology: Topology, node: str | None = None, timeout: float = 5.0) -> NodeStatus:
    """Ask a running node (any node, or the named one) for its supervision tree over NATS."""
    reply = await nc.request(topology.status_subject(node), b"", timeout=timeout)
    return _decoder.decode(reply.data)


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
        except msgspec.DecodeError as exc:  # another version's node, or noise: not a reason to fail the view
            log.warning("undecodable status answer; left out of the view", error=str(exc),
                        answer=msg.data[:200])  # type: ignore[attr-defined]
            return
        replies[status.node] = status
        first.set()
        if expected is not None and len(replies) >= expected:
            enough.set()

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        await nc.publish(topology.status_subject(), b"", reply=inbox)
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
