"""Fixtures of the HTTP tests: settings, token helpers, and the real stack for integration tests.

Unit tests build the app with a stand-in services factory (no network). Integration tests build it
with the real one against the services of ``clipstream stack up``; they skip when a service is down.
Bus subjects use a prefix of their own so these tests never feed another engineer's actor node.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from typing import Any, AsyncIterator

import msgspec
import pytest

from clipstream.config.settings import NatsSettings, Settings
from clipstream.http.bootstrap import Security, Services

TEST_PREFIX = "cshttptest"


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


STACK = {"redis": 6379, "nats": 4222, "cql": 9042, "minio": 9000}


def stack_missing() -> list[str]:
    return [name for name, port in STACK.items() if not _port_open("127.0.0.1", port)]


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Default settings with the bus moved to this suite's own subjects and streams."""
    return Settings(nats=NatsSettings(subject_prefix=TEST_PREFIX, minio_subject=f"{TEST_PREFIX}.minio.events"))


def with_nats(settings: Settings, **changes: Any) -> Settings:
    return msgspec.structs.replace(settings, nats=msgspec.structs.replace(settings.nats, **changes))


def fake_services(settings: Settings, **parts: Any) -> Any:
    """A services factory for unit tests: only the parts a test passes exist (the rest are None)."""

    @contextlib.asynccontextmanager
    async def factory(s: Settings, security: Security) -> AsyncIterator[Services]:
        fields = {f: None for f in Services.__dataclass_fields__}
        fields.update(settings=s, security=security, **parts)
        yield Services(**fields)

    return factory


def unique_name(prefix: str = "u") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def live_stack() -> None:
    missing = stack_missing()
    if missing:
        pytest.skip(f"stack not running ({', '.join(missing)} down): run `clipstream stack up`")


@pytest.fixture(scope="session")
async def schema(live_stack: None, base_settings: Settings) -> None:
    """The CQL schema, applied once per session (idempotent)."""
    import asyncio

    from clipstream.storage.cql import apply_migrations

    await asyncio.to_thread(apply_migrations, base_settings.cql)


@pytest.fixture(scope="session")
async def streams(live_stack: None, base_settings: Settings) -> AsyncIterator[None]:
    """This suite's JetStream streams, created for the session and deleted after it."""
    import nats

    from clipstream.bus.topology import Topology, ensure_streams

    topology = Topology.from_settings(base_settings.nats)
    nc = await nats.connect(base_settings.nats.url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, topology)
        yield
        for spec in topology.streams:
            with contextlib.suppress(Exception):
                await js.delete_stream(spec.name)
    finally:
        await nc.close()
