"""The one place where an API worker builds its parts from settings and wires them together.

:func:`build_security` makes the pure parts (password hashing, tokens, cursor signers) when the app
is created; :func:`open_services` opens the connections to the outside systems in the Litestar
lifespan of each worker and closes them, in reverse order, when the worker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

import structlog
from litestar.di import NamedDependency
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from redis.asyncio import Redis

from clipstream.bus.connection import connect_nats
from clipstream.bus.publisher import Publisher
from clipstream.bus.status import StatusCache
from clipstream.bus.topology import Topology
from clipstream.config.settings import Settings
from clipstream.http.cards import Cards, MediaUrls
from clipstream.http.cursors import CursorSigner
from clipstream.http.feed_client import FeedClient
from clipstream.http.probe import ObjectStoreProbe
from clipstream.http.security import Passwords, Principal, Tokens
from clipstream.http.sessions import Sessions
from clipstream.storage.cache import Cache, connect_redis
from clipstream.storage.cql import Cql, connect_cql
from clipstream.storage.objects import ObjectStore, make_minio
from clipstream.storage.repos import FeedRepo, FollowRepo, StatsRepo, UserRepo, VideoRepo
from clipstream.storage.sessions import SessionRepo

__all__ = ["CurrentUser", "Security", "Services", "ServicesDep", "build_security", "open_services"]

log = structlog.get_logger("clipstream.http")

# MinioSettings has no timeout field yet; a MinIO call from a request must still give up quickly.
MINIO_TIMEOUT = 5.0
MINIO_PROBE_TIMEOUT = 2.0
#: seconds each connection gets to close when a worker stops
CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Security:
    """Pure computation built from settings: no connections, safe to build at import of the app."""

    passwords: Passwords
    tokens: Tokens
    feed_cursors: CursorSigner
    profile_cursors: CursorSigner
    hashtag_cursors: CursorSigner


def build_security(settings: Settings) -> Security:
    h = settings.http
    return Security(
        passwords=Passwords(),
        tokens=Tokens(h.jwt_secret, h.token_ttl, h.admin_usernames),
        feed_cursors=CursorSigner(h.jwt_secret, "feed"),
        profile_cursors=CursorSigner(h.jwt_secret, "profile"),
        hashtag_cursors=CursorSigner(h.jwt_secret, "hashtag"),
    )


@dataclass(slots=True)
class Services:
    """Everything a request handler uses, opened once per worker."""

    settings: Settings
    security: Security
    cache: Cache
    objects: ObjectStore
    objects_probe: ObjectStoreProbe
    publisher: Publisher
    feed: FeedClient
    #: pages served before, for a cursor older than what the feed entity keeps
    feed_pages: FeedRepo
    cards: Cards
    users: UserRepo
    videos: VideoRepo
    stats: StatsRepo
    follows: FollowRepo
    #: refresh tokens of signed-in sessions
    sessions: Sessions
    #: the nodes' supervision trees over NATS (operator's view and /metrics)
    node_status: StatusCache
    # Raw clients, kept for closing and for health checks.
    cql: Cql | None = None
    redis: Redis | None = None
    nc: NatsClient | None = None
    js: JetStreamContext | None = None


ServicesDep = NamedDependency[Services]
"""Handler parameter ``svc``: the worker's services (provided by the app)."""

CurrentUser = NamedDependency[Principal]
"""Handler parameter ``me``: the authenticated caller (provided by the app)."""


async def _connect_nats(settings: Settings) -> NatsClient:
    async def on_error(exc: Exception) -> None:
        log.warning("nats error", error=repr(exc))

    async def on_disconnect() -> None:
        log.warning("nats disconnected; reconnecting")

    async def on_reconnect() -> None:
        log.info("nats reconnected")

    return await connect_nats(
        settings.nats,
        f"clipstream-api-{os.getpid()}",
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
    )


async def close_within(close: Callable[[], Awaitable[Any]], what: str, seconds: float = CLOSE_TIMEOUT) -> None:
    """Close one connection, giving up after ``seconds``: a worker that stops must not hang on a
    connection that does not finish closing (a CI run once hung for 300 s in an app's shutdown)."""
    try:
        await asyncio.wait_for(close(), seconds)
    except Exception as exc:  # TimeoutError included: the process is going away anyway
        log.warning("connection not closed cleanly", service=what, error=repr(exc))


@contextlib.asynccontextmanager
async def open_services(settings: Settings, security: Security | None = None) -> AsyncIterator[Services]:
    """Connect to CQL, Redis, NATS and MinIO; everything opened is closed on exit, even on failure."""
    security = security or build_security(settings)
    async with contextlib.AsyncExitStack() as stack:
        # The CQL driver connects synchronously: keep the event loop free while it does.
        cql = await asyncio.to_thread(connect_cql, settings.cql, settings.cql.keyspace)
        stack.push_async_callback(close_within, lambda: asyncio.to_thread(cql.close), "cql")

        redis = connect_redis(settings.redis)
        stack.push_async_callback(close_within, redis.aclose, "redis")

        nc = await _connect_nats(settings)
        stack.push_async_callback(close_within, nc.close, "nats")
        js = nc.jetstream(timeout=settings.nats.timeout)

        objects = ObjectStore.from_settings(settings.minio, make_minio(settings.minio, MINIO_TIMEOUT))
        cache = Cache(redis)
        users, videos, stats = UserRepo(cql), VideoRepo(cql), StatsRepo(cql)
        urls = MediaUrls(objects, keep_seconds=settings.minio.media_url_ttl / 2)
        topology = Topology.from_settings(settings.nats)
        yield Services(
            settings=settings,
            security=security,
            cache=cache,
            objects=objects,
            objects_probe=ObjectStoreProbe(objects, timeout=MINIO_PROBE_TIMEOUT),
            publisher=Publisher(nc, topology, settings.actors.partitions, timeout=settings.nats.timeout),
            feed=FeedClient(nc, topology, settings.actors.partitions, settings.nats.timeout),
            feed_pages=FeedRepo(cql),
            cards=Cards(cache, videos, users, stats, urls, item_ttl=settings.http.feed_item_ttl),
            users=users,
            videos=videos,
            stats=stats,
            follows=FollowRepo(cql),
            sessions=Sessions(SessionRepo(cql), settings.http.jwt_secret, settings.http.refresh_ttl),
            node_status=StatusCache(nc, topology),
            cql=cql,
            redis=redis,
            nc=nc,
            js=js,
        )
