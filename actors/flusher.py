"""A shard's write-behind: its flush jobs, one at a time, in order, on the shard's I/O loop.

A job is what the actor thread took from its entities at one flush: the outbox publishes, the
dirty entities' snapshots and the acks of the messages they cover. It runs as publishes (with
their msg-ids), then ``kind.flush``, then the acks. A failing step is retried with backoff and
nothing is acked meanwhile; the first failure clears ``healthy``, which pauses every fetch of the
shard until a flush goes through (back-pressure: what waits, waits in JetStream).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import structlog
from nats.aio.client import Client as NATS
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from clipstream.actors.entity import EntityKind, Publish
from clipstream.actors.handoff import FlushJob
from clipstream.bus.timings import Hist
from clipstream.bus.codec import encode
from clipstream.bus.inbox import YIELD_EVERY
from clipstream.bus.jetpub import JetPublisher
from clipstream.bus.pull import ACK

__all__ = ["Flusher"]

log = structlog.get_logger("clipstream.actors.flusher")

#: outbox publishes in flight together (bench/jetpub.py: ~78k/s and ~9 µs of CPU each in chunks
#: of 4,096, against ~27k/s and ~31 µs with nats-py's publish gathered 256 at a time)
_PUBLISH_CHUNK = 4096
#: seconds a chunk's acks may take before the whole chunk is retried
_PUBLISH_TIMEOUT = 15.0


class _Stopping(Exception):
    """Raised inside retry loops when the shard stops: give up instead of retrying."""


class Flusher:
    """Runs the jobs put on ``jobs`` until it gets None; ``done(job_id)`` after each one."""

    def __init__(self, kind: EntityKind[Any], nc: NATS, jobs: "asyncio.Queue[FlushJob | None]",
                 healthy: asyncio.Event, retry_max: float, done: Callable[[int], None],
                 write_timer: Hist | None = None) -> None:
        self.kind = kind
        self.nc = nc
        self.publisher = JetPublisher(nc)
        self.jobs = jobs
        self.healthy = healthy
        self.retry_max = retry_max
        self.done = done
        #: the kind's store writes (``kind.flush``), one observation per attempt that succeeded
        self.write_timer = write_timer or Hist()
        #: failed attempts so far (the operator's view shows them)
        self.failures = 0
        #: set when the shard stops: past it, a failing job is given up (its messages come back)
        self.stop_deadline: float | None = None

    def _retrying(self, what: str) -> AsyncRetrying:
        def before_sleep(rs: Any) -> None:
            self.failures += 1
            self.healthy.clear()  # stop fetching until the flush goes through
            log.warning(f"{what} failed; retrying", kind=self.kind.name, attempt=rs.attempt_number,
                        error=repr(rs.outcome.exception()))
            if self.stop_deadline is not None and time.monotonic() > self.stop_deadline:
                raise _Stopping(what)

        return AsyncRetrying(
            wait=wait_exponential(multiplier=0.1, max=self.retry_max),
            retry=retry_if_exception_type(Exception),
            before_sleep=before_sleep,
            reraise=True,
        )

    async def run(self) -> None:
        while True:
            job = await self.jobs.get()
            if job is None:
                return
            try:
                # Publishes first: if the process dies before the state is written, the messages
                # are applied again and publish again under the same msg-ids, which JetStream
                # drops as duplicates. The other order loses them: once the state is written the
                # redelivered messages are skipped as already applied, and publish nothing.
                if job.publishes:
                    async for attempt in self._retrying("outbox publish"):
                        with attempt:
                            await self._publish_all(job.publishes)
                if job.snapshots:
                    async for attempt in self._retrying("flush"):
                        with attempt:
                            started = time.perf_counter()
                            await self.kind.flush(job.snapshots)
                            self.write_timer.observe(time.perf_counter() - started)
            except _Stopping:
                log.warning("stopping with an unflushed job; its messages will be redelivered",
                            kind=self.kind.name, job=job.job_id)
                return
            try:
                publish = self.nc.publish
                for i, ref in enumerate(job.acks, 1):
                    await publish(ref.reply, ACK)
                    if i % YIELD_EVERY == 0:  # thousands of acks: the queries go on between slices
                        await asyncio.sleep(0)
            except Exception as exc:  # unacked ones come back and are skipped by the entities
                log.warning("ack failed", kind=self.kind.name, job=job.job_id, error=repr(exc))
            self.healthy.set()
            self.done(job.job_id)

    async def _publish_all(self, publishes: list[Publish]) -> None:
        """Publish with msg-ids, a whole chunk in flight at once (one round trip of waiting per
        chunk, not per few hundred: on a busy machine that wait, not the CPU, was what made a
        feed shard fall behind a like run). A retry after a partial failure is de-duplicated by
        JetStream within its duplicate window."""
        many = self.publisher.publish_many
        for i in range(0, len(publishes), _PUBLISH_CHUNK):
            chunk = publishes[i : i + _PUBLISH_CHUNK]
            await many([(p.subject, encode(p.message), p.msg_id) for p in chunk], timeout=_PUBLISH_TIMEOUT)
