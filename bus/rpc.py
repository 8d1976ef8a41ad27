"""Request/reply on core NATS: the API asks the shard owning an entity and gets an answer.

A query for entity ``key`` of kind ``k`` is a core-NATS request on
:meth:`Topology.rpc_subject` (``<prefix>.rpc.<k>.<partition_of(key)>``) whose payload is
:class:`Query` as JSON, e.g. ``{"key": 42, "body": {"page": 1}}``; the owning shard answers with
the kind's reply (the feed's: :class:`FeedPage`), or with :class:`QueryFailed` and the header
``Clipstream-Error: 1``.
"""

from __future__ import annotations

import msgspec

__all__ = ["ERROR_HEADER", "READ_AFTER_WAIT", "FeedPage", "FeedQuery", "Query", "QueryFailed", "encode_error"]

#: header of a reply that is a :class:`QueryFailed`, not the kind's answer
ERROR_HEADER = "Clipstream-Error"
#: the longest a shard holds a query whose ``after`` it has not fetched yet (seconds; well under
#: the API's request timeout, so a lagging partition answers late, not never)
READ_AFTER_WAIT = 1.0


class Query(msgspec.Struct, frozen=True):
    """The envelope of an entity query: the entity key and the kind-specific body (raw JSON).

    ``after`` (0: none) asks for read-your-writes: the stream sequence JetStream acked a write of
    this entity's stream with (the caller's like, follow or view). The owning shard answers once
    it has fetched its partition up to that sequence, so the write is applied, or queued ahead of
    the query, when the query is answered; or after :data:`READ_AFTER_WAIT` if it has not (the
    answer may then miss the write, and the caller learns it from the kind's reply, e.g. the
    feed page's ``feedback_at``)."""

    key: int
    body: msgspec.Raw = msgspec.Raw(b"null")
    after: int = 0


class QueryFailed(msgspec.Struct, frozen=True):
    """The reply when the shard could not answer."""

    error: str


class FeedQuery(msgspec.Struct, frozen=True):
    """Ask a user's feed for a page: ``page`` None starts a new page, a number repeats/continues it."""

    limit: int = 10
    page: int | None = None


class FeedPage(msgspec.Struct, frozen=True):
    """The video ids of one page and the page number that follows (None: nothing more to show).

    ``stored``: the page was served before and the entity no longer holds it (it keeps the newest
    only); its ids are in storage (``FeedRepo.page``), ``video_ids`` is empty, and so are ``flags``."""

    page: int
    video_ids: list[int]
    next_page: int | None
    stored: bool = False
    #: per id, 1: the user likes it, 2: the user follows its author (empty: none of either)
    flags: list[int] = []
    #: ``at`` of the newest like, follow or watch the page's ranking saw (0: none)
    feedback_at: int = 0


_encoder = msgspec.json.Encoder()


def encode_error(reason: str) -> bytes:
    """The payload of a failed query's reply (send it with ``ERROR_HEADER``)."""
    return _encoder.encode(QueryFailed(reason))
