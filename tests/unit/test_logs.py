"""Logs are structured: one JSON object per line from structlog and from the standard library alike
(stderr not a terminal), configured once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = """
import logging, structlog
from clipstream.config.logs import configure_logging
configure_logging()
configure_logging()  # a second call must not add a second handler
structlog.get_logger("clipstream.test").info("hello", n=1)
logging.getLogger("cassandra.cluster").warning("driver %s", "says")
"""


def test_structlog_and_stdlib_lines_are_json() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONSAFEPATH": "1"})
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert len(lines) == 2
    assert lines[0]["event"] == "hello" and lines[0]["n"] == 1 and lines[0]["logger"] == "clipstream.test"
    assert lines[1]["event"] == "driver says" and lines[1]["level"] == "warning"
    assert all("timestamp" in line for line in lines)
