"""What crosses between a shard's I/O thread and its actor thread (in memory, never pickled).

I/O thread → actor thread, in one FIFO queue (the order is what keeps activation safe):

- :class:`Batch`: decoded messages of one partition with their stream sequence, plus entities the
  I/O thread loaded because it believed them inactive;
- :class:`QueryItem`: a request/reply query, with the entity if it had to be loaded;
- :class:`Evict`: keys the I/O thread no longer considers active (answer to a passivation request);
- :class:`FlushDone`: a flush job was written and its messages acked;
- :class:`BridgeFailed`: the I/O thread died.

Actor thread → I/O thread: :class:`FlushJob` and calls on :class:`clipstream.actors.bridge.Bridge`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clipstream.actors.entity import Publish
from clipstream.bus.messages import BusMessage

__all__ = ["Batch", "BridgeFailed", "Evict", "FlushDone", "FlushJob", "Inbound", "QueryItem"]


@dataclass(slots=True)
class Batch:
    #: (entity key, stream sequence, message, the JetStream message to ack after the flush)
    items: list[tuple[int, int, BusMessage, Any]]
    loaded: dict[int, Any]
    #: ``time.perf_counter()`` when the I/O thread queued it (the ``queue_wait`` stage)
    queued: float = 0.0


@dataclass(slots=True)
class QueryItem:
    key: int
    body: bytes
    reply: str
    loaded: dict[int, Any]
    queued: float = 0.0


@dataclass(slots=True)
class Evict:
    keys: list[int]
    #: monotonic time the actor asked for it: an entity touched since then stays
    asked_at: float


@dataclass(slots=True)
class FlushDone:
    job_id: int


@dataclass(slots=True)
class BridgeFailed:
    """The I/O thread died; the shard exits so that its Guardian restarts it."""

    reason: str


Inbound = Batch | QueryItem | Evict | FlushDone | BridgeFailed


@dataclass(slots=True)
class FlushJob:
    """One write-behind step: publish ``publishes``, write ``snapshots``, then ack ``acks``."""

    job_id: int
    snapshots: list[Any]
    publishes: list[Publish]
    acks: list[Any] = field(default_factory=list)
