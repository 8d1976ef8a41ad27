"""Rate limits per user and per IP, shared by every API worker through Redis, off the request path.

A request is decided in memory: each worker keeps, per counter key, the last global count Redis
gave it plus what it admitted since. Every ``sync_interval`` seconds one round trip (a script) adds
what the worker counted (INCRBY, EXPIRE) and reads back the global counts. So no request waits for
Redis (the feed is the hot path): zero round trips per request, ten per second per worker.

Windows are fixed minutes (``<prefix>:<bucket>:<who>:<minute>``), the same keys in every worker.

The bound: a worker learns what the others admitted when it next syncs a key it counted, so once
the global count of a key reaches the limit ``L``, each worker admits at most what it admits before
its next sync (one interval plus a round trip). Within a window at most ``L`` plus one interval's
worth of that key's requests over all workers are admitted, e.g. two workers taking 1,000 req/s of
one user between them, 100 ms: L + 100. Keys a worker did not count are not read back, so its
Redis traffic is one pipeline per interval, sized by the keys it counted in that interval. As with
any fixed window, a client may spend ``L`` at the end of a minute and ``L`` again at the start of
the next.
If Redis is unreachable the counts stay local (each worker limits on its own; fail open, logged
once per outage) and are added when it returns; a flushed Redis restarts the counts of the minute.

Clients are told why and when to come back: 429 with ``Retry-After`` (seconds to the next window).
The client address is the socket's peer (``scope["client"]``): behind a proxy, run granian with
the proxy's forwarded-address handling so this is the real client, never a header a client sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from typing import Any, AsyncIterator

import structlog
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from clipstream.bus.tasks import stop_task
from clipstream.config.settings import HttpSettings

__all__ = ["RateLimitMiddleware", "RateLimiter", "WINDOW_SECONDS", "limits_of", "refusal"]

log = structlog.get_logger("clipstream.http.ratelimit")

WINDOW_SECONDS = 60
#: seconds a stopping worker waits to add its last counts to Redis
_FINAL_SYNC_TIMEOUT = 2.0

#: the limiter's wall clock; tests that compare two apps' 429s pin it, or a second (or a window)
#: that turns between their two requests gives them different Retry-After headers
clock = time.time

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Liveness probes, scrapes and the docs are never limited (a scraper must not starve an operator).
_UNLIMITED = re.compile(r"^/(health|metrics)$|^/schema(/|$)")
#: KEYS: the counters; ARGV: what this worker adds to each, then their lifetime in seconds.
#: Returns the global counts, in the order of KEYS.
_SYNC_SCRIPT = """
local ttl = tonumber(ARGV[#KEYS + 1])
local totals = {}
for i, key in ipairs(KEYS) do
  totals[i] = redis.call('INCRBY', key, ARGV[i])
  redis.call('EXPIRE', key, ttl)
end
return totals
"""


class RateLimiter:
    """Fixed-window counters decided locally and summed across workers through Redis."""

    __slots__ = ("prefix", "interval", "_window", "_known", "_pending", "_redis", "_failing", "_syncing", "_script")

    def __init__(self, prefix: str, sync_interval: float) -> None:
        self.prefix = prefix
        self.interval = sync_interval
        self._window = -1
        self._known: dict[str, int] = {}  # key -> global count at the last sync
        self._pending: dict[str, int] = {}  # key -> admitted here since the last sync
        self._redis: Redis | None = None
        self._failing = False
        self._script: AsyncScript | None = None
        # One sync at a time: when sync() returns, everything admitted before the call is in Redis.
        self._syncing = asyncio.Lock()

    def admit(self, bucket: str, who: str, limit: int, by: str) -> None:
        """Count one request of ``who`` in ``bucket`` (a limit of 0 is off); over the limit, the
        429 (:func:`refusal`) counted per ``by`` ("ip" or "user")."""
        if limit > 0:
            wait = self.hit(bucket, who, limit)
            if wait is not None:
                raise refusal(bucket, limit, by, wait)

    def hit(self, bucket: str, who: str, limit: int, now: float | None = None) -> int | None:
        """Count one request of ``who`` in ``bucket``: None if admitted, else seconds to wait."""
        now = clock() if now is None else now
        window = int(now // WINDOW_SECONDS)
        if window != self._window:
            # A new minute: the old keys are dead (they expire in Redis on their own).
            self._window, self._known, self._pending = window, {}, {}
        key = f"{self.prefix}:{bucket}:{who}:{window}"
        pending = self._pending.get(key, 0)
        if self._known.get(key, 0) + pending >= limit:
            return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
        self._pending[key] = pending + 1
        return None

    async def sync(self) -> None:
        """Add the local counts to Redis and learn the global ones (one round trip)."""
        async with self._syncing:
            await self._sync()

    async def _sync(self) -> None:
        if self._redis is None or not self._pending:
            return
        pending, window = self._pending, self._window
        self._pending = {}
        try:
            # One script call for every key: a pipeline of an INCRBY and an EXPIRE per key cost
            # redis-py a command to pack and a reply to parse each, a tenth of a worker's time
            # under the feed bench (256 users, 10 syncs a second). The script object loads the
            # script again if Redis lost it (NOSCRIPT after a restart).
            assert self._script is not None
            results = await self._script(keys=list(pending), args=[*pending.values(), 2 * WINDOW_SECONDS])
        except (RedisError, OSError) as exc:
            if window == self._window:  # not rolled over meanwhile: keep the counts for the next try
                for key, count in pending.items():
                    self._pending[key] = self._pending.get(key, 0) + count
            if not self._failing:
                log.warning("rate limit counters not synced; limiting per worker until Redis answers", error=repr(exc))
            self._failing = True
            return
        if self._failing:
            log.info("rate limit counters synced again")
            self._failing = False
        if window == self._window:
            known = self._known
            for key, total in zip(pending, results):
                # Counts only grow within a window: never step back to an older answer.
                known[key] = max(known.get(key, 0), int(total))

    @contextlib.asynccontextmanager
    async def running(self, redis: Redis | None) -> AsyncIterator[None]:
        """Sync every interval while the worker serves; without Redis, count per worker only."""
        self._redis = redis
        if redis is None:
            yield
            return
        self._script = redis.register_script(_SYNC_SCRIPT)

        async def loop() -> None:
            while True:
                await asyncio.sleep(self.interval)
                await self.sync()

        task = asyncio.create_task(loop(), name="rate-limit-sync")
        try:
            yield
        finally:
            await stop_task(task)  # not cancel-and-await: a cancel can get lost (bus/tasks.py)
            with contextlib.suppress(Exception):  # TimeoutError included: never hang a stopping worker
                await asyncio.wait_for(self.sync(), _FINAL_SYNC_TIMEOUT)  # what it admitted still counts
            self._redis = None


_NOUN = {"auth": "sign-in requests (login, register, refresh, logout)", "ip": "requests", "read": "reads", "write": "writes"}


def limits_of(settings: HttpSettings) -> dict[str, int]:
    """Requests per minute of each bucket (0: no limit)."""
    return {"auth": settings.rate_limit_auth, "ip": settings.rate_limit_ip, "read": settings.rate_limit_reads,
            "write": settings.rate_limit_writes}


def refusal(bucket: str, limit: int, by: str, wait: int) -> TooManyRequestsException:
    """The 429 of a request over ``limit`` in ``bucket``, counted per ``by`` ("ip" or "user")."""
    per = "IP address" if by == "ip" else "user"
    return TooManyRequestsException(
        f"rate limit exceeded: at most {limit} {_NOUN[bucket]} per minute per {per}; retry after {wait} s",
        headers={"Retry-After": str(wait)},
    )


class RateLimitMiddleware(ASGIMiddleware):
    """One check of the limits: ``by="ip"`` before authentication, ``by="user"`` after it.

    Per IP: ``/v1/auth/*`` against the auth limit (password guessing, account farming), every
    other request against the per-IP limit (also bounds requests with bad tokens). Per user:
    reads (GET) and writes (anything else) against their own limits. A limit of 0 is off.
    """

    scopes = (ScopeType.HTTP,)
    should_bypass_for_scope = staticmethod(lambda scope: _UNLIMITED.match(scope["path"]) is not None)

    def __init__(self, limiter: RateLimiter, settings: HttpSettings, by: str) -> None:
        if by not in ("ip", "user"):
            raise ValueError(f"by must be 'ip' or 'user', not {by!r}")
        self.limiter = limiter
        self.by = by
        self.limits = limits_of(settings)

    def _bucket(self, scope: Scope) -> tuple[str, str] | None:
        if self.by == "ip":
            client = scope.get("client")
            who = client[0] if client else "unknown"
            return ("auth" if scope["path"].startswith("/v1/auth/") else "ip"), who
        user: Any = scope.get("user")
        if user is None:  # a route without authentication: the per-IP check covered it
            return None
        return ("read" if scope["method"] in _READ_METHODS else "write"), str(user.user_id)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        found = self._bucket(scope)
        if found is not None:
            bucket, who = found
            self.limiter.admit(bucket, who, self.limits[bucket], self.by)
        await next_app(scope, receive, send)
