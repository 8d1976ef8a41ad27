"""Handler-level tests without backing services: auth, validation, docs and error translation.

The app runs with a stand-in services factory; a part a test does not provide is None, so a handler
that reaches for it fails the test loudly (these cases must be decided before any I/O).
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from clipstream.bus.publisher import BusUnavailable
from clipstream.config.settings import HttpSettings, Settings
from clipstream.http.app import create_app
from clipstream.http.security import Tokens
from clipstream.storage.errors import Conflict, NotFound, StorageUnavailable
from tests.http.conftest import fake_services


class _Raising:
    """A stand-in whose every async method raises the given error."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.exc

        return fail


SETTINGS = Settings(http=HttpSettings(max_body_bytes=2048, admin_usernames="boss"))


def make_client(**parts: Any) -> AsyncTestClient[Litestar]:
    return AsyncTestClient(app=create_app(SETTINGS, services=fake_services(SETTINGS, **parts)))


def token(user_id: int = 1001, username: str = "alice", now: int | None = None) -> dict[str, str]:
    tokens = Tokens(SETTINGS.http.jwt_secret, SETTINGS.http.token_ttl, SETTINGS.http.admin_usernames)
    return {"Authorization": f"Bearer {tokens.issue(user_id, username, now=now)}"}


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with make_client() as c:
        yield c


class TestPublicEndpoints:
    async def test_health(self, client: AsyncTestClient[Litestar]) -> None:
        r = await client.get("/health")
        assert r.status_code == 200 and r.json() == {"status": "ok"}

    async def test_openapi_and_interactive_docs(self, client: AsyncTestClient[Litestar]) -> None:
        doc = (await client.get("/schema/openapi.json")).json()
        assert "/v1/feed" in doc["paths"] and "/v1/videos/upload-url" in doc["paths"]
        assert doc["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
        ui = await client.get("/schema")
        assert ui.status_code == 200 and "swagger" in ui.text.lower()


class TestAuthentication:
    @pytest.mark.parametrize("path", ["/v1/feed", "/v1/users/me", "/v1/users/1", "/v1/videos/1"])
    async def test_no_token_is_401(self, client: AsyncTestClient[Litestar], path: str) -> None:
        r = await client.get(path)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")

    @pytest.mark.parametrize(
        "header",
        ["Bearer nonsense", "Bearer ", "Basic dXNlcjpwYXNz", "bearer a.b.c", "Token abc"],
    )
    async def test_bad_token_is_401(self, client: AsyncTestClient[Litestar], header: str) -> None:
        r = await client.post("/v1/videos/1/like", json={"action": "like"}, headers={"Authorization": header})
        assert r.status_code == 401

    async def test_expired_token_is_401(self, client: AsyncTestClient[Litestar]) -> None:
        old = int(time.time()) - SETTINGS.http.token_ttl - 10
        r = await client.get("/v1/feed", headers=token(now=old))
        assert r.status_code == 401 and "expired" in r.json()["detail"]

    async def test_token_from_another_secret_is_401(self, client: AsyncTestClient[Litestar]) -> None:
        other = Tokens("another-secret-of-enough-length", 3600).issue(1001, "alice")
        r = await client.get("/v1/feed", headers={"Authorization": f"Bearer {other}"})
        assert r.status_code == 401


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "fragment"),
        [
            ({"file_size_bytes": 10, "file_format": "avi"}, "file_format must be one of mov, mp4, webm"),
            ({"file_size_bytes": -1, "file_format": "mp4"}, "positive"),
            ({"file_size_bytes": 0, "file_format": "mp4"}, "positive"),
            ({"file_size_bytes": 512 * 1024 * 1024 + 1, "file_format": "mp4"}, "file too large"),
            ({"file_size_bytes": "big", "file_format": "mp4"}, "Expected `int`"),
            ({"file_format": "mp4"}, "file_size_bytes"),
            ({"file_size_bytes": 10, "file_format": "mp4", "extra": 1}, "extra"),
            ({"file_size_bytes": 10, "file_format": "mp4", "caption": "x" * 301}, '"key":"caption"'),
            ({"file_size_bytes": 10, "file_format": "mp4", "caption": "bell\x07"}, '"key":"caption"'),
            ({"file_size_bytes": 10, "file_format": "mp4", "caption": 5}, "caption"),
        ],
    )
    async def test_upload_url_bad_input_is_400(
        self, client: AsyncTestClient[Litestar], body: dict[str, Any], fragment: str
    ) -> None:
        r = await client.post("/v1/videos/upload-url", json=body, headers=token())
        assert r.status_code == 400, r.text
        assert fragment in r.text

    async def test_non_json_and_non_utf8_bodies_are_400(self, client: AsyncTestClient[Litestar]) -> None:
        for content in (b"{not json", b"\xff\xfe\x00garbage", b""):
            r = await client.post(
                "/v1/videos/upload-url", content=content, headers={**token(), "Content-Type": "application/json"}
            )
            assert r.status_code == 400, (content, r.text)

    async def test_body_over_the_limit_is_413(self, client: AsyncTestClient[Litestar]) -> None:
        body = {"username": "alice", "email": "a@example.com", "password": "x" * 5000}
        r = await client.post("/v1/auth/register", json=body)
        assert r.status_code == 413

    @pytest.mark.parametrize(
        "body",
        [
            {"username": "Al", "email": "a@example.com", "password": "long enough"},
            {"username": "UPPER", "email": "a@example.com", "password": "long enough"},
            {"username": "a" * 31, "email": "a@example.com", "password": "long enough"},
            {"username": "alice", "email": "not-an-email", "password": "long enough"},
            {"username": "alice", "email": "a@example.com", "password": "short"},
            {"username": "alice", "email": "a@example.com"},
        ],
    )
    async def test_register_bad_input_is_400(self, client: AsyncTestClient[Litestar], body: dict[str, Any]) -> None:
        r = await client.post("/v1/auth/register", json=body)
        assert r.status_code == 400, r.text

    @pytest.mark.parametrize("limit", ["0", "51", "-1", "ten", "1e3"])
    async def test_feed_limit_out_of_range_is_400(self, client: AsyncTestClient[Litestar], limit: str) -> None:
        r = await client.get("/v1/feed", params={"limit": limit}, headers=token())
        assert r.status_code == 400

    @pytest.mark.parametrize("cursor", ["garbage", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x" * 65])
    async def test_forged_feed_cursor_is_400(self, client: AsyncTestClient[Litestar], cursor: str) -> None:
        r = await client.get("/v1/feed", params={"cursor": cursor}, headers=token())
        assert r.status_code == 400

    async def test_foreign_feed_cursor_is_400(self, client: AsyncTestClient[Litestar]) -> None:
        from clipstream.http.cursors import CursorSigner

        someone_elses = CursorSigner(SETTINGS.http.jwt_secret, "feed").sign(2002, 1)
        r = await client.get("/v1/feed", params={"cursor": someone_elses}, headers=token(user_id=1001))
        assert r.status_code == 400 and r.json()["detail"] == "invalid cursor"

    @pytest.mark.parametrize("action", ["love", "", "LIKE", None])
    async def test_like_bad_action_is_400(self, client: AsyncTestClient[Litestar], action: Any) -> None:
        r = await client.post("/v1/videos/123/like", json={"action": action}, headers=token())
        assert r.status_code == 400

    async def test_follow_yourself_is_400(self, client: AsyncTestClient[Litestar]) -> None:
        r = await client.post("/v1/users/1001/follow", json={"action": "follow"}, headers=token(user_id=1001))
        assert r.status_code == 400 and "yourself" in r.json()["detail"]

    async def test_follow_bad_action_is_400(self, client: AsyncTestClient[Litestar]) -> None:
        r = await client.post("/v1/users/77/follow", json={"action": "stalk"}, headers=token())
        assert r.status_code == 400

    @pytest.mark.parametrize("vid", ["abc", "-1", "0", "1.5", "99999999999999999999", "%C3%A9"])
    async def test_non_numeric_ids_are_404(self, client: AsyncTestClient[Litestar], vid: str) -> None:
        r = await client.post(f"/v1/videos/{vid}/like", json={"action": "like"}, headers=token())
        assert r.status_code == 404


class TestErrorEdge:
    """Errors of the layers below become 404/409/503 once, at the edge."""

    async def test_storage_errors(self) -> None:
        cases = [
            (NotFound("video 1"), 404),
            (StorageUnavailable("cql down"), 503),
            (BusUnavailable("no ack"), 503),
        ]
        for exc, status in cases:
            async with make_client(videos=_Raising(exc)) as c:
                r = await c.get("/v1/videos/1", headers=token())
                assert r.status_code == status, (exc, r.text)
                if status == 503:
                    assert int(r.headers["retry-after"]) > 0
                assert "cql down" not in r.text  # internals stay inside

    async def test_redis_outage_is_503(self) -> None:
        import redis.exceptions

        async with make_client(cards=_Raising(redis.exceptions.ConnectionError("refused"))) as c:
            r = await c.post("/v1/videos/1/like", json={"action": "like"}, headers=token())
            assert r.status_code == 503 and "retry-after" in r.headers

    async def test_conflict_is_409(self) -> None:
        async with make_client(users=_Raising(Conflict("username"))) as c:
            r = await c.post(
                "/v1/auth/register", json={"username": "taken", "email": "t@example.com", "password": "long enough"}
            )
            assert r.status_code == 409 and "username is already taken" in r.json()["detail"]

    async def test_bug_is_500_without_details(self) -> None:
        async with make_client(videos=_Raising(RuntimeError("secret internals"))) as c:
            r = await c.get("/v1/videos/1", headers=token())
            assert r.status_code == 500 and "secret" not in r.text


def test_error_bodies_share_one_shape() -> None:
    from clipstream.http.errors import ErrorBody

    msgspec.json.decode(b'{"status_code": 400, "detail": "x"}', type=ErrorBody)


async def test_a_connection_that_never_closes_does_not_hang_the_shutdown() -> None:
    import asyncio
    import time

    from clipstream.http.bootstrap import close_within

    async def never() -> None:
        await asyncio.Event().wait()

    started = time.monotonic()
    await close_within(never, "stuck", seconds=0.2)  # logged, not raised
    assert time.monotonic() - started < 2
