"""Project-wide fixtures: isolated settings and clients of the real services.

Integration tests talk to the real Redis, NATS JetStream, CQL and MinIO started by
``clipstream stack up`` (the README's test command starts it first). Test data goes to its own
keyspace and Redis database so a developer's running system is left alone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Before anything reads settings (get_settings is cached): isolate test data.
os.environ.setdefault("CLIPSTREAM_CQL_KEYSPACE", "clipstream_test")
os.environ.setdefault("CLIPSTREAM_REDIS_URL", "redis://127.0.0.1:6379/15")

CLIPSTREAM = str(Path(sys.executable).with_name("clipstream"))


#: seconds before pytest-timeout's own limit at which a hung test's asyncio tasks are printed
_TASKS_DUMP_LEAD = 5.0


def _dump_asyncio_tasks(nodeid: str) -> None:
    """Print every pending task of every running event loop, with its await stack.

    pytest-timeout prints the threads' stacks, and those only show a loop idle in ``select``. The
    question is what a task is awaiting: a lifespan shutdown that hung in CI, for instance, was
    waiting for a task that had lost its cancel (bus/tasks.py)."""
    import asyncio
    import io

    out = io.StringIO()
    out.write(f"\n+++ {nodeid}: asyncio tasks {_TASKS_DUMP_LEAD:.0f} s before the timeout +++\n")
    for frame in list(sys._current_frames().values()):
        while frame is not None:
            loop = frame.f_locals.get("self") if frame.f_code.co_name == "run_forever" else None
            if isinstance(loop, asyncio.AbstractEventLoop):
                try:
                    for task in asyncio.all_tasks(loop):
                        out.write(f"{task!r}\n")
                        task.print_stack(limit=8, file=out)
                except Exception as exc:  # another thread's loop changes under us: say so, go on
                    out.write(f"(tasks of {loop!r} not listed: {exc!r})\n")
                break
            frame = frame.f_back
    sys.stderr.write(out.getvalue())
    sys.stderr.flush()


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item, settings):
    """Beside pytest-timeout's timer (this returns None, so it sets its own too): a timer that
    prints the asyncio tasks shortly before it fires."""
    import threading

    if settings.timeout and settings.timeout > 2 * _TASKS_DUMP_LEAD:
        timer = threading.Timer(settings.timeout - _TASKS_DUMP_LEAD, _dump_asyncio_tasks, (item.nodeid,))
        timer.daemon = True
        timer.start()
        item._tasks_dump_timer = timer
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item):
    timer = getattr(item, "_tasks_dump_timer", None)
    if timer is not None:
        timer.cancel()
    return None


def pytest_collection_modifyitems(config, items) -> None:
    """Tests that restart the shared services run last, so no other test sees the restart; tests
    that need the shared system's feed as it starts (``first``) run before everything else."""
    items.sort(key=lambda item: (item.get_closest_marker("disruptive") is not None,
                                 item.get_closest_marker("first") is None))


@pytest.fixture(scope="session")
def settings():
    from clipstream.config import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def migrated(settings):
    """The test keyspace with every migration applied."""
    from clipstream.storage.cql import apply_migrations

    apply_migrations(settings.cql)
    return settings


@pytest.fixture(scope="session")
def cql(migrated):
    from clipstream.storage.cql import connect_cql

    session = connect_cql(migrated.cql, migrated.cql.keyspace)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
async def redis(settings):
    from redis.asyncio import Redis

    client = Redis.from_url(settings.redis.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def nc(settings):
    import nats

    conn = await nats.connect(settings.nats.url, max_reconnect_attempts=2, connect_timeout=5)
    try:
        yield conn
    finally:
        await conn.drain()


@pytest.fixture
async def js(nc, settings):
    from clipstream.bus.topology import Topology, ensure_streams

    context = nc.jetstream()
    await ensure_streams(context, Topology.from_settings(settings.nats))
    return context
