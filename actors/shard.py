"""The shard actor: one Thespian actor (one process) hosting many entities of one kind.

Its handlers are thin: work arrives from the I/O thread (:mod:`clipstream.actors.bridge`) through a
queue, announced by a byte on a socketpair that Thespian watches (``ThespianWatch``, multiprocTCPBase
only); the entity logic is in :class:`clipstream.actors.host.EntityHost`. Timers
(``wakeupAfter``) drive write-behind flushes, passivation and the stats pushed to the Guardian.
"""

from __future__ import annotations

import os
import queue
import socket
import sys
import threading
import time
from datetime import timedelta
from typing import Any

import structlog
from thespian.actors import (
    ActorExitRequest,
    ActorTypeDispatcher,
    PoisonMessage,
    ThespianWatch,
    WakeupMessage,
    WatchMessage,
)

from clipstream.actors.bridge import Bridge
from clipstream.actors.handoff import Batch, BridgeFailed, Evict, FlushDone, Inbound, QueryItem
from clipstream.actors.host import EntityHost, Reply
from clipstream.actors.kinds import load_kind
from clipstream.actors.messages import OwnPartitions, ShardStats
from clipstream.bus.timings import Timings, gc_timer
from clipstream.bus.topology import Topology

__all__ = ["Shard"]

log = structlog.get_logger("clipstream.actors.shard")

_FLUSH = "flush"
_STATS = "stats"
#: inbox items handled per WatchMessage, so that timers and exit requests are not starved
_DRAIN_LIMIT = 64
#: hottest entities reported with each stats message, counted over windows of this many seconds:
#: long enough for a poller to see each window, and the top-N pass runs once per window only
_HOT = 5
_HOT_WINDOW = 5.0
#: seconds a thread may hold the GIL while the other waits for it
_SWITCH_INTERVAL = 0.0005


class Shard(ActorTypeDispatcher):
    """Hosts the entities of the partitions in its :class:`OwnPartitions` assignment."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._assignment: OwnPartitions | None = None
        self._host: EntityHost[Any] | None = None
        self._bridge: Bridge | None = None
        self._inbox: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
        self._rsock: socket.socket | None = None
        self._wsock: socket.socket | None = None
        self._guardian: Any = None
        self._poison = 0
        self._error = ""
        self._exiting = False
        self._hot: tuple[tuple[str, int], ...] = ()
        self._hot_at = time.monotonic()
        #: held while this thread works on the host, and by the I/O thread while it answers a
        #: query of an active entity directly (``_answer_now``)
        self._lock = threading.Lock()
        #: per-stage latency histograms, sent with the stats (``/metrics``)
        self._timings = Timings()

    def receiveMessage(self, message: Any, sender: Any) -> Any:
        # Thespian resets the watched sockets after every message to whatever this returns, and to
        # nothing when a handler raises, so every path must return the watch.
        try:
            super().receiveMessage(message, sender)
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            log.exception("shard handler failed; exiting", message=type(message).__name__)
            # Items taken off the inbox but not applied would be overtaken by later ones (and then
            # skipped as already applied); a restart re-reads the partitions from their ack floor.
            self._send_stats()
            self.send(self.myAddress, ActorExitRequest())
        return self._watch()

    def _watch(self) -> ThespianWatch | None:
        if self._rsock is None or self._exiting:
            return None
        return ThespianWatch([self._rsock.fileno()])

    # --- assignment ---------------------------------------------------------------------------

    def receiveMsg_OwnPartitions(self, msg: OwnPartitions, sender: Any) -> None:
        self._guardian = sender
        if self._assignment is not None:
            self._grow(msg)
            return
        self._assignment = msg
        try:
            kind = load_kind(msg.kind, msg.factory, msg.settings)
        except Exception as exc:
            # A kind that cannot be built will not be built by a restart either; the Guardian's
            # budget turns the crash loop into a 'failed' shard with this error in the status.
            self._error = f"{type(exc).__name__}: {exc}"
            log.error("kind failed to load", kind=msg.kind, error=self._error)
            self._send_stats()
            self.send(self.myAddress, ActorExitRequest())
            return
        actors = msg.settings.actors
        self._host = EntityHost(
            kind,
            Topology.from_settings(msg.settings.nats).dlq_subject(kind.name),
            idle_passivate=actors.idle_passivate,
            max_entities=actors.max_entities,
            passivate_batch=msg.options.passivate_batch,
            memory_budget=int(actors.memory_budget_mb * 1024 * 1024),
        )
        # Two threads share this process's GIL: the I/O thread and this one. Handing it over only
        # every 5 ms (CPython's default) makes each hop between them wait up to that long.
        sys.setswitchinterval(_SWITCH_INTERVAL)
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._bridge = Bridge(kind, msg.partitions, msg.settings, msg.options, self._inbox, self._wsock,
                              answer_now=self._answer_now, timings=self._timings)
        gc_timer(self._timings["gc"], self._timings["gc_full"])
        self._bridge.start()
        self.wakeupAfter(timedelta(seconds=actors.flush_interval), payload=_FLUSH)
        self.wakeupAfter(timedelta(seconds=msg.options.stats_interval), payload=_STATS)
        self._send_stats()

    def _grow(self, msg: OwnPartitions) -> None:
        """A new assignment while running: more partitions of the same kind are bound in place
        (the Guardian sends this only to a running shard); dropping partitions goes through a
        restart of the shard instead, whose stop path flushes and acks before it lets go."""
        old = self._assignment
        assert old is not None
        added = set(msg.partitions) - set(old.partitions)
        if msg.kind != old.kind or not set(old.partitions) <= set(msg.partitions) or self._bridge is None:
            log.warning("shard cannot take this assignment in place; ignoring", kind=msg.kind,
                        partitions=msg.partitions, current=old.partitions)
            return
        self._assignment = msg
        if added:
            self._bridge.add_partitions(sorted(added))

    # --- data plane ---------------------------------------------------------------------------

    def receiveMsg_WatchMessage(self, msg: WatchMessage, sender: Any) -> None:
        self._drain(_DRAIN_LIMIT)

    def _drain(self, limit: int | None) -> None:
        host, bridge, rsock = self._host, self._bridge, self._rsock
        if host is None or bridge is None or rsock is None:
            return
        try:
            while rsock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        handled = 0
        lock = self._lock
        hold, clock = self._timings["apply_hold"], time.perf_counter
        waited = self._timings["queue_wait"].observe
        while limit is None or handled < limit:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            handled += 1
            if isinstance(item, BridgeFailed):
                self._error = f"I/O thread failed: {item.reason}"
                log.error("shard exiting: I/O thread failed", reason=item.reason)
                self._send_stats()
                self.send(self.myAddress, ActorExitRequest())
                break
            with lock:  # one item at a time: a direct query waits at most one item's work
                held = clock()
                if isinstance(item, (Batch, QueryItem)) and item.queued:
                    waited(held - item.queued)
                if isinstance(item, Batch):
                    try:
                        host.apply(item)
                    finally:
                        bridge.applied(item)
                elif isinstance(item, QueryItem):
                    host.query(item)
                elif isinstance(item, FlushDone):
                    host.flush_done(item)
                    self._timings["flush"].observe(host.last_flush_latency)
                elif isinstance(item, Evict):
                    kept = host.evict(item)
                    if kept:
                        bridge.mark_active(kept)
                hold.observe(clock() - held)
        else:
            self._wake_self()  # more queued than one turn takes: come back after the mailbox
        with lock:
            replies = host.take_replies()
        if replies:
            bridge.send_replies(replies)

    def _answer_now(self, key: int, body: bytes, reply_to: str) -> Reply | None:
        """Called on the I/O thread: the reply to a query of an entity in memory, or None if it
        is not (yet) there and the query must go through the queue after its activation."""
        timings, clock = self._timings, time.perf_counter
        asked = clock()
        with self._lock:
            got = clock()
            timings["lock_wait"].observe(got - asked)
            host = self._host
            if host is None or self._exiting or key not in host.entities:
                return None
            reply = host.answer(key, body, reply_to)
            timings["query"].observe(clock() - got)
            return reply

    def _wake_self(self) -> None:
        if self._wsock is not None:
            try:
                self._wsock.send(b"\0")
            except (BlockingIOError, InterruptedError):
                pass  # the socket buffer is full of wake-ups already: the actor will drain the queue
            except OSError as exc:  # the socket pair is closed: only while the shard stops
                log.warning("shard could not wake its actor thread", pid=os.getpid(), error=repr(exc))

    # --- timers -------------------------------------------------------------------------------

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        if self._assignment is None or self._exiting:
            return
        if msg.payload == _FLUSH:
            self._flush_tick()
            self.wakeupAfter(timedelta(seconds=self._assignment.settings.actors.flush_interval), payload=_FLUSH)
        elif msg.payload == _STATS:
            self._send_stats()
            self.wakeupAfter(timedelta(seconds=self._assignment.options.stats_interval), payload=_STATS)

    def _flush_tick(self) -> None:
        host, bridge = self._host, self._bridge
        if host is None or bridge is None:
            return
        # One job in flight at a time: while a flush runs, the next one gathers every entity
        # dirtied meanwhile, so the batch grows with the flush latency instead of flushes of a
        # hot entity queueing up behind a slow store (one row per entity per job).
        # And after a slow flush, a pause of ``kind.flush_rest`` times its length before the next
        # (counters: twice, so the I/O thread spends at most a third of its time writing, the
        # rest fetching; one row per dirty entity costs the same for one event or a hundred).
        with self._lock:
            held = time.perf_counter()
            last = host.last_flush_at
            rested = last is None or time.monotonic() - last >= host.kind.flush_rest * host.last_flush_latency
            job = host.take_flush_job() if not host.flushing and rested else None
            candidates = host.passivation_candidates()
            self._timings["tick_hold"].observe(time.perf_counter() - held)
        if job is not None:
            bridge.submit_flush(job)
        if candidates:
            bridge.passivate(candidates, time.monotonic())

    def _send_stats(self) -> None:
        msg, host, bridge = self._assignment, self._host, self._bridge
        if msg is None or self._guardian is None:
            return
        now = time.monotonic()
        if host is not None and now - self._hot_at >= _HOT_WINDOW:
            with self._lock:
                self._hot = tuple((str(k), n) for k, n in host.take_hot(_HOT))
            self._hot_at = now
        counters: dict[str, int] = {}
        if host is not None:
            with self._lock:  # the I/O thread may be answering a query (and counting it) meanwhile
                counters = host.kind.counters()
        age = -1.0
        if host is not None and host.last_flush_at is not None:
            age = round(time.monotonic() - host.last_flush_at, 3)
        stats = ShardStats(
            pid=os.getpid(),
            kind=msg.kind,
            partitions=msg.partitions,
            entities=len(host.entities) if host else 0,
            dirty=len(host.dirty) if host else 0,
            backlog=(bridge.backlog + self._inbox.qsize()) if bridge else 0,
            processed=host.processed if host else 0,
            fetches=bridge.fetches if bridge else 0,
            fetched=bridge.fetched if bridge else 0,
            dead_letters=(host.dead_letters if host else 0) + (bridge.dead_letters if bridge else 0),
            flushes=host.flushes if host else 0,
            flush_failures=bridge.flush_failures if bridge else 0,
            last_flush_age=age,
            flush_seconds=round(host.flush_seconds, 6) if host else 0.0,
            last_flush_latency=round(host.last_flush_latency, 6) if host else 0.0,
            hot=self._hot,
            poison=self._poison,
            ready=bool(bridge and bridge.ready),
            error=self._error or (bridge.error if bridge else ""),
            memory_bytes=host.memory_estimate if host else 0,
            counters=counters,
            stages=self._timings.snapshot(),
        )
        self.send(self._guardian, stats)

    # --- supervision --------------------------------------------------------------------------

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender: Any) -> None:
        if self._exiting:
            return
        self._exiting = True
        host, bridge = self._host, self._bridge
        if host is not None and bridge is not None:
            self._drain(None)
            with self._lock:
                job = host.take_flush_job()
            bridge.stop(job)
            log.info("shard stopped", kind=host.kind.name, processed=host.processed)
        for sock in (self._rsock, self._wsock):
            if sock is not None:
                sock.close()
        self._rsock = self._wsock = None

    def receiveMsg_PoisonMessage(self, msg: PoisonMessage, sender: Any) -> None:
        # Something we sent made its receiver fail twice; count it and go on.
        self._poison += 1
        log.error("poison message returned", to=str(sender), message=repr(msg.poisonMessage)[:200],
                  details=str(msg.details)[:500])

    def receiveUnrecognizedMessage(self, msg: Any, sender: Any) -> None:
        log.warning("shard ignored a message", message=type(msg).__name__)
