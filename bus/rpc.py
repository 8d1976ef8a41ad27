"""Request/reply on core NATS: the API asks the shard owning an entity and gets an answer.

Subject ``<prefix>.rpc.<kind>.<partition>``; the request is a :class:`Query` envelope naming the
entity key, with a kind-specific body; the reply is the kind's answer (msgspec JSON).
"""

from __future__ import annotations

import msgspec

__all__ = ["FeedPage", "FeedQuery", "Query", "rpc_subject"]


class Query(msgspec.Struct, frozen=True):
    """Envelope of a request to an entity."""

    key: int
    body: msgspec.Raw = msgspec.Raw(b"null")


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


def rpc_subject(prefix: str, kind: str, partition: int) -> str:
    return f"{prefix}.rpc.{kind}.{partition}"
