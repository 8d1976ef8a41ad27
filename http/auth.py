"""Accounts and authentication: register, log in, refresh, log out, and the bearer-token check.

An access token is a short-lived JWT checked without I/O on every request; the session behind it is
a refresh token (:mod:`clipstream.http.sessions`), rotated by ``/v1/auth/refresh`` and revoked by
``/v1/auth/logout``, so a client stays signed in without a long-lived access token.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.params import JSONBody, Parameter
from litestar.types import ASGIApp

from clipstream.bus.publisher import BusUnavailable
from clipstream.http.bootstrap import Services, ServicesDep
from clipstream.http.errors import ServiceUnavailable, errors
from clipstream.http.feed import MAX_LIMIT, feed_page
from clipstream.http.schemas import (FeedResponse, LoginRequest, LoginResponse, RefreshRequest, RegisterRequest,
                                     RegisterResponse, TokenResponse)
from clipstream.http.security import InvalidToken, Principal, Tokens
from clipstream.http.sessions import Sessions
from clipstream.storage.errors import NotFound, StorageUnavailable
from clipstream.storage.ids import new_id
from clipstream.storage.models import User
from clipstream.storage.repos import now_ms

__all__ = ["AUTH_HANDLERS", "BearerAuthMiddleware", "authorization", "current_user", "login", "logout", "refresh",
           "register"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="clipstream"'}


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Verifies ``Authorization: Bearer <jwt>``; handlers with ``exclude_from_auth=True`` skip it."""

    def __init__(self, app: ASGIApp, tokens: Tokens, exclude: str | list[str] | None = None) -> None:
        super().__init__(app, exclude=exclude)
        self.tokens = tokens

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = authorization(connection.scope)
        if not header:
            raise NotAuthorizedException("missing bearer token", headers=_CHALLENGE)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthorizedException("expected 'Authorization: Bearer <token>'", headers=_CHALLENGE)
        try:
            principal = self.tokens.verify(token.strip())
        except InvalidToken as exc:
            raise NotAuthorizedException(str(exc), headers=_CHALLENGE) from None
        return AuthenticationResult(user=principal, auth=token)


def authorization(scope: Any) -> str | None:
    """The Authorization header, read off the raw ASGI headers (names arrive lower-cased): building
    Litestar's Headers for one lookup was ~9 % of an API worker's time under the like bench."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def current_user(request: Request[Principal, str, Any], svc: ServicesDep) -> Principal:
    """Dependency: the authenticated caller (set by the middleware).

    It names ``svc`` only to be resolved after it: Litestar resolves the dependencies of one
    level together in an anyio task group (a task each), and for two trivial ones that group was
    13 % of an API worker's time in py-spy; one after the other, each is a plain call."""
    del svc
    return request.user


@post("/v1/auth/register", status_code=201, exclude_from_auth=True, tags=["auth"], responses=errors(400, 409, 413, 415, 503))
async def register(data: JSONBody[RegisterRequest], svc: ServicesDep) -> RegisterResponse:
    """Create an account; 409 if the username or email is taken."""
    password_hash = await svc.security.passwords.hash(data.password)
    tokens = svc.security.tokens
    user = User(
        user_id=new_id(),
        username=data.username,
        email=data.email.strip().lower(),
        password_hash=password_hash,
        is_admin=tokens.role_of(data.username) == "admin",
        created_at=now_ms(),
    )
    await svc.users.create(user)  # Conflict -> 409 at the edge
    return RegisterResponse(user_id=str(user.user_id), username=user.username)


@post("/v1/auth/login", status_code=200, exclude_from_auth=True, tags=["auth"], responses=errors(400, 401, 413, 415, 503))
async def login(
    data: JSONBody[LoginRequest],
    svc: ServicesDep,
    feed: Annotated[int, Parameter(ge=0, le=MAX_LIMIT, description="also answer the first page of the For You "
                                   "feed with this many videos (0: none), saving a client the round trip")] = 0,
) -> LoginResponse:
    """Exchange username and password for a bearer token; 401 on bad credentials."""
    try:
        user: User | None = await svc.users.by_username(data.username)
    except NotFound:
        user = None
    ok = await svc.security.passwords.verify(user.password_hash if user else None, data.password)
    if user is None or not ok:
        raise NotAuthorizedException("invalid username or password")
    # the feed's page only once the password is verified, beside the session's write
    session = asyncio.ensure_future(svc.sessions.start(user.user_id, user.username))
    page = await _first_page(svc, user.user_id, feed) if feed else None
    tokens = _signed_in(svc.security.tokens, svc.sessions, user.user_id, user.username, await session)
    return LoginResponse(**msgspec.structs.asdict(tokens), feed=page)


async def _first_page(svc: Services, user_id: int, limit: int) -> FeedResponse | None:
    """A new feed page for the login's answer; none if the feed is unavailable: the sign-in still
    works and the client asks ``/v1/feed`` itself."""
    try:
        return await feed_page(svc, user_id, limit, None)
    except (BusUnavailable, StorageUnavailable, ServiceUnavailable):
        return None


def _signed_in(tokens: Tokens, sessions: Sessions, user_id: int, username: str, refresh_token: str) -> TokenResponse:
    return TokenResponse(
        access_token=tokens.issue(user_id, username),
        expires_in=tokens.ttl,
        user_id=str(user_id),
        refresh_token=refresh_token,
        refresh_expires_in=sessions.ttl,
        username=username,
    )


@post("/v1/auth/refresh", status_code=200, exclude_from_auth=True, tags=["auth"], responses=errors(400, 401, 413, 415, 503))
async def refresh(data: JSONBody[RefreshRequest], svc: ServicesDep) -> TokenResponse:
    """Spend a refresh token for a new access token and the session's next refresh token.

    401 if the token is unknown, expired or signed out; a token presented a second time signs its
    session out (it was copied) and is a 401 too."""
    try:
        (user_id, username), next_token = await svc.sessions.rotate(data.refresh_token)
    except InvalidToken as exc:
        raise NotAuthorizedException(str(exc)) from None
    return _signed_in(svc.security.tokens, svc.sessions, user_id, username, next_token)


@post("/v1/auth/logout", status_code=204, exclude_from_auth=True, tags=["auth"], responses=errors(400, 401, 413, 415, 503))
async def logout(data: JSONBody[RefreshRequest], svc: ServicesDep) -> None:
    """Sign a session out: its refresh tokens stop working (access tokens issued to it expire on
    their own, within ``expires_in``); 401 if the token is unknown or expired."""
    try:
        await svc.sessions.end(data.refresh_token)
    except InvalidToken as exc:
        raise NotAuthorizedException(str(exc)) from None


AUTH_HANDLERS = [register, login, refresh, logout]
