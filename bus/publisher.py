"""Publishing bus messages to JetStream: durable (acked) and de-duplicated by message id."""

from __future__ import annotations

import asyncio
from typing import Iterable

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from clipstream.bus.codec import encode
from clipstream.bus.jetpub import JetPublisher, PublishFailed
from clipstream.bus.messages import BusMessage
from clipstream.bus.routing import Router
from clipstream.bus.topology import Topology

__all__ = ["BusUnavailable", "Publisher"]


class BusUnavailable(Exception):
    """JetStream did not acknowledge a publish in time; nothing can be promised to the caller."""


class Publisher:
    """Publishes to the subject a message belongs to (partition computed here), awaiting the ack."""

    __slots__ = ("jet", "router", "timeout")

    def __init__(self, nc: NATS, topology: Topology, partitions: int, timeout: float = 5.0) -> None:
        self.jet = JetPublisher(nc)
        self.router = Router(topology, partitions)
        self.timeout = timeout

    def subject_for(self, msg: BusMessage) -> str:
        return self.router.subject_for(msg)

    async def publish(self, msg: BusMessage, msg_id: str | None = None, subject: str | None = None) -> int:
        """Publish one message and wait for JetStream's ack; returns its stream sequence."""
        return (await self._publish([(subject or self.subject_for(msg), encode(msg), msg_id)]))[0]

    async def publish_many(self, items: Iterable[tuple[BusMessage, str | None]]) -> list[int]:
        """Publish many messages, all in flight at once; their stream sequences in order."""
        return await self._publish([(self.subject_for(m), encode(m), i) for m, i in items])

    async def _publish(self, batch: list[tuple[str, bytes, str | None]]) -> list[int]:
        try:
            return await self.jet.publish_many(batch, timeout=self.timeout)
        except (PublishFailed, NatsError, asyncio.TimeoutError) as exc:
            raise BusUnavailable(f"publish not acknowledged: {exc!r}") from exc
