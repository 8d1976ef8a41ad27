"""JetStream pull consumption, shared by every consumer of clipstream: the pull loop
(:class:`Puller`), the stream sequence from the ack subject (:func:`stream_seq`), and the durable
consumer of an entity partition (:func:`bind_partition`).

Two policies run on this one core, and differ only in what follows a fetch:

- :class:`clipstream.bus.consumer.Consumer` (the worker's media and fan-out consumers): each
  message is handled, then acked (or nak'ed, or dead-lettered) at once; its durable consumer
  starts at the stream's first message and is never recreated.
- the shards' I/O thread (:class:`clipstream.actors.bridge.Bridge`): a batch goes to the actor
  thread and its messages are acked only after the flush that made them durable (an
  :class:`AckRef` each until then); a partition's durable consumer is recreated at its ack floor
  by its new owner (:func:`bind_partition`), so delivery resumes in order without waiting out
  ``ack_wait``.

nats-py's own ``fetch`` and ``msg.metadata`` were the biggest costs of a shard's I/O thread at tens
of thousands of messages a second (measured with py-spy by ``bench/actors_bench.py``; the Puller
took injected likes on one shard from 14.5k to 34k events/s, fb6f79d).
"""

from __future__ import annotations

import asyncio

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from clipstream.bus.topology import Topology

__all__ = ["ACK", "AckRef", "Puller", "bind_partition", "stream_seq"]


def stream_seq(msg: Msg) -> int:
    """The stream sequence of a JetStream message, from its ack subject: ``$JS.ACK.<stream>.
    <consumer>.<delivered>.<stream seq>.…`` (9 tokens), or with a domain and account hash in
    front of the stream (12). nats-py's ``msg.metadata`` parses every field into dataclasses and
    a datetime; at tens of thousands of messages a second that was a seventh of the I/O thread."""
    tokens = msg.reply.split(".", 8)
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK":
        if tokens[8].count(".") == 0:
            return int(tokens[5])
        return int(tokens[7])
    return int(msg.metadata.sequence.stream)  # anything else: nats-py's parser (and its errors)


class Puller:
    """Pull requests of one durable consumer, answered on a private inbox whose subscription
    callback gathers the messages in arrival order (which is stream order).

    nats-py's ``fetch`` awaits each message of a batch through its own ``wait_for`` (a Task per
    message on Python 3.11): at tens of thousands of messages a second that was the I/O thread's
    biggest cost. Here a request asks for ``batch`` messages with an expiry; a fetch returns as
    soon as messages stop arriving for a moment. Messages of a request still open when a fetch
    returned stay in the list for the next one, so none is lost or reordered.
    """

    __slots__ = ("_nc", "_next", "_inbox", "_msgs", "_arrived", "_open", "_sub", "floor")

    #: a fetch with messages returns once none arrived for this long
    _QUIET = 0.002

    def __init__(self, nc: NATS, stream: str, consumer: str) -> None:
        self._nc = nc
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._msgs: list[Msg] = []
        self._arrived = asyncio.Event()
        self._open = 0  # messages asked for and not yet delivered or expired
        self._sub: Subscription | None = None
        #: the consumer's ack floor (stream sequence) when opened: every message up to it was
        #: handled and acked before this puller's first fetch
        self.floor = 0

    @classmethod
    async def open(cls, nc: NATS, sub: JetStreamContext.PullSubscription) -> "Puller":
        info = await sub.consumer_info()
        self = cls(nc, info.stream_name, info.name)
        self.floor = (info.ack_floor.stream_seq or 0) if info.ack_floor is not None else 0
        self._sub = await nc.subscribe(self._inbox, cb=self._on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1)
        return self

    async def close(self) -> None:
        """Stop taking messages (those of a request still open are redelivered after ``ack_wait``)."""
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()

    async def _on_msg(self, msg: Msg) -> None:
        status = JetStreamContext.is_status_msg(msg)
        if status is None:
            self._msgs.append(msg)
            self._open -= 1
        elif status in ("404", "408", "409"):
            self._open = 0  # no messages / request expired / request ended: ask again
        self._arrived.set()

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        if self._open <= 0 and not self._msgs:
            self._open = batch
            await self._nc.publish(self._next, msgspec.json.encode({"batch": batch, "expires": int(timeout * 1e9)}),
                                   reply=self._inbox)
        if not self._msgs:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout + 1.0)
            except asyncio.TimeoutError:
                self._open = 0  # lost answer (reconnect): ask again
        seen = -1
        while self._open > 0 and len(self._msgs) != seen:
            seen = len(self._msgs)
            await asyncio.sleep(self._QUIET)
        msgs, self._msgs = self._msgs, []
        return msgs


class AckRef(msgspec.Struct, gc=False):
    """What a shard keeps of an applied JetStream message until the flush that covers it: its
    subject (for a dead letter) and its ack subject. A shard holds up to ``max_ack_pending`` per
    partition of these; the whole nats-py ``Msg`` (payload, headers, client) was several times
    the size, and was the bulk of a busy shard's memory."""

    subject: str
    reply: str


ACK = b"+ACK"


async def bind_partition(
    js: JetStreamContext, topology: Topology, kind: str, partition: int, *, ack_wait: float, max_ack_pending: int
) -> JetStreamContext.PullSubscription:
    """(Re)create the partition's durable consumer so that delivery restarts, in order, just
    after its ack floor. A new owner must not wait ``ack_wait`` for the previous owner's
    unacked messages, and it must see them before newer ones: entities skip a message whose
    sequence they already applied, which is only exact if each partition is applied in order."""
    subject = topology.partition_subject(kind, partition)
    stream = topology.stream_for(subject)
    durable = f"{kind}-{partition}"
    start = 0
    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        info = None  # never consumed: delivery starts at the partition's first message
    if info is not None:
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        start = floor + 1 if floor else (info.config.opt_start_seq or 0)
        await js.delete_consumer(stream, durable)
    config = ConsumerConfig(
        durable_name=durable,
        filter_subject=subject,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_ack_pending=max_ack_pending,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start else DeliverPolicy.ALL,
        opt_start_seq=start or None,
    )
    await js.add_consumer(stream, config)
    return await js.pull_subscribe_bind(durable=durable, stream=stream)
