"""The whole system as separate processes (`clipstream run`: API, node, worker) on the real stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

CLIPSTREAM = str(Path(sys.executable).with_name("clipstream"))
# Overridable so that two engineers' sessions on one machine do not share a port (granian binds
# with SO_REUSEPORT, so a second system would silently split the requests with the first).
PORT = int(os.environ.get("E2E_HTTP_PORT", "18080"))
ADMIN_PORT = int(os.environ.get("E2E_ADMIN_PORT", "19650"))
#: this session's admin user (registered by the tests that need it) and node name: other sessions'
#: nodes may answer the same status subject, so tests find theirs by name
ADMIN_USERNAME = f"e2eadmin{uuid.uuid4().hex[:10]}"
NODE_NAME = f"e2e-{uuid.uuid4().hex[:8]}"
#: the running `clipstream run` process of this session, for the tests that kill its children
_RUNNING: dict[str, subprocess.Popen[bytes]] = {}


def make_system_env() -> dict[str, str]:
    """The environment of the system's processes, for tools run against it (`clipstream actors`)."""
    return {
        **os.environ,
        "PYTHONSAFEPATH": "1",
        "CLIPSTREAM_HTTP_PORT": str(PORT),
        "CLIPSTREAM_HTTP_WORKERS": "1",
        "CLIPSTREAM_ACTORS_ADMIN_PORT": str(ADMIN_PORT),
        "CLIPSTREAM_HTTP_ADMIN_USERNAMES": ADMIN_USERNAME,
        "CLIPSTREAM_ACTORS_NODE_NAME": NODE_NAME,
    }


@pytest.fixture(scope="session")
def system_env() -> dict[str, str]:
    return make_system_env()


@pytest.fixture(scope="session")
def admin_username() -> str:
    return ADMIN_USERNAME


@pytest.fixture(scope="session")
def node_name() -> str:
    return NODE_NAME


@pytest.fixture(scope="session")
def system(migrated, cql, tmp_path_factory):
    """Base URL of a running system; its processes are stopped (by pid) in finally."""
    import redis

    # This session's videos alone: Redis holds derived data only, and the worker's cache keeper
    # rebuilds the candidate lists from every ready video in the keyspace. Earlier sessions' videos
    # piled up there (5,250 on a machine after a day of runs) until a test reading a whole feed
    # found more than its 500 pages.
    cql.execute_sync("TRUNCATE videos")
    redis.Redis.from_url(migrated.redis.url).flushdb()
    log = tmp_path_factory.mktemp("system") / "run.log"
    env = make_system_env()
    with open(log, "wb") as out:
        proc = subprocess.Popen([CLIPSTREAM, "run"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{PORT}"
    _RUNNING["run"] = proc
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"clipstream run exited:\n{log.read_text()[-4000:]}"
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"API did not come up:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _RUNNING.pop("run", None)
        print(f"--- clipstream run log (tail) ---\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def system_process(system) -> subprocess.Popen[bytes]:
    """The `clipstream run` supervisor of :func:`system` (its children are api, node and worker)."""
    return _RUNNING["run"]
