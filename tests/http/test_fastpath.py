"""The fast paths answer exactly as the Litestar app does, and hand it everything unusual.

Each case sends the same request through the app alone and through ``FastPaths`` in front of a
twin app (same settings, same stand-in feed client and cards: no network), and compares status,
body and Retry-After; the rate-limit cases also compare what was counted. The e2e tests exercise
the fast path against the real system (granian serves ``create_server_app``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from clipstream.bus.publisher import BusUnavailable
from clipstream.bus.rpc import FeedPage
from clipstream.config.settings import HttpSettings, Settings
from clipstream.http import ratelimit
from clipstream.http.app import create_app, create_server_app
from clipstream.http.fastpath import FastPaths
from clipstream.http.schemas import FeedItem
from clipstream.http.security import Tokens
from clipstream.storage.models import VideoCard
from tests.http.conftest import fake_services

SETTINGS = Settings(http=HttpSettings(rate_limit_reads=4, rate_limit_writes=3, max_body_bytes=2048))
USER = 4242
AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


class _Feed:
    """The feed client: pages of ids 1..limit, or a failure."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.calls, self.afters = fail, 0, []

    async def page(self, user_id: int, limit: int, page: int | None, after: int = 0) -> FeedPage:
        self.calls += 1
        self.afters.append(after)
        if self.fail:
            raise BusUnavailable("feed shard did not answer: TimeoutError")
        n = 0 if page is None else page
        return FeedPage(n, list(range(1, limit + 1)), n + 1, feedback_at=after)


class _Publisher:
    def __init__(self, fail: bool = False) -> None:
        self.fail, self.sent = fail, []

    async def publish(self, msg: Any, msg_id: str | None = None, subject: str | None = None) -> int:
        if self.fail:
            raise BusUnavailable("publish not acknowledged: TimeoutError()")
        self.sent.append(msg)
        return len(self.sent)


class _Cards:
    async def card(self, video_id: int) -> VideoCard | None:
        return VideoCard(video_id=video_id, author_id=7, username="ann", media_key="m", thumb_key="t",
                         duration=3.0, created_at=0) if video_id != 404 else None

    async def items(self, ids: list[int]) -> list[FeedItem]:
        return [FeedItem(video_id=str(i), author_id="7", username="ann", video_url=f"http://m/{i}",
                         thumbnail_url=f"http://m/{i}.jpg", like_count=i, duration=3.0, created_at=AT) for i in ids]


@pytest.fixture(autouse=True)
def _one_instant(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both apps count in the same window and compute the same Retry-After: on the real clock a
    second turning between the twin requests made their headers differ now and then."""
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_020.5)


def _token(user: int = USER) -> dict[str, str]:
    return {"Authorization": f"Bearer {Tokens(SETTINGS.http.jwt_secret, 600).issue(user, 'ann')}"}


def _services(fail: bool) -> Any:
    return fake_services(SETTINGS, feed=_Feed(fail), cards=_Cards(), publisher=_Publisher(fail))


def _twins(fail: bool = False) -> tuple[Any, FastPaths]:
    plain, inner = create_app(SETTINGS, services=_services(fail)), create_app(SETTINGS, services=_services(fail))
    return plain, FastPaths(inner, inner.state.rate_limiter, SETTINGS.http)


async def _both(path: str, headers: dict[str, str] | None = None, fail: bool = False, times: int = 1,
                method: str = "GET", content: bytes | None = None) -> list[Any]:
    plain, fast = _twins(fail)
    out = []
    async with AsyncTestClient(app=plain) as a, AsyncTestClient(app=fast) as b:  # type: ignore[arg-type]
        for _ in range(times):
            ra = await a.request(method, path, headers=headers, content=content)
            rb = await b.request(method, path, headers=headers, content=content)
            out.append((ra, rb))
    return out


def _same(ra: Any, rb: Any) -> None:
    assert (rb.status_code, rb.json(), rb.headers.get("retry-after")) == (
        ra.status_code, ra.json(), ra.headers.get("retry-after"))
    assert rb.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("query", ["", "?limit=3", "?limit=50", "?limit=1&cursor=x", "?limit=0", "?limit=51",
                                   "?limit=ten", "?limit=3&limit=4", "?cursor=" + "A" * 65, "?other=1",
                                   "?after=12", "?limit=2&after=9000000000000000000", "?after=0", "?after=012",
                                   "?after=-1", "?after=12%0A", "?after=x", "?after=" + "1" * 20, "?after="])
async def test_same_answer_as_the_app(query: str) -> None:
    if "cursor=x" in query:  # a real cursor of this user, for page 1
        from clipstream.http.bootstrap import build_security

        query = "?limit=2&cursor=" + build_security(SETTINGS).feed_cursors.sign(USER, 1)
    ((ra, rb),) = await _both("/v1/feed" + query, _token())
    _same(ra, rb)


async def test_after_reaches_the_feed_shard_on_both_paths() -> None:
    """``after`` (a like's read_after) is handed to the feed client, which asks the shard with it."""
    ((ra, rb),) = await _both("/v1/feed?limit=2&after=12", _token())
    assert ra.json()["feedback_at"] == rb.json()["feedback_at"] == 12  # the fake echoes it back


@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}])
async def test_without_a_good_token_the_app_answers(headers: dict[str, str] | None) -> None:
    ((ra, rb),) = await _both("/v1/feed", headers)
    assert ra.status_code == 401
    _same(ra, rb)


async def test_a_cursor_of_another_user_is_refused_alike() -> None:
    from clipstream.http.bootstrap import build_security

    cursor = build_security(SETTINGS).feed_cursors.sign(USER + 1, 3)
    ((ra, rb),) = await _both(f"/v1/feed?cursor={cursor}", _token())
    assert ra.status_code == 400
    _same(ra, rb)


async def test_an_unanswered_shard_is_a_503_with_retry_after() -> None:
    ((ra, rb),) = await _both("/v1/feed", _token(), fail=True)
    assert ra.status_code == 503 and ra.headers["retry-after"]
    _same(ra, rb)


async def test_the_read_limit_counts_each_request_once() -> None:
    answers = await _both("/v1/feed", _token(), times=6)
    assert [ra.status_code for ra, _ in answers] == [200, 200, 200, 200, 429, 429]
    for ra, rb in answers:
        _same(ra, rb)


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(("path", "headers", "body"), [
    ("/v1/videos/123/like", JSON, b'{"action":"like"}'),
    ("/v1/videos/123/like", JSON, b'{"action":"unlike"}'),
    ("/v1/videos/123/like", {"Content-Type": "application/vnd.x+json; charset=utf-8"}, b'{"action":"like"}'),
    ("/v1/videos/404/like", JSON, b'{"action":"like"}'),  # no such video: 404 after counting
    ("/v1/videos/12x/like", JSON, b'{"action":"like"}'),  # not an id: 404 too
    ("/v1/videos/123/like", JSON, b'{"action":"love"}'),
    ("/v1/videos/123/like", JSON, b'{"action":"like","extra":1}'),
    ("/v1/videos/123/like", JSON, b'{"action":"\xff"}'),
    ("/v1/videos/123/like", JSON, b'[' * 1000),
    ("/v1/videos/123/like", JSON, b''),
    ("/v1/videos/123/like", JSON, b'{"action":"like"}' + b' ' * 4096),  # over max_body_bytes: 413
    ("/v1/videos/123/like", {"Content-Type": "text/plain"}, b'{"action":"like"}'),  # 415
    ("/v1/videos/123/like", {}, b'{"action":"like"}'),
    ("/v1/videos/1/2/like", JSON, b'{"action":"like"}'),
])
async def test_likes_answer_as_the_app(path: str, headers: dict[str, str], body: bytes) -> None:
    ((ra, rb),) = await _both(path, {**_token(), **headers}, method="POST", content=body)
    _same(ra, rb)


async def test_a_like_without_a_token_and_an_unacknowledged_one() -> None:
    ((ra, rb),) = await _both("/v1/videos/1/like", JSON, method="POST", content=b'{"action":"like"}')
    assert ra.status_code == 401
    _same(ra, rb)
    ((ra, rb),) = await _both("/v1/videos/1/like", {**_token(), **JSON}, fail=True, method="POST",
                              content=b'{"action":"like"}')
    assert ra.status_code == 503
    _same(ra, rb)


async def test_the_write_limit_counts_each_like_once() -> None:
    answers = await _both("/v1/videos/5/like", {**_token(), **JSON}, times=5, method="POST", content=b'{"action":"like"}')
    assert [ra.status_code for ra, _ in answers] == [200, 200, 200, 429, 429]
    for ra, rb in answers:
        _same(ra, rb)


async def test_a_like_is_published_as_the_app_publishes_it() -> None:
    plain, fast = _twins()
    for app in (plain, fast):
        async with AsyncTestClient(app=app) as client:  # type: ignore[arg-type]
            r = await client.post("/v1/videos/77/like", headers={**_token(), **JSON}, content=b'{"action":"unlike"}')
            assert r.status_code == 200
            (sent,) = app.state.services.publisher.sent
            assert (sent.user_id, sent.video_id, sent.author_id, sent.like) == (USER, 77, 7, False)


async def test_other_routes_and_methods_go_to_the_app() -> None:
    _, fast = _twins()
    async with AsyncTestClient(app=fast) as client:  # type: ignore[arg-type]
        assert (await client.get("/health")).json() == {"status": "ok"}
        r = await client.post("/v1/feed", headers=_token())
        assert r.status_code == 405


async def test_answers_are_timed_under_the_route_template() -> None:
    labels = {"method": "GET", "route": "/v1/feed", "status": "200"}
    before = REGISTRY.get_sample_value("clipstream_http_request_duration_seconds_count", labels) or 0
    _, fast = _twins()
    async with AsyncTestClient(app=fast) as client:  # type: ignore[arg-type]
        assert (await client.get("/v1/feed", headers=_token())).status_code == 200
    assert REGISTRY.get_sample_value("clipstream_http_request_duration_seconds_count", labels) == before + 1


def test_the_server_serves_the_fast_paths_unless_turned_off() -> None:
    import sys

    before = sys.getswitchinterval()
    try:
        assert isinstance(create_server_app(SETTINGS), FastPaths)
        off = Settings(http=HttpSettings(fast_paths=False))
        assert not isinstance(create_server_app(off), FastPaths)
        assert sys.getswitchinterval() == pytest.approx(0.0005)  # the worker hands the GIL over often
    finally:
        sys.setswitchinterval(before)
