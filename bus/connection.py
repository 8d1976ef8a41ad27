"""The one way a clipstream process connects to NATS (and so to JetStream)."""

from __future__ import annotations

from typing import Any

import nats
from nats.aio.client import Client

from clipstream.config.settings import NatsSettings

__all__ = ["connect_nats"]


async def connect_nats(settings: NatsSettings, name: str, *, forever: bool = True, **callbacks: Any) -> Client:
    """Connect to the configured servers. ``forever``: a long-running process reconnects without
    limit (a restarted NATS must not need a restart of ours); a tool gives up after one retry."""
    return await nats.connect(
        servers=[s.strip() for s in settings.url.split(",") if s.strip()],
        name=name,
        connect_timeout=max(1, int(settings.timeout)),
        max_reconnect_attempts=-1 if forever else 1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]
        **callbacks,
    )
