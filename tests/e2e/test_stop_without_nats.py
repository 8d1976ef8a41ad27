"""A process asked to stop while NATS is unreachable stops within its bound (issue 16).

The worker connected to NATS forever before it looked at its stop event, so a SIGTERM (a Ctrl-C
of ``clipstream run``) waited until ``run`` killed it; the node's status connection did the same
before the node's own stop. NATS is "unreachable" here by pointing the process at a closed port
(the shared NATS is left alone).
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.nodes import CLIPSTREAM, free_port, private_bus

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("process", ["worker", "node"])
def test_sigterm_while_nats_is_unreachable_stops_it(process: str, migrated, tmp_path: Path) -> None:
    env, _ = private_bus("ns" + uuid.uuid4().hex[:8], 8, 2)
    env.update(CLIPSTREAM_NATS_URL=f"nats://127.0.0.1:{free_port()}", CLIPSTREAM_ACTORS_ADMIN_PORT=str(free_port()),
               CLIPSTREAM_STACK_STATE_DIR=str(tmp_path / "state"), CLIPSTREAM_ACTORS_NODE_NAME="no-nats-node")
    log = tmp_path / f"{process}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([CLIPSTREAM, process], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        time.sleep(6)  # past its start (CQL), trying NATS
        assert proc.poll() is None, log.read_text()[-3000:]
        asked = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        took = time.monotonic() - asked
        print(f"{process} stopped {took:.1f}s after SIGTERM with NATS unreachable (exit {code})")
        assert took < 20, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            import os

            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
