"""The two hot routes without Litestar's per-request machinery, for the requests that need none of it.

``GET /v1/feed`` is every swipe of every viewer and ``POST /v1/videos/{id}/like`` the commonest
write. Under the bench an API worker spent about two fifths of a feed request and more than half
of a like in Litestar around the handler (routing, five middleware layers, dependency and
parameter resolution, body parsing, response building), more than in the handler itself.

This ASGI layer in front of the app answers an ordinary request of those two routes with the
components the app uses (token check, rate limiter, cursor signer, the JSON body type, the
handlers' own functions, the request histogram) and hands anything else to the app untouched: a
missing or bad token, an unknown or out-of-range parameter, a bad cursor, a body that is not a
small JSON object of the documented shape (the app gets the body back as it came). Those are
decided before anything is counted, so the app counts and answers them exactly as it documents.
Past the rate limits (which count), errors are answered here with the app's error body through the
app's mapping (:func:`clipstream.http.errors.http_exception_for`).

The Litestar handlers stay: they document the operations in OpenAPI, serve every request this
layer passes on, and call the same functions (:func:`clipstream.http.feed.feed_page`,
:func:`clipstream.http.videos.like`). ``tests/http/test_fastpath.py`` compares both paths answer
for answer; ``CLIPSTREAM_HTTP_FAST_PATHS=0`` turns this layer off.
"""

from __future__ import annotations

import re
import time
from typing import Any, Awaitable, Callable
from urllib.parse import unquote_plus

import msgspec
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from clipstream.config.settings import HttpSettings
from clipstream.http.auth import authorization
from clipstream.http.bodies import is_json
from clipstream.http.cursors import InvalidCursor
from clipstream.http.errors import http_exception_for
from clipstream.http.feed import AFTER_PATTERN, MAX_LIMIT, feed_page
from clipstream.http.metrics import REQUEST_SECONDS
from clipstream.http.ratelimit import RateLimiter, limits_of
from clipstream.http.schemas import LikeRequestBody
from clipstream.http.security import InvalidToken, Principal
from clipstream.http.videos import like

__all__ = ["FastPaths"]

FEED = "/v1/feed"
LIKE = "/v1/videos/{video_id}/like"
_LIKE_PREFIX, _LIKE_SUFFIX = "/v1/videos/", "/like"
_encoder = msgspec.json.Encoder()
_like_body = msgspec.json.Decoder(LikeRequestBody)
_AFTER = re.compile(AFTER_PATTERN)
_JSON = [(b"content-type", b"application/json")]


class _PassOn(Exception):
    """This request is the app's to answer."""


class FastPaths:
    """An ASGI app: ordinary feed and like requests answered here, everything else by ``app``."""

    __slots__ = ("app", "limiter", "limits", "max_body", "_timer")

    def __init__(self, app: ASGIApp, limiter: RateLimiter, settings: HttpSettings) -> None:
        self.app = app
        self.limiter = limiter
        self.limits = limits_of(settings)
        self.max_body = settings.max_body_bytes
        self._timer = REQUEST_SECONDS

    def __getattr__(self, name: str) -> Any:  # the Litestar app's attributes (state, tests' helpers)
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path == FEED and method == "GET":
                return await self._serve(scope, receive, send, FEED, self._feed)
            if method == "POST" and path.startswith(_LIKE_PREFIX) and path.endswith(_LIKE_SUFFIX):
                return await self._serve(scope, receive, send, LIKE, self._like)
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, route: str,
                     handler: Callable[[Scope, Receive, Principal, Any], Awaitable[Callable[[], Awaitable[Any]]]]) -> None:
        started = time.perf_counter()
        svc: Any = self.app.state.services  # type: ignore[attr-defined]
        try:
            token = _bearer(scope)
            me = svc.security.tokens.verify(token)
            # Everything the app could refuse before its handler runs is checked here, uncounted:
            answer = await handler(scope, receive, me, svc)
        except _PassOn as passed:
            replay = passed.args[0] if passed.args else None
            await self.app(scope, receive if replay is None else _replaying(replay, receive), send)
            return
        except InvalidToken:
            await self.app(scope, receive, send)
            return
        status, headers = 200, _JSON
        try:
            self._check_limits(scope, me)
            body = _encoder.encode(await answer())
        except Exception as exc:  # noqa: BLE001 - mapped exactly as the app maps it
            status, body, headers = _error(exc)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self._timer.labels(scope["method"], route, str(status)).observe(time.perf_counter() - started)

    async def _feed(self, scope: Scope, receive: Receive, me: Principal, svc: Any) -> Callable[[], Awaitable[Any]]:
        limit, cursor, after = _feed_query(scope.get("query_string", b""))
        try:
            page = svc.security.feed_cursors.verify(me.user_id, cursor) if cursor is not None else None
        except InvalidCursor:
            raise _PassOn() from None
        return lambda: feed_page(svc, me.user_id, limit, page, after)

    async def _like(self, scope: Scope, receive: Receive, me: Principal, svc: Any) -> Callable[[], Awaitable[Any]]:
        video_id = scope["path"][len(_LIKE_PREFIX) : -len(_LIKE_SUFFIX)]
        if not video_id or "/" in video_id:
            raise _PassOn()
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        if not is_json(content_type):
            raise _PassOn()
        body = await _read_body(receive, self.max_body)
        try:
            action = _like_body.decode(body).action
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            raise _PassOn([{"type": "http.request", "body": body, "more_body": False}]) from None
        return lambda: like(svc, me.user_id, video_id, action == "like")

    def _check_limits(self, scope: Scope, me: Principal) -> None:
        """The app's two checks in its order: per IP, then the user's reads or writes."""
        client, limits, admit = scope.get("client"), self.limits, self.limiter.admit
        admit("ip", client[0] if client else "unknown", limits["ip"], "ip")
        bucket = "read" if scope["method"] == "GET" else "write"
        admit(bucket, str(me.user_id), limits[bucket], "user")


def _bearer(scope: Scope) -> str:
    """The bearer token, or _PassOn (the app answers a missing or malformed one with its 401)."""
    scheme, _, token = (authorization(scope) or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _PassOn()
    return token.strip()


def _feed_query(raw: bytes) -> tuple[int, str | None, int]:
    """(limit, cursor, after) of a query string the app would take as it is, else _PassOn."""
    limit, cursor, after = 10, None, 0
    if not raw:
        return limit, cursor, after
    seen: set[str] = set()
    for part in raw.decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if not part or name in seen:
            raise _PassOn()
        seen.add(name)
        value = unquote_plus(value)
        if name == "limit" and value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_LIMIT:
            limit = int(value)
        elif name == "cursor" and 0 < len(value) <= 64:
            cursor = value
        elif name == "after" and _AFTER.fullmatch(value):
            after = int(value)
        else:
            raise _PassOn()
    return limit, cursor, after


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole body; _PassOn with the messages read so far if it is too large (the app answers
    413) or the client left (the app notices it the same way)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            raise _PassOn(messages)
        size += len(message.get("body", b""))
        if size > limit:
            raise _PassOn(messages)
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in messages)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` for the app after this layer read part of the request: what was read, then the
    client's own."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _error(exc: Exception) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """The app's answer to an exception: its status, its error body, its headers."""
    http = exc if isinstance(exc, HTTPException) else http_exception_for(exc)
    content: dict[str, Any] = {"status_code": http.status_code, "detail": http.detail}
    if http.extra:
        content["extra"] = http.extra
    headers = [*_JSON, *((k.lower().encode(), str(v).encode()) for k, v in (http.headers or {}).items())]
    return http.status_code, _encoder.encode(content), headers
