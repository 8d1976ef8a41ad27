"""A shard's I/O thread: NATS in, flushes out, handing work to the actor thread through a queue.

The actor thread (Thespian) must never block on I/O, and nats-py needs an event loop, so each shard
runs one asyncio loop in a daemon thread. The loop:

- binds one durable pull consumer per owned partition and fetches in batches; a message that does
  not decode (or belongs to another partition) is dead-lettered and acked at once; the entities a
  batch needs are loaded (batched) before the batch is queued for the actor thread;
- answers request/reply queries the same way (load, then queue for the actor thread);
- runs the flush jobs of the actor thread (:mod:`.flusher`): a failing flush is retried and
  nothing is acked; fetching pauses until it succeeds (back-pressure). Pulls are
  :mod:`clipstream.bus.pull`'s.

Each queued item is followed by one byte on a socketpair that the actor watches (ThespianWatch).
"""

from __future__ import annotations

import asyncio
import gc
import queue
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

import msgspec
import nats
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from clipstream.actors.entity import EntityKind
from clipstream.actors.handoff import Batch, BridgeFailed, Evict, FlushDone, FlushJob, Inbound, QueryItem
from clipstream.actors.messages import RuntimeOptions
from clipstream.actors.flusher import Flusher
from clipstream.bus.timings import Timings, loop_lag
from clipstream.bus.codec import DecodeError, decode, encode, partition_of
from clipstream.bus.connection import connect_nats
from clipstream.bus.consumer import dead_letter_record
from clipstream.bus.pull import AckRef, Puller, bind_partition, stream_seq
from clipstream.bus.rpc import ERROR_HEADER, READ_AFTER_WAIT, Query, encode_error
from clipstream.bus.tasks import stop_tasks
from clipstream.bus.topology import Topology, ensure_streams
from clipstream.config.settings import Settings

if TYPE_CHECKING:
    from clipstream.actors.host import Reply

__all__ = ["Bridge"]

log = structlog.get_logger("clipstream.actors.bridge")

_query_decoder = msgspec.json.Decoder(Query)


class Bridge:
    """The asyncio side of one shard. Methods without a leading underscore are thread-safe and are
    called from the actor thread; everything else runs on the bridge's own loop."""

    def __init__(
        self,
        kind: EntityKind[Any],
        partitions: Iterable[int],
        settings: Settings,
        options: RuntimeOptions,
        inbox: "queue.SimpleQueue[Inbound]",
        wake: socket.socket,
        answer_now: "Callable[[int, bytes, str], Reply | None] | None" = None,
        timings: Timings | None = None,
    ) -> None:
        self.kind = kind
        self.partitions = tuple(partitions)
        self.settings = settings
        self.options = options
        self.topology = Topology.from_settings(settings.nats)
        self._inbox = inbox
        self._wake = wake
        #: answers a query of an active entity right here, under the actor's lock (None: it is
        #: not in the actor's memory yet, queue the query behind what is being activated)
        self._answer_now = answer_now
        self.timings = timings or Timings()
        kind.timings = self.timings
        #: keys with bus messages handed to the actor and not applied yet (read-your-writes: a
        #: query of such a key goes through the queue, behind them, instead of being answered
        #: here first; the taste bench's probes saw 5 % of pages asked 250 ms after a like's
        #: 200 miss it). Incremented here, decremented by the actor thread, under ``_pending_lock``.
        self._pending: dict[int, int] = {}
        self._pending_lock = threading.Lock()
        #: partition -> the highest stream sequence fetched and queued (at first its ack floor),
        #: and the queries waiting for it to reach their ``after`` (read-your-writes; on the loop)
        self._fetched_seq: dict[int, int] = {}
        self._seq_waiters: dict[int, list[tuple[int, asyncio.Future[None]]]] = {}
        self._wake.setblocking(False)
        self._owned = frozenset(self.partitions)
        self._thread = threading.Thread(target=self._run, name=f"bridge-{kind.name}", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        # State below is only touched on the loop.
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._subs: dict[int, JetStreamContext.PullSubscription] = {}
        self._active: set[int] = set()
        self._healthy: asyncio.Event | None = None
        self._flush_q: asyncio.Queue[FlushJob | None] | None = None
        self._flush: Flusher | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._main_task: asyncio.Task[None] | None = None
        self._done: asyncio.Event | None = None
        self._fetchers: list[asyncio.Task[None]] = []
        #: serializes add_partitions calls (set once the bridge is ready)
        self._adding: asyncio.Lock | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._lag: asyncio.Task[None] | None = None
        self._fatal: BaseException | None = None
        # Read by the actor thread for stats; plain ints/floats, so torn reads do not matter.
        self.ready = False
        self.error = ""
        self.backlog = 0
        self.dead_letters = 0
        self.fetches = 0
        self.fetched = 0

    @property
    def flush_failures(self) -> int:
        return self._flush.failures if self._flush is not None else 0

    # --- actor-thread API ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._started.wait(5.0)

    def submit_flush(self, job: FlushJob) -> None:
        self._call(lambda: self._flush_q.put_nowait(job))  # type: ignore[union-attr]

    def send_replies(self, replies: list[tuple[str, bytes, bool]]) -> None:
        self._call(lambda: self._spawn(self._send_replies(replies)))

    def passivate(self, keys: list[int], asked_at: float) -> None:
        self._call(lambda: self._passivate(keys, asked_at))

    def mark_active(self, keys: list[int]) -> None:
        self._call(lambda: self._active.update(keys))

    def add_partitions(self, partitions: Iterable[int]) -> None:
        """Start consuming more partitions (the node took them over). Only once :attr:`ready`: the
        start-up binds the first set and must not race with this."""
        self._call(lambda: self._spawn(self._add(tuple(partitions))))

    def stop(self, final_job: FlushJob | None) -> None:
        """Stop fetching, run the pending flushes (the last one included) within the stop timeout,
        close NATS and end the thread. Blocks the caller (the shard is exiting anyway)."""
        loop = self._loop
        timeout = self.options.stop_timeout
        if loop is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._stop(final_job, timeout), loop)
            try:
                future.result(timeout + 1.0)
            except Exception as exc:
                log.warning("bridge stop incomplete", kind=self.kind.name, error=repr(exc))
        self._thread.join(timeout=2.0)

    def _call(self, fn: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn)
            except RuntimeError:  # loop closed between the check and the call: shard is stopping
                pass

    # --- thread & setup -----------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._main_task = loop.create_task(self._main())
        self._started.set()
        try:
            loop.run_until_complete(self._main_task)
        except asyncio.CancelledError:
            pass  # stopped before it was ready
        except Exception as exc:  # anything escaping is a bug or a lost connection we cannot fix
            log.exception("bridge failed", kind=self.kind.name)
            self.error = repr(exc)
            self._push(BridgeFailed(repr(exc)))
        finally:
            loop.close()

    def applied(self, batch: Batch) -> None:
        """Called by the actor thread once ``batch`` is applied: its keys are no longer pending."""
        with self._pending_lock:
            pending = self._pending
            for key, _, _, _ in batch.items:
                left = pending.get(key, 0) - 1
                if left > 0:
                    pending[key] = left
                else:
                    pending.pop(key, None)

    def _push(self, item: Inbound) -> None:
        self._inbox.put(item)
        try:
            self._wake.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # the socket buffer is full of wake-ups already: the actor will drain the queue
        except OSError:
            pass  # the actor side is gone

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def _main(self) -> None:
        self._healthy = asyncio.Event()
        self._healthy.set()
        self._flush_q = asyncio.Queue()
        self._done = asyncio.Event()
        await self._connect()
        assert self._nc is not None
        for p in self.partitions:
            self._subs[p] = await self._bind(p)
        for p in self.partitions:
            await self._nc.subscribe(
                self.topology.rpc_subject(self.kind.name, p), queue=f"rpc-{self.kind.name}-{p}", cb=self._on_query
            )
        self._fetchers = [asyncio.create_task(self._fetch_loop(p, sub)) for p, sub in self._subs.items()]
        self._flush = Flusher(self.kind, self._nc, self._flush_q, self._healthy,  # type: ignore[arg-type]
                              self.options.flush_retry_max, lambda job_id: self._push(FlushDone(job_id)),
                              self.timings["store_write"])
        self._flusher = asyncio.create_task(self._flush.run())
        self._monitor = asyncio.create_task(self._backlog_loop())
        self._lag = asyncio.create_task(loop_lag(self.timings["loop_lag"]))
        for task in (*self._fetchers, self._flusher, self._monitor):
            task.add_done_callback(self._task_ended)
        self._adding = asyncio.Lock()
        self.ready = True
        # What start-up made (modules, driver and cluster metadata, ~64k objects) is never
        # garbage: out of the collector's sight, a full collection scans what came since. A feed
        # run's full collections measured 37-146 ms of wall time in a shard before, 2-42 after.
        gc.freeze()
        log.info("shard bridge ready", kind=self.kind.name, partitions=self.partitions, frozen=gc.get_freeze_count())
        await self._done.wait()
        if self._fatal is not None:
            raise self._fatal

    def _task_ended(self, task: "asyncio.Task[None]") -> None:
        """A loop task that dies takes the bridge with it. A fetcher that stopped between
        receiving messages and queueing them would let later messages of its partition overtake
        them, and entities would then skip them as already applied; a restart re-reads the
        partition from its ack floor instead."""
        if task.cancelled() or task.exception() is None or self._fatal is not None:
            return
        self._fatal = task.exception()
        log.error("bridge task failed", kind=self.kind.name, error=repr(self._fatal))
        assert self._done is not None
        self._done.set()

    async def _connect(self) -> None:
        async def closed() -> None:
            log.info("nats connection closed", kind=self.kind.name)

        async def error(exc: Exception) -> None:
            log.warning("nats error", kind=self.kind.name, error=repr(exc))

        def failed(rs: Any) -> None:
            self.error = f"NATS setup at {self.settings.nats.url} failed: {rs.outcome.exception()!r}"
            log.warning("nats setup failed; retrying", kind=self.kind.name, error=self.error)

        async for attempt in AsyncRetrying(wait=wait_exponential(multiplier=0.2, max=5.0), before_sleep=failed):
            with attempt:
                self._nc = await connect_nats(
                    self.settings.nats,
                    f"clipstream-shard-{self.kind.name}-{min(self.partitions, default=0)}",
                    closed_cb=closed,
                    error_cb=error,
                )
                self._js = self._nc.jetstream(timeout=self.settings.nats.timeout)
                await ensure_streams(self._js, self.topology, self.settings.nats.replicas)
        self.error = ""

    async def _bind(self, partition: int) -> JetStreamContext.PullSubscription:
        assert self._js is not None
        return await bind_partition(self._js, self.topology, self.kind.name, partition,
                                    ack_wait=self.options.ack_wait, max_ack_pending=self.options.max_ack_pending)

    async def _add(self, partitions: tuple[int, ...]) -> None:
        """Bind the added partitions at their ack floor, like the first ones; a failure is fatal
        (the shard restarts with its whole new set, which the Guardian already recorded)."""
        if self._adding is None or self._nc is None:
            self._fail(RuntimeError("partitions added before the bridge was ready"))
            return
        async with self._adding:
            try:
                for p in partitions:
                    if p in self._subs:
                        continue
                    sub = await self._bind(p)
                    self._subs[p] = sub
                    await self._nc.subscribe(
                        self.topology.rpc_subject(self.kind.name, p), queue=f"rpc-{self.kind.name}-{p}",
                        cb=self._on_query,
                    )
                    self._owned = self._owned | {p}
                    self.partitions = tuple(sorted(self._owned))
                    task = asyncio.create_task(self._fetch_loop(p, sub))
                    task.add_done_callback(self._task_ended)
                    self._fetchers.append(task)
            except Exception as exc:
                self._fail(exc)
                return
        log.info("shard took more partitions", kind=self.kind.name, added=partitions, partitions=self.partitions)

    def _fail(self, exc: BaseException) -> None:
        """End the bridge with ``exc``: the shard exits and its Guardian restarts it."""
        if self._fatal is None and self._done is not None:
            self._fatal = exc
            log.error("bridge failed", kind=self.kind.name, error=repr(exc))
            self._done.set()

    # --- inbound ------------------------------------------------------------------------------

    async def _fetch_loop(self, partition: int, sub: JetStreamContext.PullSubscription) -> None:
        assert self._healthy is not None and self._nc is not None
        puller: Puller | None = None
        while True:
            await self._healthy.wait()
            try:
                if puller is None:
                    puller = await Puller.open(self._nc, sub)
                    self._advance(partition, puller.floor)
                msgs = await puller.fetch(self.options.fetch_batch, timeout=self.options.fetch_timeout)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection trouble: nats-py reconnects, we retry
                log.warning("fetch failed", kind=self.kind.name, partition=partition, error=repr(exc))
                await asyncio.sleep(0.5)
                continue
            if not msgs:
                continue
            self.fetches += 1
            self.fetched += len(msgs)
            await self._ingest(partition, msgs)
            self._advance(partition, stream_seq(msgs[-1]))  # queued (or dead-lettered): a query may go

    def _advance(self, partition: int, seq: int) -> None:
        """The partition is fetched and queued up to ``seq``: release the queries waiting for it."""
        if seq <= self._fetched_seq.get(partition, 0):
            return
        self._fetched_seq[partition] = seq
        waiters = self._seq_waiters.get(partition)
        if not waiters:
            return
        left = []
        for after, waiter in waiters:
            if after <= seq:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                left.append((after, waiter))
        self._seq_waiters[partition] = left

    async def _wait_fetched(self, partition: int, after: int) -> None:
        """Until the partition is fetched up to ``after``, or :data:`READ_AFTER_WAIT` passed."""
        started = time.perf_counter()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._seq_waiters.setdefault(partition, [])
        waiters.append((after, waiter))
        try:
            await asyncio.wait((waiter,), timeout=READ_AFTER_WAIT)
        finally:
            if not waiter.done():
                waiter.cancel()
                left = self._seq_waiters.get(partition)
                if left:
                    self._seq_waiters[partition] = [w for w in left if w[1] is not waiter]
            self.timings["read_after"].observe(time.perf_counter() - started)

    async def _ingest(self, partition: int, msgs: list[Msg]) -> None:
        items = []
        key_of = self.kind.key_of
        partitions = self.settings.actors.partitions
        delivery = self.timings["delivery"].observe
        now_ms = time.time() * 1000
        for msg in msgs:
            seq = stream_seq(msg)
            try:
                message = decode(msg.data)
                key = key_of(message)
                at = getattr(message, "at", 0)
                if at:
                    delivery(max(0.0, now_ms - at) / 1000)
            except DecodeError as exc:
                await self._dead_letter_now(msg, seq, f"undecodable: {exc}")
                continue
            except Exception as exc:
                await self._dead_letter_now(msg, seq, f"no entity key: {type(exc).__name__}: {exc}")
                continue
            if partition_of(key, partitions) != partition:
                # Applying it here would activate the entity in a shard that does not own it.
                await self._dead_letter_now(
                    msg, seq, f"key {key} belongs to partition {partition_of(key, partitions)}, not {partition}"
                )
                continue
            items.append((key, seq, message, AckRef(msg.subject, msg.reply)))
        if not items:
            return
        loaded = await self._load_missing({item[0] for item in items})
        with self._pending_lock:
            pending = self._pending
            for key, _, _, _ in items:
                pending[key] = pending.get(key, 0) + 1
        self._push(Batch(items, loaded, time.perf_counter()))

    async def _load_missing(self, keys: set[int]) -> dict[int, Any]:
        """Load the keys not active; recheck after each await, because a passivation may have run
        meanwhile, and mark them active with no await before the caller queues its item."""
        loaded: dict[int, Any] = {}
        while True:
            missing = [k for k in keys if k not in self._active and k not in loaded]
            if not missing:
                break
            async for attempt in AsyncRetrying(
                wait=wait_exponential(multiplier=0.1, max=self.options.flush_retry_max),
                retry=retry_if_exception_type(Exception),
                before_sleep=lambda rs: log.warning(
                    "load failed; retrying", kind=self.kind.name, error=repr(rs.outcome.exception())
                ),
            ):
                with attempt:
                    started = time.perf_counter()
                    got = await self.kind.load(missing)
                    self.timings["load"].observe(time.perf_counter() - started)
            lost = [k for k in missing if k not in got]
            if lost:
                raise RuntimeError(f"{self.kind.name}.load returned no entity for keys {lost[:5]}")
            loaded.update(got)
        self._active.update(loaded)
        return loaded

    async def _dead_letter_now(self, msg: Msg, seq: int, reason: str) -> None:
        """Publish a DeadLetter for an undeliverable message, then ack it; on failure leave it
        unacked (it comes back after ack_wait)."""
        assert self._js is not None
        letter, msg_id = dead_letter_record(msg.subject, msg.data, seq, reason)
        try:
            await self._js.publish(
                self.topology.dlq_subject(self.kind.name), encode(letter), headers={"Nats-Msg-Id": msg_id}
            )
            await msg.ack()
        except Exception as exc:
            log.error("dead-letter publish failed", kind=self.kind.name, seq=seq, error=repr(exc))
            return
        self.dead_letters += 1
        log.warning("dead-lettered", kind=self.kind.name, subject=msg.subject, seq=seq, reason=reason[:200])

    async def _on_query(self, msg: Msg) -> None:
        try:
            query = _query_decoder.decode(msg.data)
            partition = partition_of(query.key, self.settings.actors.partitions)
            if partition not in self._owned:
                raise ValueError(f"key {query.key} is in partition {partition}, not owned here")
        except (msgspec.DecodeError, ValueError) as exc:
            await self._reply(msg.reply, encode_error(f"bad query: {exc}"), True)
            return
        if query.after > self._fetched_seq.get(partition, 0):
            # Read-your-writes: the caller's write is not fetched yet; once it is, its key is
            # pending and the query goes through the queue behind it. It waits on a task of its
            # own: nats-py hands a subscription's messages to this callback one at a time, and the
            # partition's other queries must not queue behind a wait (nor behind a forged token).
            self._spawn(self._answer_after(msg, query, partition))
            return
        await self._answer(msg, query)

    async def _answer_after(self, msg: Msg, query: Query, partition: int) -> None:
        await self._wait_fetched(partition, query.after)
        await self._answer(msg, query)

    async def _answer(self, msg: Msg, query: Query) -> None:
        if query.key in self._active and self._answer_now is not None and query.key not in self._pending:
            # The common case, an active entity: answered on this thread, without the two thread
            # hops (and their wake-ups) of the queue; it was most of a feed query's cost.
            answered = self._answer_now(query.key, bytes(query.body), msg.reply)
            if answered is not None:
                await self._reply(*answered)
                return
        try:
            loaded = await self._load_missing({query.key})
        except Exception as exc:
            await self._reply(msg.reply, encode_error(f"load failed: {exc}"), True)
            return
        self._push(QueryItem(query.key, bytes(query.body), msg.reply, loaded, time.perf_counter()))

    def _passivate(self, keys: list[int], asked_at: float) -> None:
        self._active.difference_update(keys)
        self._push(Evict(keys, asked_at))

    # --- outbound -----------------------------------------------------------------------------

    async def _reply(self, subject: str, data: bytes, error: bool) -> None:
        if not subject or self._nc is None:
            return
        try:
            await self._nc.publish(subject, data, headers={ERROR_HEADER: "1"} if error else None)
        except Exception as exc:
            log.warning("reply failed", kind=self.kind.name, error=repr(exc))

    async def _send_replies(self, replies: list[tuple[str, bytes, bool]]) -> None:
        for subject, data, error in replies:
            await self._reply(subject, data, error)

    async def _backlog_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.backlog_interval)
            total = 0
            try:
                for sub in list(self._subs.values()):  # partitions may be added meanwhile
                    info = await sub.consumer_info()
                    total += info.num_pending or 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("consumer info failed", error=repr(exc))
                continue
            self.backlog = total

    # --- stop ---------------------------------------------------------------------------------

    async def _stop(self, final_job: FlushJob | None, timeout: float) -> None:
        assert self._main_task is not None
        if self._flush_q is None or self._done is None:  # _main has not run yet
            self._main_task.cancel()
            return
        if self._flush is not None:
            self._flush.stop_deadline = time.monotonic() + timeout * 0.6
        # Ended for certain before the final job: a fetcher that lost its cancel (bus/tasks.py)
        # would go on taking messages into a stopping shard.
        await stop_tasks([*self._fetchers, self._monitor, self._lag], timeout * 0.1)
        if final_job is not None:
            self._flush_q.put_nowait(final_job)
        self._flush_q.put_nowait(None)
        flusher = self._flusher
        if flusher is not None:
            try:
                await asyncio.wait_for(flusher, timeout * 0.7)
            except (asyncio.TimeoutError, Exception) as exc:
                log.warning("final flush did not finish", kind=self.kind.name, error=repr(exc))
        if self._nc is not None and not self._nc.is_closed:
            # Not nc.drain(): it waits for pull subscriptions' pending queues, which nobody
            # consumes once the fetchers stopped, so it always ran into its timeout.
            try:
                await asyncio.wait_for(self._nc.flush(), timeout * 0.2)
            except Exception as exc:
                log.warning("nats flush on stop failed", kind=self.kind.name, error=repr(exc))
            await self._nc.close()
        if self.ready:
            self._done.set()
        else:
            self._main_task.cancel()
