"""The contract between the shard runtime and the entities it hosts.

An entity is a plain Python object holding one key's hot state (a user's feed, a video's counts).
It never imports Thespian or a driver. An :class:`EntityKind` says how entities of one kind are
loaded, how they handle bus messages and queries, and how their dirty state is flushed; the shard
runtime (:mod:`clipstream.actors.shard`) does everything else: consuming the partitions it owns,
activation, batching, write-behind, acks, passivation and dead-lettering.

Threads: ``load`` and ``flush`` are coroutines run on the shard's asyncio I/O thread; ``handle``,
``query`` and ``snapshot`` run on the actor thread, one message at a time, and must not block.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from clipstream.bus.messages import BusMessage

if TYPE_CHECKING:
    from clipstream.bus.timings import Timings

__all__ = ["EntityKind", "Outbox", "Publish"]

E = TypeVar("E")


class Publish(msgspec.Struct, frozen=True):
    """A bus message an entity emits; published (with ``msg_id`` for de-duplication) during the
    flush that covers the message which caused it, before that message is acked."""

    subject: str
    message: BusMessage
    msg_id: str


class Outbox:
    """Collects what one handled message emits."""

    __slots__ = ("publishes",)

    def __init__(self) -> None:
        self.publishes: list[Publish] = []

    def publish(self, subject: str, message: BusMessage, msg_id: str) -> None:
        self.publishes.append(Publish(subject, message, msg_id))


class EntityKind(abc.ABC, Generic[E]):
    """One kind of entity: its partitioned subject family and its load/handle/flush logic."""

    #: subject family and consumer name part: "counter" or "feed"
    name: str

    #: pause after a flush before the shard takes the next, in multiples of that flush's latency.
    #: It pays where a flush costs per dirty entity (one row however many events it covers):
    #: resting lets more events gather per row. Where a flush costs per event, resting only
    #: delays the work and lets unacked messages pile up.
    flush_rest: float = 2.0

    #: the shard's per-stage histograms (:mod:`clipstream.bus.timings`), set by the shard's
    #: I/O thread before the first load, so that a kind can time stages of its own
    timings: "Timings | None" = None

    @abc.abstractmethod
    def key_of(self, message: BusMessage) -> int:
        """The entity key a bus message is addressed to."""

    @abc.abstractmethod
    async def load(self, keys: list[int]) -> dict[int, E]:
        """Activate entities: their state from storage (batched); a key with no state gets a fresh one."""

    @abc.abstractmethod
    def handle(self, entity: E, message: BusMessage, seq: int, outbox: Outbox) -> bool:
        """Apply one message (``seq`` is its stream sequence); return True if the entity became dirty.

        Must be idempotent under redelivery: a message whose ``seq`` the entity already applied
        (its flushed state says so) changes nothing.
        """

    def query(self, entity: E, request: bytes) -> tuple[bytes, bool]:
        """Answer a request/reply query addressed to this entity: (reply bytes, became dirty)."""
        raise NotImplementedError(f"{self.name} entities answer no queries")

    @abc.abstractmethod
    def snapshot(self, entity: E) -> Any:
        """A copy of the entity's dirty state for the flush; after this the entity is clean."""

    @abc.abstractmethod
    async def flush(self, snapshots: list[Any]) -> None:
        """Write snapshots to Scylla and Redis in batches; raise to have the flush retried."""

    def size_of(self, entity: E) -> int:
        """Approximate bytes held by an entity, for the shard's memory budget."""
        return 256

    def counters(self) -> dict[str, int]:
        """Monotonic counters of this kind in this shard process, exported by name (the shard's
        stats carry them to the status tree, ``/metrics`` and ``clipstream actors``). They start
        from zero with the process, like the shard's own counters; a kind with none returns ``{}``."""
        return {}
