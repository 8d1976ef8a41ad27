"""The one way a clipstream process connects to NATS (and so to JetStream)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from nats.aio.client import Client

from clipstream.config.settings import NatsSettings

__all__ = ["StopRequested", "connect_nats"]


class StopRequested(Exception):
    """The process was asked to stop while it was still connecting."""


async def connect_nats(settings: NatsSettings, name: str, *, forever: bool = True, stop: asyncio.Event | None = None,
                       **callbacks: Any) -> Client:
    """Connect to the configured servers. ``forever``: a long-running process reconnects without
    limit (a restarted NATS must not need a restart of ours); a tool gives up after one retry.

    ``stop``: the process's stop event. Connecting forever to a NATS that is down would otherwise
    keep a SIGTERM waiting for good; once it is set, the attempt is abandoned with
    :class:`StopRequested`."""
    nc = Client()
    connecting = asyncio.ensure_future(nc.connect(
        servers=[s.strip() for s in settings.url.split(",") if s.strip()],
        name=name,
        connect_timeout=max(1, int(settings.timeout)),
        max_reconnect_attempts=-1 if forever else 1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]
        **callbacks,
    ))
    if stop is None:
        await connecting
        return nc
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if connecting.done():
        connecting.result()  # raises what the connect raised
        return nc
    connecting.cancel()
    with contextlib.suppress(BaseException):
        await connecting
    with contextlib.suppress(Exception):
        await nc.close()
    raise StopRequested(f"stopped while connecting to NATS at {settings.url}")
