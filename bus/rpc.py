"""Request/reply on core NATS: the API asks the shard owning an entity and gets an answer.

A query for entity ``key`` of kind ``k`` is a core-NATS request on
:meth:`Topology.rpc_subject` (``<prefix>.rpc.<k>.<partition_of(key)>``) whose payload is
:class:`Query` as JSON, e.g. ``{"key": 42, "body": {"page": 1}}``; the owning shard answers with
the kind's reply (the feed's: :class:`FeedPage`), or with :class:`QueryFailed` and the header
``Clipstream-Error: 1``.
"""

from __future__ import annotations

import msgspec

__all__ = ["ERROR_HEADER", "FeedPage", "FeedQuery", "Query", "QueryFailed", "encode_error"]

#: header of a reply that is a :class:`QueryFailed`, not the kind's answer
ERROR_HEADER = "Clipstream-Error"


class Query(msgspec.Struct, frozen=True):
    """The envelope of an entity query: the entity key and the kind-specific body (raw JSON)."""

    key: int
    body: msgspec.Raw = msgspec.Raw(b"null")


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
