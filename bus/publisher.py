"""Publishing bus messages to JetStream: durable (acked) and de-duplicated by message id."""

from __future__ import annotations

import asyncio
from typing import Iterable

from nats.js import JetStreamContext
from nats.js.errors import APIError
from nats.errors import Error as NatsError, TimeoutError as NatsTimeout

from clipstream.bus.codec import encode
from clipstream.bus.messages import BusMessage
from clipstream.bus.routing import Router
from clipstream.bus.topology import Topology

__all__ = ["BusUnavailable", "Publisher"]


class BusUnavailable(Exception):
    """JetStream did not acknowledge a publish in time; nothing can be promised to the caller."""


class Publisher:
    """Publishes to the subject a message belongs to (partition computed here), awaiting the ack."""

    __slots__ = ("js", "router", "timeout")

    def __init__(self, js: JetStreamContext, topology: Topology, partitions: int, timeout: float = 5.0) -> None:
        self.js = js
        self.router = Router(topology, partitions)
        self.timeout = timeout

    def subject_for(self, msg: BusMessage) -> str:
        return self.router.subject_for(msg)

    async def publish(self, msg: BusMessage, msg_id: str | None = None, subject: str | None = None) -> int:
        """Publish one message and wait for JetStream's ack; returns its stream sequence."""
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        try:
            ack = await self.js.publish(subject or self.subject_for(msg), encode(msg), timeout=self.timeout,
                                        headers=headers)
        except (NatsTimeout, NatsError, APIError, asyncio.TimeoutError) as exc:
            raise BusUnavailable(f"publish not acknowledged: {exc!r}") from exc
        return ack.seq

    async def publish_many(self, items: Iterable[tuple[BusMessage, str | None]]) -> list[int]:
        """Publish many messages with all acks awaited together (keeps many in flight)."""
        return await asyncio.gather(*(self.publish(m, i) for m, i in items))
