"""Partition leases in a NATS KV bucket: which node owns which partition of each kind.

Design (the simplest one that is correct, with NATS as the only coordinator):

- One KV bucket per subject prefix (:func:`bucket_name`), history 1, bucket TTL ``ttl`` seconds
  (the stream's max age: a key not written for ``ttl`` seconds disappears). Key
  ``<kind>.<partition>`` → the owner's node name; key ``nodes.<name>`` is a node's heartbeat.
- :class:`LeaseKeeper` runs as an asyncio task in the node process (the loop of ``run_node``), not in
  an actor: it only needs NATS and an occasional word with the Guardian, and a stalled shard must not
  stop the renewals of the node's other partitions. Every ``ttl / 3`` seconds it
  1. writes its heartbeat and lists the bucket's keys (live nodes, and which leases exist);
  2. renews every lease it holds with ``update(last=revision)``: a compare-and-set, so a lost CAS
     means somebody else owns the partition (our lease lapsed): it is dropped at once, without a
     release. A lease it could not renew for ``2/3 ttl`` (NATS unreachable) is dropped too, before
     anybody else can take it;
  3. claims free partitions with ``create()`` (fails if the key exists) up to its fair share,
     ``ceil(partitions / live nodes)`` per kind (:func:`fair_share`); partitions that stay free for
     :data:`ORPHAN_ROUNDS` rounds are claimed beyond the share (coverage beats fairness);
  4. gives up the surplus over its fair share, but only when no partition of the kind is free
     (a joining node needs them; see :func:`plan`): the Guardian is told the smaller set first, and
     the lease is deleted (``delete(last=revision)``) only once no shard of this node hosts the
     partition any more, i.e. after its shard flushed its dirty entities and acked their messages.
- The Guardian gets the node's owned set through the node (:meth:`clipstream.actors.node.Node.assign`);
  it hands each shard its part with :class:`~clipstream.actors.messages.OwnPartitions`. A running
  shard whose part only grows (a take-over) binds the new partitions in place, at their ack floor,
  so a new owner rebuilds entity state from Scylla plus the unacked JetStream messages. A shard
  that loses partitions (a hand-off) is stopped (final flush, then acks: the tested stop path) and
  started again with its smaller part; its other entities are reloaded, a cost paid only when a
  node joins.
- A node that stops cleanly releases its leases after its shards stopped; one that dies loses them
  when the TTL lapses, and the others take its partitions over within ``ttl + ttl / 3`` seconds.

A single node takes every partition in its first round (one ``create`` per partition), so the
default ``clipstream run`` starts as fast as before.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, Mapping

import nats.js.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

__all__ = [
    "DEFAULT_TTL",
    "ORPHAN_ROUNDS",
    "LeaseKeeper",
    "Plan",
    "bucket_name",
    "fair_share",
    "lease_key",
    "open_bucket",
    "plan",
]

log = structlog.get_logger("clipstream.actors.leases")

#: seconds a lease (and a heartbeat) lives without renewal
DEFAULT_TTL = 6.0
#: rounds a partition must stay free before a node at its fair share claims it anyway
ORPHAN_ROUNDS = 2
_NODES = "nodes."


def bucket_name(prefix: str) -> str:
    """The lease bucket of one subject prefix (bucket names allow letters, digits, ``-`` and ``_``)."""
    return "LEASES_" + re.sub(r"[^A-Za-z0-9_-]", "_", prefix)


def lease_key(kind: str, partition: int) -> str:
    return f"{kind}.{partition}"


def fair_share(partitions: int, live_nodes: int) -> int:
    """Partitions of one kind a node should own when ``live_nodes`` share them."""
    return math.ceil(partitions / max(1, live_nodes))


@dataclass(frozen=True, slots=True)
class Plan:
    """What one node does with one kind in one round."""

    #: free partitions to try to claim, in order (a failed claim is simply skipped)
    claim: tuple[int, ...]
    #: held partitions to hand off (the Guardian first, then the lease)
    release: tuple[int, ...]


def plan(
    partitions: int,
    live_nodes: int,
    held: Iterable[int],
    free: Iterable[int],
    orphans: Iterable[int] = (),
    offset: int = 0,
) -> Plan:
    """The claims and releases that move a node toward its fair share of one kind.

    ``held``: partitions this node owns (releases in progress excluded); ``free``: partitions with
    no lease; ``orphans``: the free ones that stayed free for a while (taken even above the share).
    Claims start at ``offset`` (e.g. a hash of the node name) so that nodes joining together try
    different partitions first. Surplus is released only when nothing of the kind is free: with
    free partitions left, the other nodes can reach their share without ours.
    """
    held = sorted(set(held))
    free_set = set(free) - set(held)
    target = fair_share(partitions, live_nodes)
    order = sorted(free_set, key=lambda p: (p - offset) % max(1, partitions))
    want = max(0, target - len(held))
    claim = order[:want]
    extra = [p for p in order[want:] if p in set(orphans)]
    release: tuple[int, ...] = ()
    if not free_set and len(held) > target:
        release = tuple(held[target:])
    return Plan(claim=tuple(claim + extra), release=release)


async def open_bucket(js: JetStreamContext, prefix: str, ttl: float = DEFAULT_TTL) -> KeyValue:
    """The lease bucket, created on first use (same config from every node, so creating it twice is
    harmless)."""
    name = bucket_name(prefix)
    try:
        return await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        pass
    try:
        return await js.create_key_value(KeyValueConfig(bucket=name, history=1, ttl=ttl))
    except nats.js.errors.BadRequestError:  # created meanwhile by another node with another ttl
        return await js.key_value(name)


@dataclass(slots=True)
class _Lease:
    revision: int
    renewed_at: float
    #: released to the Guardian, waiting for its shard to let go before the lease is deleted
    releasing: bool = False


#: node's owned set → Guardian (kind → partitions)
Assign = Callable[[dict[str, tuple[int, ...]]], Awaitable[None]]
#: kind → partitions some shard of this node still hosts
Hosted = Callable[[], Awaitable[Mapping[str, set[int]]]]


@dataclass
class LeaseKeeper:
    """Keeps this node's leases; see the module docstring. ``assign`` and ``hosted`` talk to the
    Guardian (through the node); the keeper never reads settings."""

    kv: KeyValue
    node: str
    kinds: tuple[str, ...]
    partitions: int
    assign: Assign
    hosted: Hosted
    ttl: float = DEFAULT_TTL
    leases: dict[tuple[str, int], _Lease] = field(default_factory=dict)
    _free_rounds: dict[tuple[str, int], int] = field(default_factory=dict)
    _assigned: dict[str, tuple[int, ...]] | None = None
    _heartbeat_rev: int = 0
    #: no more claims or releases (the node is stopping); renewals go on until release_all
    draining: bool = False

    @property
    def interval(self) -> float:
        return self.ttl / 3

    def owned(self) -> dict[str, tuple[int, ...]]:
        """What the shards should host: held leases not being released."""
        out: dict[str, list[int]] = {k: [] for k in self.kinds}
        for (kind, p), lease in self.leases.items():
            if not lease.releasing:
                out[kind].append(p)
        return {k: tuple(sorted(v)) for k, v in out.items()}

    async def run(self) -> None:
        """Rounds every ``ttl / 3`` seconds until cancelled; a failing round is logged and retried."""
        while True:
            started = time.monotonic()
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("lease round failed", node=self.node, error=repr(exc))
                await self._expire_unrenewed()
            await asyncio.sleep(max(0.05, self.interval - (time.monotonic() - started)))

    async def round(self) -> None:
        keys = await self._heartbeat_and_list()
        live = max(1, sum(1 for k in keys if k.startswith(_NODES)))
        await self._renew()
        if not self.draining:
            await self._rebalance(keys, live)
        await self._push()
        if not self.draining:
            await self._finish_releases()

    async def _heartbeat_and_list(self) -> set[str]:
        await self.kv.put(_NODES + self.node, b"")
        try:
            return set(await self.kv.keys())
        except nats.js.errors.NoKeysError:
            return set()

    async def _renew(self) -> None:
        items = list(self.leases.items())
        results = await asyncio.gather(
            *(self.kv.update(lease_key(kind, p), self.node.encode(), last=lease.revision) for (kind, p), lease in items),
            return_exceptions=True,
        )
        now = time.monotonic()
        for ((kind, p), lease), result in zip(items, results):
            if isinstance(result, int):
                lease.revision, lease.renewed_at = result, now
            elif isinstance(result, nats.js.errors.KeyWrongLastSequenceError):
                log.warning("lease lost to another node", node=self.node, kind=kind, partition=p)
                del self.leases[(kind, p)]
            else:
                log.warning("lease renewal failed", node=self.node, kind=kind, partition=p, error=repr(result))
        await self._expire_unrenewed()

    async def _expire_unrenewed(self) -> None:
        """Drop leases not renewed for 2/3 of the TTL: others may take them soon, and our shards
        must have stopped before they do."""
        now = time.monotonic()
        for key, lease in list(self.leases.items()):
            if now - lease.renewed_at > self.ttl * 2 / 3:
                log.warning("lease not renewed in time; dropping it", node=self.node, kind=key[0], partition=key[1])
                del self.leases[key]
        await self._push()

    async def _rebalance(self, keys: set[str], live: int) -> None:
        offset = sum(self.node.encode()) % max(1, self.partitions)
        for kind in self.kinds:
            held = [p for (k, p), lease in self.leases.items() if k == kind and not lease.releasing]
            releasing = {p for (k, p), lease in self.leases.items() if k == kind and lease.releasing}
            free = [p for p in range(self.partitions) if lease_key(kind, p) not in keys]
            for p in range(self.partitions):
                key = (kind, p)
                self._free_rounds[key] = self._free_rounds.get(key, 0) + 1 if p in free else 0
            orphans = [p for p in free if self._free_rounds[(kind, p)] > ORPHAN_ROUNDS]
            step = plan(self.partitions, live, held, [p for p in free if p not in releasing], orphans, offset)
            for p in step.claim:
                try:
                    revision = await self.kv.create(lease_key(kind, p), self.node.encode())
                except nats.js.errors.KeyWrongLastSequenceError:
                    continue  # another node was faster
                self.leases[(kind, p)] = _Lease(revision, time.monotonic())
            if step.claim:
                log.info("claimed partitions", node=self.node, kind=kind, live_nodes=live,
                         partitions=sorted(p for (k, p) in self.leases if k == kind and p in step.claim))
            for p in step.release:
                self.leases[(kind, p)].releasing = True
            if step.release:
                log.info("handing off partitions", node=self.node, kind=kind, live_nodes=live,
                         partitions=list(step.release))

    async def _push(self) -> None:
        if self.draining:
            return  # the Guardian is stopping every shard anyway
        owned = self.owned()
        if owned != self._assigned:
            await self.assign(owned)
            self._assigned = owned

    async def _finish_releases(self) -> None:
        pending = [(key, lease) for key, lease in self.leases.items() if lease.releasing]
        if not pending:
            return
        hosted = await self.hosted()
        for (kind, p), lease in pending:
            if p in hosted.get(kind, set()):
                continue  # its shard has not flushed and stopped yet
            await self._delete(kind, p, lease)

    async def _delete(self, kind: str, p: int, lease: _Lease) -> None:
        try:
            await self.kv.delete(lease_key(kind, p), last=lease.revision)
        except Exception as exc:  # it lapses after the TTL anyway
            log.warning("lease release failed", node=self.node, kind=kind, partition=p, error=repr(exc))
        self.leases.pop((kind, p), None)

    async def release_all(self) -> None:
        """After the shards stopped: give every lease back, and the heartbeat."""
        for (kind, p), lease in list(self.leases.items()):
            await self._delete(kind, p, lease)
        try:
            await self.kv.delete(_NODES + self.node)
        except Exception as exc:
            log.warning("heartbeat removal failed", node=self.node, error=repr(exc))
