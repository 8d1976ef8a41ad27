"""The node process (``clipstream node``): a :class:`Node` until SIGINT/SIGTERM, its status
answered over NATS (:func:`clipstream.bus.status.serve_status`) and its partitions shared with the
other nodes through leases (:mod:`clipstream.actors.leases`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from typing import Mapping

import structlog
from nats.aio.client import Client as NATS

from clipstream.actors.leases import LeaseKeeper, open_bucket
from clipstream.actors.messages import RuntimeOptions
from clipstream.actors.node import Node, NodeError
from clipstream.bus.connection import StopRequested, connect_nats
from clipstream.bus.status import NodeStatus, serve_status
from clipstream.bus.tasks import stop_task
from clipstream.bus.topology import Topology
from clipstream.config.settings import Settings

__all__ = ["run_node"]

log = structlog.get_logger("clipstream.actors.service")


async def _serve(node: Node, stop: threading.Event) -> None:
    """Wait for SIGINT/SIGTERM while answering status requests over NATS."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    if stop.is_set():
        return
    topology = Topology.from_settings(node.settings.nats)
    # A Thespian ActorSystem object is not thread-safe, and each request runs in an executor
    # thread: concurrent status requests (CLI --watch, the admin page, Prometheus) take turns.
    asking = asyncio.Lock()

    async def status() -> NodeStatus:
        async with asking:
            return await loop.run_in_executor(None, node.status)

    nc = None
    try:
        nc = await connect_nats(node.settings.nats, f"clipstream-node-{node.name}", stop=done)
        await serve_status(nc, topology, node.name, status)
    except StopRequested:
        log.info("node stopped before NATS was reachable")
        return
    except Exception as exc:  # status over NATS is a convenience; the node runs without it
        log.warning("status endpoint unavailable", error=repr(exc))
    keeper: LeaseKeeper | None = None
    keeper_task: asyncio.Task[None] | None = None
    try:
        if node.options.leases:
            keeper = await _lease_keeper(node, nc)
            keeper_task = asyncio.create_task(keeper.run())
        await done.wait()
        if keeper is not None:
            # Renewals go on while the shards flush and stop; the leases are given back after.
            keeper.draining = True
            await loop.run_in_executor(None, node.shutdown)
            # Stopped for certain before the leases are given back: a keeper that lost its cancel
            # (bus/tasks.py) would renew them again after the release.
            await stop_task(keeper_task)
            await keeper.release_all()
    finally:
        await stop_task(keeper_task)
        if nc is not None:
            await nc.close()


async def _lease_keeper(node: Node, nc: NATS | None) -> LeaseKeeper:
    """The node's lease keeper (:mod:`clipstream.actors.leases`), bound to the Guardian."""
    if nc is None:
        # Without NATS the node could own nothing; it fails rather than run idle.
        raise NodeError(f"partition leases need NATS at {node.settings.nats.url}")
    loop = asyncio.get_running_loop()
    prefix = Topology.from_settings(node.settings.nats).prefix
    kv = await open_bucket(nc.jetstream(timeout=node.settings.nats.timeout), prefix, node.options.lease_ttl)

    async def assign(owned: dict[str, tuple[int, ...]]) -> None:
        await loop.run_in_executor(None, node.assign, owned)

    async def hosted() -> dict[str, set[int]]:
        return await loop.run_in_executor(None, node.hosted)

    return LeaseKeeper(kv=kv, node=node.name, kinds=tuple(sorted(node.kinds)),
                       partitions=node.settings.actors.partitions, assign=assign, hosted=hosted,
                       ttl=node.options.lease_ttl)


def run_node(settings: Settings, kinds: Mapping[str, str] | None = None, options: RuntimeOptions | None = None) -> None:
    """Run a node until SIGINT or SIGTERM, then shut it down cleanly."""
    stop = threading.Event()
    me = os.getpid()

    def early(sig: int, _frame: object) -> None:
        # Until the loop takes over, a signal must not kill us mid-start and orphan the actor
        # system. Thespian forks its admin from here, and the admin keeps Python's handlers: in
        # that process, fall back to the default action, or the admin could not be terminated.
        if os.getpid() != me:
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
            return
        stop.set()

    previous = {sig: signal.signal(sig, early) for sig in (signal.SIGINT, signal.SIGTERM)}
    node = Node(settings, kinds, options)
    try:
        # With leases the node starts owning nothing; its first lease round (right after) claims.
        node.start(owned={kind: () for kind in node.kinds} if node.options.leases else None)
        asyncio.run(_serve(node, stop))
    finally:
        node.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
