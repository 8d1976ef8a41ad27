"""The "For You" feed: one NATS request to the user's feed entity, one Redis MGET to hydrate."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import get
from litestar.params import Parameter

from clipstream.http.bootstrap import CurrentUser, Services, ServicesDep
from clipstream.http.errors import ServiceUnavailable, errors
from clipstream.http.schemas import FeedItem, FeedResponse

__all__ = ["AFTER_PATTERN", "FEED_HANDLERS", "MAX_LIMIT", "feed_page"]

MAX_LIMIT = 50
#: a ``read_after`` token: a JetStream stream sequence (at most 19 digits, within a uint64; no sign, no
#: leading zero)
AFTER_PATTERN = r"^[1-9][0-9]{0,18}$"


@get("/v1/feed", tags=["feed"], responses=errors(400, 401, 503))
async def feed(
    svc: ServicesDep,
    me: CurrentUser,
    limit: Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description="videos per page")] = 10,
    cursor: Annotated[
        str | None, Parameter(max_length=64, description="next_cursor of the previous page; absent: a new page")
    ] = None,
    after: Annotated[
        str | None,
        Parameter(pattern=AFTER_PATTERN, description=(
            "read_after of the caller's last like, follow or view: the page takes that action in "
            "(waiting up to a second for it if the feed has not yet)")),
    ] = None,
) -> FeedResponse:
    """A page of the caller's personalised feed. The same cursor returns the same page again."""
    page = svc.security.feed_cursors.verify(me.user_id, cursor) if cursor else None  # forged/foreign -> 400
    return await feed_page(svc, me.user_id, limit, page, int(after) if after else 0)


async def feed_page(svc: Services, user_id: int, limit: int, page: int | None, after: int = 0) -> FeedResponse:
    """Page ``page`` (None: a new one) of a user's feed, as the API answers it (also used by
    :mod:`clipstream.http.fastpath`); ``after``: a write's ``read_after`` the page must take in."""
    result = await svc.feed.page(user_id, limit, page, after)  # no shard in time -> 503
    ids, next_page = result.video_ids, result.next_page
    if result.stored:  # an older cursor: its page as it was served, from storage
        ids = await svc.feed_pages.page(user_id, result.page)
        if ids is None:  # served an instant ago and not flushed yet
            raise ServiceUnavailable("that page is being saved; retry")
        next_page = result.page + 1 if ids else None
    items = await svc.cards.items(ids)
    if result.flags:  # the viewer's own state of these videos, from their entity: no extra read
        flags = dict(zip(ids, result.flags))
        items = [_flagged(item, flags.get(int(item.video_id), 0)) for item in items]
    next_cursor = svc.security.feed_cursors.sign(user_id, next_page) if next_page is not None else None
    return FeedResponse(next_cursor=next_cursor, videos=items, feedback_at=result.feedback_at)


def _flagged(item: FeedItem, flag: int) -> FeedItem:
    if not flag:
        return item  # items are shared by every viewer of this worker: copied only when they differ
    return msgspec.structs.replace(item, liked=bool(flag & 1), following_author=bool(flag & 2))


FEED_HANDLERS = [feed]
