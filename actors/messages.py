"""Messages between the node, the Guardian and the shard actors (Thespian pickles them).

These never travel on NATS: they are the supervision plane, a few per second at most. The data
plane (bus messages, queries) goes from NATS straight into a shard's I/O thread. The answer to
:class:`Status`, the supervision tree, does cross to other processes: it is the bus's
(:mod:`clipstream.bus.status`).
"""

from __future__ import annotations

import msgspec

from clipstream.bus.timings import StageHist
from clipstream.config.settings import ActorSettings, Settings

__all__ = [
    "AssignPartitions",
    "OwnPartitions",
    "RuntimeOptions",
    "ShardStats",
    "ShardsStopped",
    "StartShards",
    "Status",
    "StopShards",
]


class RuntimeOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Tuning of the shard runtime. The operator's knobs come from :class:`ActorSettings`
    (:meth:`from_settings`); the rest are internal pacing that tests shorten."""

    @classmethod
    def from_settings(cls, actors: ActorSettings) -> "RuntimeOptions":
        return cls(lease_ttl=actors.lease_ttl, fetch_batch=actors.fetch_batch,
                   max_ack_pending=actors.max_ack_pending, ack_wait=actors.ack_wait)

    #: most messages one pull request returns; bigger batches amortise the hop to the actor thread
    fetch_batch: int = 500
    #: seconds a pull request lingers on an idle partition; also the worst added latency of a
    #: lone message, because nats-py waits out the request once the first message arrived
    fetch_timeout: float = 0.25
    #: JetStream ack wait; messages are acked only after their flush, so this bounds a flush stall
    ack_wait: float = 30.0
    #: unacked messages a partition consumer may have out: the back-pressure bound of a shard
    max_ack_pending: int = 20_000
    #: seconds between the stats a shard pushes to its Guardian
    stats_interval: float = 1.0
    #: seconds between the consumer-info calls that measure the backlog
    backlog_interval: float = 2.0
    #: longest pause between retries of a failing flush
    flush_retry_max: float = 5.0
    #: seconds a stopping shard spends on its last flush and on draining NATS
    stop_timeout: float = 10.0
    #: longest delay before a crashed shard is restarted
    restart_backoff_max: float = 60.0
    #: seconds between the Guardian's own checks for dead shard processes (Thespian misses some)
    liveness_interval: float = 1.0
    #: entities passivated per flush tick at most (spreads the work of a mass passivation)
    passivate_batch: int = 10_000
    #: the node process (run_node) shares partitions with other nodes through leases in NATS KV;
    #: off, it owns every partition (as a Node used directly always does)
    leases: bool = True
    #: seconds a partition lease lives without renewal (renewed every third of it)
    lease_ttl: float = 6.0


class StartShards(msgspec.Struct, frozen=True, kw_only=True):
    """Node → Guardian: run ``shards`` shard actors per kind; ``kinds`` maps name → factory path."""

    node: str
    settings: Settings
    kinds: dict[str, str]
    options: RuntimeOptions = RuntimeOptions()
    #: the actor system forks a process per actor (multiprocTCPBase), so shards can die alone
    multiproc: bool = True
    #: pid of the node process; if it dies without shutting down, the actor system stops itself
    node_pid: int = 0
    #: kind → partitions the node owns at start; None: every partition (a node without leases)
    owned: dict[str, tuple[int, ...]] | None = None


class AssignPartitions(msgspec.Struct, frozen=True, kw_only=True):
    """Node → Guardian: the partitions the node now owns, by kind (from its leases). A shard whose
    part changes is stopped (it flushes and acks) and started again with its new part."""

    owned: dict[str, tuple[int, ...]]


class OwnPartitions(msgspec.Struct, frozen=True, kw_only=True):
    """Guardian → shard: the partitions of one kind this shard owns (a value, so that leases can
    later hand out the same message)."""

    kind: str
    factory: str
    partitions: tuple[int, ...]
    settings: Settings
    options: RuntimeOptions = RuntimeOptions()


class ShardStats(msgspec.Struct, frozen=True, kw_only=True):
    """Shard → Guardian, every ``stats_interval``: what the status page shows."""

    pid: int
    kind: str
    partitions: tuple[int, ...]
    entities: int = 0
    dirty: int = 0
    #: messages waiting: not yet delivered by the consumers plus queued for the actor thread
    backlog: int = 0
    processed: int = 0
    #: pull requests that returned messages, and the messages they returned
    fetches: int = 0
    fetched: int = 0
    dead_letters: int = 0
    flushes: int = 0
    flush_failures: int = 0
    #: seconds since the last successful flush (-1: none yet)
    last_flush_age: float = -1.0
    #: seconds spent in flushes (job taken → written and acked) and the latest one
    flush_seconds: float = 0.0
    last_flush_latency: float = 0.0
    #: busiest entities of the last complete hot window (a few seconds): (decimal key, messages);
    #: a string so that JSON readers without 64-bit integers (browsers) keep the id exact
    hot: tuple[tuple[str, int], ...] = ()
    poison: int = 0
    ready: bool = False
    error: str = ""
    #: estimated bytes of the shard's entities (what its memory budget is checked against)
    memory_bytes: int = 0
    #: the kind's own counters by name (:meth:`EntityKind.counters`); last, with a default, so
    #: that stats of another version still decode
    counters: dict[str, int] = msgspec.field(default_factory=dict)
    #: per-stage latency histograms (:mod:`clipstream.bus.timings`), by stage
    stages: dict[str, StageHist] = msgspec.field(default_factory=dict)


class StopShards(msgspec.Struct, frozen=True):
    """Node → Guardian before the actor system shuts down: stop restarting, stop every shard and
    answer :class:`ShardsStopped` once they all exited (or after ``timeout`` seconds).

    Thespian's own shutdown races with a shard being (re)created at that moment, and a child whose
    parent is gone before it connected stays running forever; stopping the shards first avoids it.
    """

    timeout: float = 15.0


class ShardsStopped(msgspec.Struct, frozen=True):
    #: shards that had not exited when the timeout came
    remaining: int = 0


class Status(msgspec.Struct, frozen=True):
    """Ask the Guardian for the supervision tree; answered with :class:`NodeStatus`."""
