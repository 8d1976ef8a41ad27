"""The whole system as separate processes (`clipstream run`: API, node, worker) on the real stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CLIPSTREAM = str(Path(sys.executable).with_name("clipstream"))
PORT = 18080


@pytest.fixture(scope="session")
def system(migrated, tmp_path_factory):
    """Base URL of a running system; its processes are stopped (by pid) in finally."""
    import redis

    redis.Redis.from_url(migrated.redis.url).flushdb()  # derived data only: this session's videos alone
    log = tmp_path_factory.mktemp("system") / "run.log"
    env = {
        **os.environ,
        "PYTHONSAFEPATH": "1",
        "CLIPSTREAM_HTTP_PORT": str(PORT),
        "CLIPSTREAM_HTTP_WORKERS": "1",
        "CLIPSTREAM_ACTORS_ADMIN_PORT": "19650",
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen([CLIPSTREAM, "run"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{PORT}"
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
        print(f"--- clipstream run log (tail) ---\n{log.read_text()[-3000:]}")
