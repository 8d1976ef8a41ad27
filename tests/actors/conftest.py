"""Fixtures of the actor runtime tests: a private nats-server, a private prefix and admin port per
test, and a real multiprocTCPBase node running the echo test kind.

The NATS server is our own (random port, JetStream on a temporary store), killed in ``finally``, so
these tests need neither ``clipstream stack up`` nor Docker; set ``CLIPSTREAM_TEST_NATS_SERVER`` to
use another binary.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import pytest

from clipstream.actors.leftovers import session_processes
from clipstream.actors.messages import RuntimeOptions
from clipstream.actors.node import Node
from clipstream.actors.testing import DB_ENV, EchoStore
from clipstream.config.settings import ActorSettings, NatsSettings, Settings

ECHO_FACTORY = "clipstream.actors.testing:make_echo_kind"

#: short timings so that failure and restart paths run in seconds
FAST = RuntimeOptions(fetch_timeout=0.1, ack_wait=5.0, stats_interval=0.2, backlog_interval=0.3,
                      flush_retry_max=0.5, stop_timeout=5.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll until ``predicate()`` is truthy; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def _nats_binary() -> str | None:
    from clipstream.stack.nats_service import installed_nats_server

    for candidate in (
        os.environ.get("CLIPSTREAM_TEST_NATS_SERVER"),
        installed_nats_server(),
        shutil.which("nats-server"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private nats-server with JetStream for this test session."""
    binary = _nats_binary()
    if binary is None:
        pytest.skip("no nats-server binary (go install github.com/nats-io/nats-server/v2@latest)")
    port = free_port()
    store = tmp_path_factory.mktemp("nats")
    proc = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: port_open(port) or proc.poll() is not None, 10, what="nats-server")
        if proc.poll() is not None:
            pytest.fail(f"nats-server exited with {proc.returncode}")
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def helpers() -> SimpleNamespace:
    """Helpers for test modules (with --import-mode=importlib they cannot import this file)."""
    return SimpleNamespace(echo_factory=ECHO_FACTORY, fast=FAST, free_port=free_port, port_open=port_open,
                           wait_for=wait_for)


@pytest.fixture
def actor_settings(nats_url: str) -> Settings:
    """Settings private to one test: own subject prefix (so own streams and consumers), own port."""
    prefix = "t" + uuid.uuid4().hex[:10]
    return Settings(
        nats=NatsSettings(url=nats_url, subject_prefix=prefix, minio_subject=f"{prefix}.minio.events"),
        actors=ActorSettings(partitions=8, shards=2, admin_port=free_port(), flush_interval=0.1,
                             restart_backoff=0.2, restart_budget=3, node_name="test-node"),
    )


@pytest.fixture
def echo_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EchoStore:
    """The echo kind's SQLite file; shard processes find it through the environment."""
    path = str(tmp_path / "echo.db")
    monkeypatch.setenv(DB_ENV, path)
    return EchoStore(path)


@pytest.fixture
def node(actor_settings: Settings, echo_store: EchoStore) -> Iterator[Node]:
    """A running multiprocTCPBase node with the echo kind as "counter"; on teardown it must leave
    no process of its actor system and a free admin port."""
    n = Node(actor_settings, kinds={"counter": ECHO_FACTORY}, options=FAST)
    n.start()
    session = n.status().guardian.session
    try:
        n.wait_ready(30)
        yield n
    finally:
        n.shutdown()
        assert session_processes(session) == [], "actor processes left behind"
        assert not port_open(actor_settings.actors.admin_port), "admin port still open"
