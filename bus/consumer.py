"""A durable JetStream pull consumer that never stops on a bad message (the worker's).

Each message is decoded with the one bus decoder and handed to the handler; it is acked only after
the handler returns. A message that does not decode, or whose handler raises :class:`Reject`, is
published to the dead-letter subject with the reason and acked. Any other exception is treated as
transient: the message is nak'ed with a delay and redelivered. Its pulls are the shards' own
(:class:`clipstream.bus.pull.Puller`); how the two differ is said there.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from clipstream.bus.codec import MAX_MESSAGE_BYTES, DecodeError, decode, encode
from clipstream.bus.messages import BusMessage, DeadLetter
from clipstream.bus.pull import Puller, stream_seq
from clipstream.bus.topology import Topology

__all__ = ["Consumer", "Reject", "RetryLater", "dead_letter", "dead_letter_record"]

log = structlog.get_logger(__name__)

Handler = Callable[[Any, Msg], Awaitable[None]]


class Reject(Exception):
    """The message is valid JSON of a known type but can never be handled: dead-letter it."""


class RetryLater(Exception):
    """The message cannot be handled yet, and when it can is known: redeliver it after ``delay``
    seconds (instead of the consumer's ``retry_delay``), without logging it as a failure."""

    def __init__(self, delay: float, why: str) -> None:
        super().__init__(why)
        self.delay = delay


#: bytes of a dead message kept in its DeadLetter (its full size is recorded beside them)
DLQ_PAYLOAD_KEEP = MAX_MESSAGE_BYTES // 8


def dead_letter_record(origin_subject: str, payload: bytes, stream_seq: int, reason: str) -> tuple[DeadLetter, str]:
    """The DeadLetter of one message and its de-duplication id; the one place both are made, so
    every consumer (workers, shard bridges, entity hosts) bounds them alike."""
    record = DeadLetter(
        origin_subject=origin_subject,
        reason=reason[:1000],
        # Text, never re-decoded; an excerpt, so the record itself stays a valid bus message even
        # when JSON escaping inflates it (six bytes per byte at worst).
        payload=payload[:DLQ_PAYLOAD_KEEP].decode("utf-8", errors="replace"),
        payload_bytes=len(payload),
        stream_seq=stream_seq,
        at=int(time.time() * 1000),
    )
    return record, f"dlq:{origin_subject}:{stream_seq}"


async def dead_letter(js: JetStreamContext, topology: Topology, origin: str, msg: Msg, reason: str) -> None:
    """Publish the DeadLetter record of ``msg`` to ``<prefix>.dlq.<origin>``."""
    record, msg_id = dead_letter_record(msg.subject, msg.data, stream_seq(msg) if msg.reply else 0, reason)
    await js.publish(topology.dlq_subject(origin), encode(record), headers={"Nats-Msg-Id": msg_id})


class Consumer:
    """One durable pull consumer bound to a stream and subject filter, run as a task."""

    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        topology: Topology,
        durable: str,
        subject: str,
        handler: Handler,
        *,
        batch: int = 64,
        ack_wait: float = 60.0,
        max_ack_pending: int = 1024,
        retry_delay: float = 2.0,
        concurrency: int = 1,
        decoder: Callable[[bytes], Any] = decode,
    ) -> None:
        self.nc = nc
        self.js = js
        self.topology = topology
        self.durable = durable
        self.subject = subject
        self.handler = handler
        self.batch = batch
        self.ack_wait = ack_wait
        self.max_ack_pending = max_ack_pending
        self.retry_delay = retry_delay
        self.concurrency = concurrency
        self.decoder = decoder
        self.handled = 0
        self.dead_lettered = 0
        self.deferred = 0  # redeliveries asked for by RetryLater
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Fetch and handle until :meth:`stop`."""
        stream = self.topology.stream_for(self.subject)
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            max_ack_pending=self.max_ack_pending,
            filter_subject=self.subject,
        )
        sub = await self.js.pull_subscribe(self.subject, durable=self.durable, stream=stream, config=config)
        puller = await Puller.open(self.nc, sub)
        sem = asyncio.Semaphore(self.concurrency)
        try:
            while not self._stop.is_set():
                try:
                    msgs = await puller.fetch(self.batch, timeout=1.0)
                except (NatsTimeout, asyncio.TimeoutError):
                    continue
                except Exception as exc:  # connection trouble: nats-py reconnects; keep trying
                    log.warning("fetch failed", durable=self.durable, error=repr(exc))
                    await asyncio.sleep(self.retry_delay)
                    continue
                if self.concurrency == 1:
                    for m in msgs:
                        await self._one(m)
                else:
                    async def guarded(m: Msg) -> None:
                        async with sem:
                            await self._one(m)

                    await asyncio.gather(*(guarded(m) for m in msgs))
        finally:
            await puller.close()
            await sub.unsubscribe()

    def stop(self) -> None:
        self._stop.set()

    async def _one(self, m: Msg) -> None:
        try:
            message = self.decoder(m.data)
        except DecodeError as exc:
            await self._dead(m, f"undecodable: {exc}")
            return
        try:
            await self.handler(message, m)
        except Reject as exc:
            await self._dead(m, f"rejected: {exc}")
            return
        except RetryLater as exc:
            log.info("handling later", durable=self.durable, delay=round(exc.delay, 1), why=str(exc))
            await m.nak(delay=exc.delay)
            self.deferred += 1
            return
        except Exception as exc:
            log.warning("handler failed; will retry", durable=self.durable, error=repr(exc))
            await m.nak(delay=self.retry_delay)
            return
        await m.ack()
        self.handled += 1

    async def _dead(self, m: Msg, reason: str) -> None:
        log.warning("dead-lettered", durable=self.durable, subject=m.subject, reason=reason)
        await dead_letter(self.js, self.topology, self.durable, m, reason)
        await m.ack()
        self.dead_lettered += 1


