"""Reference (b), the plain cache design without actors: each feed answer is one Redis MGET of 10 cards."""

from __future__ import annotations

from litestar import Litestar

from clipstream.bench.refs import RefState, make_ref_app, page_of
from clipstream.config.settings import get_settings
from clipstream.http.schemas import FeedResponse

__all__ = ["create_app"]


def create_app() -> Litestar:
    """granian's factory: a window of 10 cached video ids per request, hydrated with one MGET."""

    async def answer(state: RefState) -> FeedResponse:
        return await page_of(state, state.next_ids())

    return make_ref_app(get_settings(), answer)
