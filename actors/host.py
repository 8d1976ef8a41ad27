"""The entities of one shard and everything the actor thread does with them.

Plain logic, no Thespian and no I/O, so it is tested directly. Activation safety rests on one rule
shared with the I/O thread: the I/O thread sends an entity it loaded only for a key it believes
inactive, and it stops believing a key active only by sending :class:`Evict` through the same FIFO
queue; the host drops an entity only on that Evict, and only if the entity is clean, its last flush
is done and it was not touched since the eviction was asked for. An entity already in the dict
always wins over a freshly loaded copy, which may be stale.

Memory: the entity dict itself is the recency order (a use pops and re-inserts the key, so the
least recently used come first); no per-entity time is kept. Instead a few *marks* record, for the
first key used in each ``mark_every`` window, the last use time before it: every entity placed
before a mark was last used no later than that time. So idle passivation walks from the front with
an upper bound on each entity's last use, good to within ``mark_every``, at no per-entity cost.
The memory budget is checked on the same walk from an estimate: entities times the mean
``size_of`` of a bounded sample (the most and the least recently used), plus the per-key
bookkeeping of this dict and of the I/O thread's active set.
"""

from __future__ import annotations

import heapq
import itertools
import sys
import time
from operator import itemgetter
from typing import Any, Callable, Generic, TypeVar

import structlog

from clipstream.actors.entity import EntityKind, Outbox, Publish
from clipstream.actors.handoff import Batch, Evict, FlushDone, FlushJob, QueryItem
from clipstream.bus.codec import encode
from clipstream.bus.consumer import dead_letter_record
from clipstream.bus.messages import BusMessage
from clipstream.bus.rpc import encode_error

__all__ = ["EntityHost", "KEY_OVERHEAD", "Reply"]

E = TypeVar("E")
log = structlog.get_logger("clipstream.actors.host")

#: (reply subject, payload, is an error)
Reply = tuple[str, bytes, bool]

#: bytes per active key outside the entity: its slot in the entity dict (index, hash, key and value
#: pointers, two-thirds full) and in the I/O thread's active set, and the key int itself
KEY_OVERHEAD = 112
#: entities whose ``size_of`` is averaged per passivation pass, from each end of the recency order
_SAMPLE = 32
#: a dict that grows resizes to three times its live keys (CPython's GROWTH_RATE), and the moves
#: of the recency order leave holes that make it grow; over this many bytes per key, a copy
#: (sized for 1.5 times its keys) halves it: 83 MB → 42 MB for a million entities
_DICT_SLACK = 64
#: distinct keys counted for "hottest entities" per window: a burst that activates a million
#: entities would otherwise double the window's dict; keys already counted keep counting
_HITS_MAX = 50_000


class EntityHost(Generic[E]):
    """Entities of one kind in a dict, with dirty tracking, write-behind jobs and passivation."""

    __slots__ = (
        "kind",
        "dlq_subject",
        "idle_passivate",
        "max_entities",
        "passivate_batch",
        "clock",
        "memory_budget",
        "mark_every",
        "memory_estimate",
        "entities",
        "marks",
        "last_touch",
        "_mark_at",
        "_last_key",
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
        memory_budget: int = 0,
    ) -> None:
        """``memory_budget``: bytes the entities may take (estimated); 0 means no budget."""
        self.kind = kind
        self.dlq_subject = dlq_subject
        self.idle_passivate = idle_passivate
        self.max_entities = max_entities
        self.passivate_batch = passivate_batch
        self.clock = clock
        self.memory_budget = memory_budget
        #: resolution of the idle bound: a sixteenth of the idle time, at most a second
        self.mark_every = min(1.0, idle_passivate / 16)
        #: the entities' estimated bytes, as of the last passivation pass
        self.memory_estimate = 0
        #: key → entity, least recently used first (a use moves the key to the end)
        self.entities: dict[int, E] = {}
        #: key → the last use before that key's use opened a new mark window (see the module doc)
        self.marks: dict[int, float] = {}
        self.last_touch = float("-inf")
        self._mark_at = float("-inf")
        self._last_key: int | None = None
        #: key → whether it was used since its passivation was asked
        self.evicting: dict[int, bool] = {}
        self.dirty: set[int] = set()
        #: key → id of the last flush job holding its state, until that job is done
        self.pending: dict[int, int] = {}
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
        entities = self.entities
        for key, entity in loaded.items():
            if key not in entities:
                entities[key] = entity
                self._touch(key, now)

    def _touch(self, key: int, now: float) -> None:
        """Move ``key`` to the most recently used end and keep the marks true."""
        if key == self._last_key:  # already the most recent: nothing moves
            self.last_touch = now
            if key in self.evicting:
                self.evicting[key] = True
            return
        self._last_key = key
        entities, marks = self.entities, self.marks
        entities[key] = entities.pop(key)
        if key in marks:
            # The keys after its old place take the next mark's bound: later, still true. It
            # keeps a mark at its new place, so that the newest window always has one.
            del marks[key]
            marks[key] = self.last_touch
        elif now - self._mark_at >= self.mark_every:
            marks[key] = self.last_touch
            self._mark_at = now
        self.last_touch = now
        if key in self.evicting:
            self.evicting[key] = True

    def apply(self, batch: Batch) -> None:
        """Hand each message to its entity; a message whose handler raises is dead-lettered."""
        now = self.clock()
        if batch.loaded:
            self._activate(batch.loaded, now)
        entities, dirty, acks, outbox = self.entities, self.dirty, self.acks, self.outbox
        publishes = outbox.publishes
        handle = self.kind.handle
        hits = self.hits
        touch = self._touch
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
            if key in hits:
                hits[key] += 1
            elif len(hits) < _HITS_MAX:
                hits[key] = 1
            touch(key, now)
        self.processed += len(batch.items)

    def dead_letter(self, subject: str, message: BusMessage, seq: int, reason: str) -> None:
        """Queue a DeadLetter on the outbox: published by the next flush, before the acks."""
        self.dead_letters += 1
        letter, msg_id = dead_letter_record(subject, encode(message), seq, reason)
        self.outbox.publishes.append(Publish(self.dlq_subject, letter, msg_id))

    def query(self, item: QueryItem) -> None:
        """Answer one query; the reply is queued on :attr:`replies`."""
        if item.loaded:
            self._activate(item.loaded, self.clock())
        self.replies.append(self.answer(item.key, item.body, item.reply))

    def answer(self, key: int, body: bytes, reply_to: str) -> Reply:
        """The reply to one query of an entity (an error reply if it is not active)."""
        entity = self.entities.get(key)
        if entity is None:
            log.error("no entity for query", kind=self.kind.name, key=key)
            return (reply_to, encode_error("entity not active; retry"), True)
        try:
            reply, became_dirty = self.kind.query(entity, body)
        except Exception as exc:
            return (reply_to, encode_error(f"{type(exc).__name__}: {exc}"), True)
        if became_dirty:
            self.dirty.add(key)
        self._touch(key, self.clock())
        return (reply_to, reply, False)

    def evict(self, item: Evict) -> list[int]:
        """Drop the evicted entities that are still idle and clean; returns the keys kept."""
        kept = []
        for key in item.keys:
            used = self.evicting.pop(key, False)
            if key not in self.entities:
                continue
            if used or key in self.dirty or key in self.pending:
                kept.append(key)
                continue
            del self.entities[key]
            self.marks.pop(key, None)
            if key == self._last_key:
                self._last_key = None
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

    def estimate_memory(self) -> int:
        """Estimated bytes of the entities: count × mean size of a bounded sample."""
        entities = self.entities
        if not entities:
            self.memory_estimate = 0
            return 0
        size_of = self.kind.size_of
        sample = [*itertools.islice(entities.values(), _SAMPLE)]
        if len(entities) > _SAMPLE:
            sample += itertools.islice(reversed(entities.values()), min(_SAMPLE, len(entities) - _SAMPLE))
        mean = sum(map(size_of, sample)) / len(sample) + KEY_OVERHEAD
        self.memory_estimate = int(mean * len(entities))
        return self.memory_estimate

    @property
    def flushing(self) -> bool:
        """A flush job was taken and is not done yet."""
        return bool(self._job_started)

    def passivation_candidates(self) -> list[int]:
        """Clean, flushed entities to passivate, least recently used first: the idle ones, and as
        many more as it takes to get under ``max_entities`` and the memory budget."""
        now = self.clock()
        if sys.getsizeof(self.entities) > _DICT_SLACK * len(self.entities) + 1_000_000:
            self.entities = dict(self.entities)  # keeps the order, drops the holes
        evicting, dirty, pending = self.evicting, self.dirty, self.pending
        over = len(self.entities) - len(evicting) - self.max_entities
        excess = 0
        if self.memory_budget:
            estimate = self.estimate_memory()
            if evicting:
                estimate -= estimate * len(evicting) // len(self.entities)
            excess = estimate - self.memory_budget
        size_of = self.kind.size_of
        marks = iter(self.marks.items())
        mark_key, bound = next(marks, (None, self.last_touch))
        idle_before = now - self.idle_passivate
        out: list[int] = []
        for key, entity in self.entities.items():
            if len(out) >= self.passivate_batch:
                break
            if key == mark_key:
                mark_key, bound = next(marks, (None, self.last_touch))
            if bound > idle_before and len(out) >= over and excess <= 0:
                break  # used too recently, and nothing is over a limit any more
            if key in dirty or key in pending or key in evicting:
                continue
            out.append(key)
            excess -= size_of(entity) + KEY_OVERHEAD
        for key in out:
            evicting[key] = False
        return out

    def take_hot(self, n: int) -> list[tuple[int, int]]:
        """The ``n`` entities with the most messages since the last call (key, messages), and a
        fresh count: the dict only ever holds the keys of one stats interval."""
        hits, self.hits = self.hits, {}
        return heapq.nlargest(n, hits.items(), key=itemgetter(1))

    def take_replies(self) -> list[Reply]:
        replies, self.replies = self.replies, []
        return replies
