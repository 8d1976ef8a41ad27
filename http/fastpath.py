"""``GET /v1/feed`` without Litestar's per-request machinery, for the requests that need none of it.

The feed is the hot path: every swipe of every viewer. Under the bench an API worker spent about
two fifths of its time in Litestar around the handler (routing, five middleware layers, dependency
and parameter resolution, response building), more than in the handler itself. This ASGI layer in
front of the app answers an ordinary feed request with the same components the app uses (token
check, rate limiter, cursor signer, feed client, cards, the request histogram) and hands anything
else to the app untouched: a missing or bad token, an unknown or out-of-range parameter, a bad
cursor. Those are decided before anything is counted, so the app counts and answers them exactly
as it documents. Past the rate limits (which count), errors are answered here with the app's
error body, through the same mapping (:func:`clipstream.http.errors.http_exception_for`).

The Litestar handler (:mod:`clipstream.http.feed`) stays: it documents the operation in OpenAPI,
serves every request this layer passes on, and both call :func:`clipstream.http.feed.feed_page`.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote_plus

import msgspec
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, Scope, Send

from clipstream.config.settings import HttpSettings
from clipstream.http.cursors import InvalidCursor
from clipstream.http.errors import http_exception_for
from clipstream.http.feed import MAX_LIMIT, feed_page
from clipstream.http.metrics import REQUEST_SECONDS
from clipstream.http.ratelimit import RateLimiter, refusal
from clipstream.http.security import InvalidToken, Principal

__all__ = ["FeedFastPath"]

PATH = "/v1/feed"
_encoder = msgspec.json.Encoder()
_JSON = [(b"content-type", b"application/json")]


class FeedFastPath:
    """An ASGI app: ordinary ``GET /v1/feed`` requests answered here, everything else by ``app``."""

    __slots__ = ("app", "limiter", "ip_limit", "read_limit", "_timer")

    def __init__(self, app: ASGIApp, limiter: RateLimiter, settings: HttpSettings) -> None:
        self.app = app
        self.limiter = limiter
        self.ip_limit = settings.rate_limit_ip
        self.read_limit = settings.rate_limit_reads
        self._timer = REQUEST_SECONDS

    def __getattr__(self, name: str) -> Any:  # the Litestar app's attributes (state, tests' helpers)
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        plain = _plain_request(scope)
        if plain is None:
            await self.app(scope, receive, send)  # the app answers it, 4xx and all
            return
        token, limit, cursor = plain
        svc: Any = self.app.state.services  # type: ignore[attr-defined]
        try:
            me = svc.security.tokens.verify(token)
            page = svc.security.feed_cursors.verify(me.user_id, cursor) if cursor is not None else None
        except (InvalidToken, InvalidCursor):
            await self.app(scope, receive, send)
            return
        status, body, headers = 200, b"", _JSON
        try:
            self._check_limits(scope, me)
            body = _encoder.encode(await feed_page(svc, me.user_id, limit, page))
        except Exception as exc:  # noqa: BLE001 - mapped exactly as the app maps it
            status, body, headers = _error(exc)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self._timer.labels("GET", PATH, str(status)).observe(time.perf_counter() - started)

    def _check_limits(self, scope: Scope, me: Principal) -> None:
        """The app's two checks in its order: per IP, then the user's reads."""
        client = scope.get("client")
        for bucket, who, limit, by in (("ip", client[0] if client else "unknown", self.ip_limit, "ip"),
                                       ("read", str(me.user_id), self.read_limit, "user")):
            if limit > 0:
                wait = self.limiter.hit(bucket, who, limit)
                if wait is not None:
                    raise refusal(bucket, limit, by, wait)


def _plain_request(scope: Scope) -> tuple[str, int, str | None] | None:
    """(token, limit, cursor) of a request with a bearer token and valid parameters, else None."""
    token = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            token = token.strip()
            break
    if token is None:
        return None
    limit, cursor = 10, None
    raw: bytes = scope.get("query_string", b"")
    if raw:
        seen: set[str] = set()
        for part in raw.decode("latin-1").split("&"):
            name, _, value = part.partition("=")
            if name in seen or not part:
                return None
            seen.add(name)
            value = unquote_plus(value)
            if name == "limit":
                if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_LIMIT):
                    return None
                limit = int(value)
            elif name == "cursor":
                if not value or len(value) > 64:
                    return None
                cursor = value
            else:
                return None
    return token, limit, cursor


def _error(exc: Exception) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """The app's answer to an exception: its status, its error body, its headers."""
    http = exc if isinstance(exc, HTTPException) else http_exception_for(exc)
    content: dict[str, Any] = {"status_code": http.status_code, "detail": http.detail}
    if http.extra:
        content["extra"] = http.extra
    headers = [*_JSON, *((k.lower().encode(), str(v).encode()) for k, v in (http.headers or {}).items())]
    return http.status_code, _encoder.encode(content), headers
