"""Asks a user's UserFeed entity for a page over NATS request/reply (one round trip per feed call).

The request goes to ``<prefix>.rpc.feed.<partition of user_id>`` (:meth:`Topology.rpc_subject`),
answered by whichever feed shard owns that partition. No owner, a slow owner or a garbled reply is a
:class:`BusUnavailable` (503 at the edge): the API never waits longer than the configured timeout.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import structlog
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from clipstream.bus.codec import partition_of
from clipstream.bus.inbox import NoReply, ReplyInbox
from clipstream.bus.publisher import BusUnavailable
from clipstream.bus.rpc import FeedPage, FeedQuery, Query
from clipstream.bus.topology import Topology

__all__ = ["FeedClient"]

log = structlog.get_logger("clipstream.http.feed")

_encoder = msgspec.json.Encoder()
_page_decoder = msgspec.json.Decoder(FeedPage)


class FeedClient:
    """Request/reply client of the feed shards."""

    __slots__ = ("nc", "topology", "partitions", "timeout", "_subjects", "_inbox", "_wait")

    def __init__(self, nc: NatsClient, topology: Topology, partitions: int, timeout: float) -> None:
        self.nc = nc
        self.topology = topology
        self.partitions = partitions
        self.timeout = timeout
        # Subjects are computed once per partition, not per request.
        self._subjects = [topology.rpc_subject("feed", p) for p in range(partitions)]
        # Replies on one inbox of this client's own: nats-py's request costs a NUID, os.urandom
        # and a wait_for per call (bus/inbox.py).
        self._inbox = ReplyInbox(nc)
        # imported here, not at the top: http.metrics imports bootstrap, which imports this module
        from clipstream.http.metrics import BUS_WAIT_SECONDS

        self._wait = BUS_WAIT_SECONDS.labels("feed")

    def subject_for(self, user_id: int) -> str:
        return self._subjects[partition_of(user_id, self.partitions)]

    async def page(self, user_id: int, limit: int, page: int | None, after: int = 0) -> FeedPage:
        """The page ``page`` (None: a new one) of ``limit`` video ids for a user; ``after``: a
        write's stream sequence the page must take in (:class:`Query`)."""
        body = msgspec.Raw(_encoder.encode(FeedQuery(limit=limit, page=page)))
        payload = _encoder.encode(Query(key=user_id, body=body, after=after))
        started = time.perf_counter()
        try:
            reply = await self._inbox.request(self.subject_for(user_id), payload, timeout=self.timeout)
            self._wait.observe(time.perf_counter() - started)
        except (NoReply, NatsError, asyncio.TimeoutError) as exc:
            raise BusUnavailable(f"feed shard did not answer: {type(exc).__name__}") from exc
        if JetStreamContext.is_status_msg(reply) == "503":  # no responders
            raise BusUnavailable("feed shard did not answer: no shard owns the partition")
        try:
            return _page_decoder.decode(reply.data)
        except msgspec.DecodeError as exc:
            log.error("feed shard sent an undecodable reply", error=str(exc), reply=reply.data[:200])
            raise BusUnavailable("feed shard sent an undecodable reply") from exc
