"""The entities of one shard and everything the actor thread does with them.

Plain logic, no Thespian and no I/O, so it is tested directly. Activation safety rests on one rule
shared with the I/O thread: the I/O thread sends an entity it loaded only for a key it believes
inactive, and it stops believing a key active only by sending :class:`Evict` through the same FIFO
queue; the host drops an entity only on that Evict, and only if the entity is clean, its last flush
is done and it was not touched since the eviction was asked for. An entity already in the dict
always wins over a freshly loaded copy, which may be stale.
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from operator import itemgetter
from typing import Any, Callable, Generic, TypeVar

import structlog

from clipstream.actors.entity import EntityKind, Outbox, Publish
from clipstream.actors.handoff import Batch, Evict, FlushDone, FlushJob, QueryItem
from clipstream.actors.rpc import encode_error
from clipstream.bus.codec import encode
from clipstream.bus.consumer import dead_letter_record
from clipstream.bus.messages import BusMessage

__all__ = ["EntityHost", "Reply"]

E = TypeVar("E")
log = structlog.get_logger("clipstream.actors.host")

#: (reply subject, payload, is an error)
Reply = tuple[str, bytes, bool]


class EntityHost(Generic[E]):
    """Entities of one kind in a dict, with dirty tracking, write-behind jobs and passivation."""

    __slots__ = (
        "kind",
        "dlq_subject",
        "idle_passivate",
        "max_entities",
        "passivate_batch",
        "clock",
        "entities",
        "lru",
        "dirty",
        "pending",
        "evicting",
        "outbox",
        "acks",
        "replies",
        "processed",
        "dead_letters",
        "flushes",
        "last_flush_at",
        "flush_seconds",
        "last_flush_latency",
        "hits",
        "_job_id",
        "_job_started",
        "_job_keys",
    )

    def __init__(
        self,
        kind: EntityKind[E],
        dlq_subject: str,
        idle_passivate: float,
        max_entities: int,
        passivate_batch: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kind = kind
        self.dlq_subject = dlq_subject
        self.idle_passivate = idle_passivate
        self.max_entities = max_entities
        self.passivate_batch = passivate_batch
        self.clock = clock
        self.entities: dict[int, E] = {}
        #: key → last use, least recently used first
        self.lru: OrderedDict[int, float] = OrderedDict()
        self.dirty: set[int] = set()
        #: key → id of the last flush job holding its state, until that job is done
        self.pending: dict[int, int] = {}
        self.evicting: set[int] = set()
        self.outbox = Outbox()
        #: JetStream messages applied since the last job, acked after the next flush
        self.acks: list[Any] = []
        #: query replies produced since the I/O thread was last handed them
        self.replies: list[Reply] = []
        self.processed = 0
        self.dead_letters = 0
        self.flushes = 0
        self.last_flush_at: float | None = None
        #: seconds from taking a flush job to its FlushDone (write + acks), summed and the last one
        self.flush_seconds = 0.0
        self.last_flush_latency = 0.0
        #: messages per entity since the last :meth:`take_hot`: one dict increment per message is
        #: the whole cost of the operator's "hottest entities"
        self.hits: dict[int, int] = {}
        self._job_id = 0
        self._job_started: dict[int, float] = {}
        self._job_keys: dict[int, list[int]] = {}

    # --- inbound ------------------------------------------------------------------------------

    def _activate(self, loaded: dict[int, E], now: float) -> None:
        for key, entity in loaded.items():
            if key not in self.entities:
                self.entities[key] = entity
                self.lru[key] = now

    def apply(self, batch: Batch) -> None:
        """Hand each message to its entity; a message whose handler raises is dead-lettered."""
        now = self.clock()
        if batch.loaded:
            self._activate(batch.loaded, now)
        entities, lru, dirty, acks, outbox = self.entities, self.lru, self.dirty, self.acks, self.outbox
        publishes = outbox.publishes
        handle = self.kind.handle
        hits = self.hits
        for key, seq, message, raw in batch.items:
            entity = entities.get(key)
            if entity is None:
                # Broken activation invariant: leave it unacked so that it comes back, and say so.
                log.error("no entity for message", kind=self.kind.name, key=key, seq=seq)
                continue
            mark = len(publishes)
            try:
                if handle(entity, message, seq, outbox):
                    dirty.add(key)
            except Exception as exc:  # an entity bug must not stop the partition
                del publishes[mark:]
                self.dead_letter(getattr(raw, "subject", ""), message, seq, f"handler raised {type(exc).__name__}: {exc}")
            acks.append(raw)
            hits[key] = hits.get(key, 0) + 1
            lru[key] = now
            lru.move_to_end(key)
        self.processed += len(batch.items)

    def dead_letter(self, subject: str, message: BusMessage, seq: int, reason: str) -> None:
        """Queue a DeadLetter on the outbox: published by the next flush, before the acks."""
        self.dead_letters += 1
        letter, msg_id = dead_letter_record(subject, encode(message), seq, reason)
        self.outbox.publishes.append(Publish(self.dlq_subject, letter, msg_id))

    def query(self, item: QueryItem) -> None:
        """Answer one query; the reply is queued on :attr:`replies`."""
        now = self.clock()
        if item.loaded:
            self._activate(item.loaded, now)
        entity = self.entities.get(item.key)
        if entity is None:
            log.error("no entity for query", kind=self.kind.name, key=item.key)
            self.replies.append((item.reply, encode_error("entity not active; retry"), True))
            return
        try:
            reply, became_dirty = self.kind.query(entity, item.body)
        except Exception as exc:
            self.replies.append((item.reply, encode_error(f"{type(exc).__name__}: {exc}"), True))
            return
        if became_dirty:
            self.dirty.add(item.key)
        self.lru[item.key] = now
        self.lru.move_to_end(item.key)
        self.replies.append((item.reply, reply, False))

    def evict(self, item: Evict) -> list[int]:
        """Drop the evicted entities that are still idle and clean; returns the keys kept."""
        kept = []
        for key in item.keys:
            self.evicting.discard(key)
            last = self.lru.get(key)
            if last is None:
                continue
            if key in self.dirty or key in self.pending or last > item.asked_at:
                kept.append(key)
                continue
            del self.entities[key]
            del self.lru[key]
        return kept

    def flush_done(self, done: FlushDone) -> None:
        for key in self._job_keys.pop(done.job_id, ()):
            if self.pending.get(key) == done.job_id:
                del self.pending[key]
        self.flushes += 1
        self.last_flush_at = self.clock()
        started = self._job_started.pop(done.job_id, None)
        if started is not None:
            self.last_flush_latency = self.last_flush_at - started
            self.flush_seconds += self.last_flush_latency

    # --- outbound -----------------------------------------------------------------------------

    def take_flush_job(self) -> FlushJob | None:
        """Snapshot the dirty entities into a job with the publishes and acks they cover."""
        if not self.dirty and not self.acks and not self.outbox.publishes:
            return None
        self._job_id += 1
        job_id = self._job_id
        keys = list(self.dirty)
        snapshot = self.kind.snapshot
        snapshots = [snapshot(self.entities[k]) for k in keys]
        for key in keys:
            self.pending[key] = job_id
        self._job_keys[job_id] = keys
        self._job_started[job_id] = self.clock()
        job = FlushJob(job_id, snapshots, self.outbox.publishes, self.acks)
        self.dirty = set()
        self.outbox = Outbox()
        self.acks = []
        return job

    def passivation_candidates(self) -> list[int]:
        """Idle (or least recently used, over ``max_entities``) entities that are clean and flushed."""
        now = self.clock()
        over = len(self.entities) - len(self.evicting) - self.max_entities
        out: list[int] = []
        for key, last in self.lru.items():
            if len(out) >= self.passivate_batch:
                break
            if now - last < self.idle_passivate and len(out) >= over:
                break
            if key in self.dirty or key in self.pending or key in self.evicting:
                continue
            out.append(key)
        self.evicting.update(out)
        return out

    def take_hot(self, n: int) -> list[tuple[int, int]]:
        """The ``n`` entities with the most messages since the last call (key, messages), and a
        fresh count: the dict only ever holds the keys of one stats interval."""
        hits, self.hits = self.hits, {}
        return heapq.nlargest(n, hits.items(), key=itemgetter(1))

    def take_replies(self) -> list[Reply]:
        replies, self.replies = self.replies, []
        return replies
