"""JetStream pulls at the rate of a busy shard: a pull loop, the sequence from the ack subject,
and the small record of a message kept until its ack.

nats-py's own ``fetch`` and ``msg.metadata`` were the biggest costs of a shard's I/O thread at tens
of thousands of messages a second (measured with py-spy by ``bench/actors_bench.py``).
"""

from __future__ import annotations

import asyncio

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

__all__ = ["ACK", "AckRef", "Puller", "stream_seq"]


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
    """Pull requests of one partition's consumer, answered on a private inbox whose subscription
    callback gathers the messages in arrival order (which is stream order).

    nats-py's ``fetch`` awaits each message of a batch through its own ``wait_for`` (a Task per
    message on Python 3.11): at tens of thousands of messages a second that was the I/O thread's
    biggest cost. Here a request asks for ``batch`` messages with an expiry; a fetch returns as
    soon as messages stop arriving for a moment. Messages of a request still open when a fetch
    returned stay in the list for the next one, so none is lost or reordered.
    """

    __slots__ = ("_nc", "_next", "_inbox", "_msgs", "_arrived", "_open")

    #: a fetch with messages returns once none arrived for this long
    _QUIET = 0.002

    def __init__(self, nc: NATS, stream: str, consumer: str) -> None:
        self._nc = nc
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._msgs: list[Msg] = []
        self._arrived = asyncio.Event()
        self._open = 0  # messages asked for and not yet delivered or expired

    @classmethod
    async def open(cls, nc: NATS, sub: JetStreamContext.PullSubscription) -> "Puller":
        info = await sub.consumer_info()
        self = cls(nc, info.stream_name, info.name)
        await nc.subscribe(self._inbox, cb=self._on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1)
        return self

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
