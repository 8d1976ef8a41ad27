"""Bad input at the HTTP edge: each is a clear 4xx with a message, never a 500 (no services needed).

Complements test_app_unit (field validation, limits, cursors) with what it did not cover: content
types (415), non-UTF-8 bodies and query strings, unknown fields on every body, lying or huge
lengths, hostile JSON shapes, and what the OpenAPI document says about all of it.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from clipstream.config.settings import HttpSettings, Settings
from clipstream.http.app import create_app
from clipstream.http.cursors import CursorSigner
from clipstream.http.security import Tokens
from clipstream.storage.errors import NotFound
from tests.http.conftest import fake_services

SETTINGS = Settings(http=HttpSettings(max_body_bytes=2048))
ME = 1001

Client = AsyncTestClient[Litestar]

# Every route with a JSON body, with a body that is valid for it.
BODY_ROUTES = [
    ("/v1/auth/register", {"username": "alice", "email": "a@example.com", "password": "long enough"}),
    ("/v1/auth/login", {"username": "alice", "password": "long enough"}),
    (f"/v1/users/{ME}/follow", {"action": "follow"}),
    ("/v1/videos/123/like", {"action": "like"}),
    ("/v1/videos/upload-url", {"file_size_bytes": 10, "file_format": "mp4"}),
]


class _Missing:
    """A repository or cache where nothing exists: every read is NotFound (a 404, decided early)."""

    def __getattr__(self, name: str) -> Any:
        async def missing(*args: Any, **kwargs: Any) -> Any:
            raise NotFound(name)

        return missing


def auth(user_id: int = ME) -> dict[str, str]:
    tokens = Tokens(SETTINGS.http.jwt_secret, SETTINGS.http.token_ttl)
    return {"Authorization": f"Bearer {tokens.issue(user_id, 'alice')}"}


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    parts = {"users": _Missing(), "videos": _Missing(), "cards": _Missing()}
    async with AsyncTestClient(app=create_app(SETTINGS, services=fake_services(SETTINGS, **parts))) as c:
        yield c


class TestContentType:
    @pytest.mark.parametrize(("path", "body"), BODY_ROUTES)
    @pytest.mark.parametrize(
        "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data", None]
    )
    async def test_a_body_that_is_not_json_is_415(self, client: Client, path: str, body: Any, content_type: str | None) -> None:
        import json

        headers = {**auth(), "Content-Type": content_type} if content_type else auth()
        r = await client.post(path, content=json.dumps(body).encode(), headers=headers)
        if content_type is None:  # httpx sends no Content-Type for raw content
            assert "content-type" not in r.request.headers
        assert r.status_code == 415, r.text
        assert r.json() == {"status_code": 415, "detail": "request bodies must be JSON: send Content-Type: application/json"}

    @pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"])
    async def test_json_spellings_are_accepted(self, client: Client, content_type: str) -> None:
        r = await client.post(
            "/v1/videos/upload-url", content=b'{"file_size_bytes": 10, "file_format": "avi"}',
            headers={**auth(), "Content-Type": content_type},
        )
        assert r.status_code == 400 and "file_format" in r.text  # reached the handler's own check

    async def test_a_route_without_a_body_needs_no_content_type(self, client: Client) -> None:
        r = await client.post("/v1/videos/123/view", content=b"", headers={**auth(), "Content-Type": "text/plain"})
        assert r.status_code == 404  # the video (not the content type) is what is missing


class TestEncoding:
    @pytest.mark.parametrize(("path", "body"), BODY_ROUTES)
    async def test_non_utf8_inside_a_json_string_is_400(self, client: Client, path: str, body: dict[str, Any]) -> None:
        field = next(iter(body))
        raw = b'{"' + field.encode() + b'": "\xff\xfe\xfa"}'
        r = await client.post(path, content=raw, headers={**auth(), "Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["detail"] == "request body is not valid UTF-8"

    @pytest.mark.parametrize("query", ["limit=%ff", "limit=%c0%af", "cursor=%ff%fe%fd", "limit=1%00", "cursor=%00"])
    async def test_non_utf8_or_nul_in_the_query_string_is_400(self, client: Client, query: str) -> None:
        for path in ("/v1/feed", f"/v1/users/{ME}/videos"):
            r = await client.get(f"{path}?{query}", headers=auth())
            assert r.status_code == 400, (path, query, r.text)
            assert r.json()["detail"]

    @pytest.mark.parametrize("vid", ["%ff", "%c0%af", "%00", "..%2f..%2fetc"])
    async def test_hostile_path_ids_are_404(self, client: Client, vid: str) -> None:
        r = await client.get(f"/v1/videos/{vid}", headers=auth())
        assert r.status_code == 404


class TestShapes:
    @pytest.mark.parametrize(("path", "body"), BODY_ROUTES)
    async def test_unknown_fields_are_refused_by_name(self, client: Client, path: str, body: dict[str, Any]) -> None:
        r = await client.post(path, json={**body, "is_admin": True}, headers=auth())
        assert r.status_code == 400, r.text
        assert "unknown field `is_admin`" in r.text

    @pytest.mark.parametrize(
        "raw",
        [
            b"[" * 1000 + b"]" * 1000,  # deep nesting, inside the size limit
            b'{"action": "like", "action": "unlike"}' * 1,  # duplicate keys: the last one must not sneak in unchecked
            b'"like"',
            b"null",
            b"1e999999",
            b'{"action": ' + b"9" * 1000 + b"}",
        ],
    )
    async def test_hostile_json_is_400(self, client: Client, raw: bytes) -> None:
        r = await client.post("/v1/videos/123/like", content=raw, headers={**auth(), "Content-Type": "application/json"})
        # duplicate keys decode to a valid body: the video, not the body, is then what is missing
        assert r.status_code in ((404,) if raw.count(b'"action"') == 2 else (400,)), (raw[:40], r.text)

    # (A string of digits, "10", is read as 10: Litestar converts request data in lax mode.)
    @pytest.mark.parametrize("size", [-1, -(2**63), 2**63, 10**30, 1.5, "ten", True, None, [10], {"n": 10}])
    async def test_bad_sizes_are_400(self, client: Client, size: Any) -> None:
        r = await client.post("/v1/videos/upload-url", json={"file_size_bytes": size, "file_format": "mp4"}, headers=auth())
        assert r.status_code == 400, (size, r.text)

    @pytest.mark.parametrize("limit", ["99999999999999999999999999", "-99999999999999999999", "51", "0", "NaN", "inf", ""])
    async def test_huge_or_odd_limits_are_400(self, client: Client, limit: str) -> None:
        for path in ("/v1/feed", f"/v1/users/{ME}/videos"):
            r = await client.get(path, params={"limit": limit}, headers=auth())
            assert r.status_code == 400, (path, limit, r.text)

    async def test_forged_profile_cursors_are_400(self, client: Client) -> None:
        other_purpose = CursorSigner(SETTINGS.http.jwt_secret, "feed").sign(ME, 5)  # a feed cursor
        other_key = CursorSigner("another-secret-of-enough-length!", "profile").sign(ME, 5)
        other_scope = CursorSigner(SETTINGS.http.jwt_secret, "profile").sign(ME + 1, 5)
        for cursor in (other_purpose, other_key, other_scope, "AAAA", "x" * 64):
            r = await client.get(f"/v1/users/{ME}/videos", params={"cursor": cursor}, headers=auth())
            assert r.status_code == 400 and r.json()["detail"] == "invalid cursor", cursor
        r = await client.get(f"/v1/users/{ME}/videos", params={"cursor": "x" * 65}, headers=auth())
        assert r.status_code == 400


class TestSizes:
    async def test_a_body_over_the_limit_is_413_whatever_its_type(self, client: Client) -> None:
        big = b"{" + b" " * 4000 + b"}"
        for path, _ in BODY_ROUTES:
            r = await client.post(path, content=big, headers={**auth(), "Content-Type": "application/json"})
            assert r.status_code == 413, (path, r.text)
            assert r.json()["detail"] == "request body too large: the limit is 2048 bytes"

    async def test_a_lying_content_length_is_413(self, client: Client) -> None:
        r = await client.post(
            "/v1/auth/login", content=b'{"username": "a", "password": "b"}',
            headers={"Content-Type": "application/json", "Content-Length": str(10**12)},
        )
        assert r.status_code == 413


class TestTheDocumentSaysSo:
    async def test_bodies_forbid_unknown_fields_and_list_their_errors(self, client: Client) -> None:
        doc = (await client.get("/schema/openapi.json")).json()
        for path, _ in BODY_ROUTES:
            template = path.replace(str(ME), "{user_id}").replace("123", "{video_id}")
            op = doc["paths"][template]["post"]
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
            assert schema["additionalProperties"] is False, template
            assert {"400", "413", "415", "429"} <= set(op["responses"]), template

    async def test_a_zero_bound_is_in_the_document(self, client: Client) -> None:
        # Litestar leaves out a bound of 0 (falsy); schemathesis then sent watched_ms=-1 as valid.
        doc = (await client.get("/schema/openapi.json")).json()
        watched = doc["components"]["schemas"]["ViewRequestBody"]["properties"]["watched_ms"]
        assert watched["minimum"] == 0 and watched["maximum"] == 3_600_000
        r = await client.post("/v1/videos/123/view", json={"watched_ms": -1}, headers=auth())
        assert r.status_code == 400 and r.json()["extra"][0]["key"] == "watched_ms"


class TestRawBytes:
    """What a client can send that httpx would escape: raw non-UTF-8 bytes in path and query."""

    @staticmethod
    async def _call(app: Litestar, path: bytes, query: bytes) -> tuple[int, bytes]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path.decode("latin-1"), "raw_path": path, "root_path": "", "query_string": query,
            "headers": [(b"host", b"testserver"), (b"authorization", auth()["Authorization"].encode())],
            "client": ("127.0.0.1", 50000), "server": ("testserver", 80), "state": {},
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)  # type: ignore[arg-type]
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], body

    @pytest.mark.parametrize("query", [b"limit=\xff", b"cursor=\xff\xfe", b"limit=1&cursor=\xc0\xaf", b"limit=0&\xff=\xff"])
    async def test_raw_non_utf8_query_is_a_4xx(self, client: Client, query: bytes) -> None:
        status, body = await self._call(client.app, b"/v1/feed", query)
        assert 400 <= status < 500, (status, body)
        assert b"detail" in body
