"""Reference (a), the HTTP ceiling: the same 10-item feed page, built once and answered from memory."""

from __future__ import annotations

from litestar import Litestar

from clipstream.bench.refs import RefState, make_ref_app, page_of
from clipstream.config.settings import get_settings
from clipstream.http.schemas import FeedResponse

__all__ = ["create_app"]


def create_app() -> Litestar:
    """granian's factory: one page read from Redis at start, then no I/O per request."""
    page: list[FeedResponse] = []

    async def prepare(state: RefState) -> None:
        page.append(await page_of(state, state.next_ids()))

    async def answer(state: RefState) -> FeedResponse:
        return page[0]

    return make_ref_app(get_settings(), answer, prepare)
