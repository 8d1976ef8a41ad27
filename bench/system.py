"""The processes a bench run starts: clipstream itself and the reference servers, stopped by pid."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import AsyncIterator, Sequence

import httpx

__all__ = ["BENCH_ENV", "Server", "bench_env", "running"]

#: where a bench run's data goes, and its own ports, so nothing else is touched
BENCH_ENV = {
    "CLIPSTREAM_CQL_KEYSPACE": "clipstream_bench",
    "CLIPSTREAM_REDIS_URL": "redis://127.0.0.1:6379/14",
    "CLIPSTREAM_HTTP_PORT": "18280",
    "CLIPSTREAM_ACTORS_ADMIN_PORT": "19850",
}
CEILING_PORT = 18281
CACHE_PORT = 18282


def bench_env() -> dict[str, str]:
    """The environment of every process of a run."""
    # The bench's own keyspace, database and ports always win: a run wipes its Redis database.
    env = {**os.environ, **BENCH_ENV}
    env.setdefault("CLIPSTREAM_ACTORS_NODE_NAME", f"bench-{uuid.uuid4().hex[:8]}")
    env["PYTHONSAFEPATH"] = "1"  # the repository's http/ must never shadow the standard library
    return env


class Server:
    """A process group serving HTTP on ``port``; ``pids`` lists the group's processes (for py-spy)."""

    def __init__(self, name: str, argv: Sequence[str], port: int, log: Path) -> None:
        self.name, self.argv, self.port, self.log = name, list(argv), port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, env: dict[str, str], ready_path: str, timeout: float = 120.0) -> None:
        with open(self.log, "wb") as out:
            # Own session: a kill of the group reaches granian's forked workers too.
            self.proc = subprocess.Popen(self.argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.url + ready_path)).status_code < 500:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not come up:\n{self.log.read_text()[-3000:]}")
                await asyncio.sleep(0.5)

    def pids(self) -> list[int]:
        """The group's processes (granian's workers included)."""
        if self.proc is None:
            return []
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def stop(self, timeout: float = 40.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def clipstream_server(logdir: Path) -> Server:
    exe = str(Path(sys.executable).with_name("clipstream"))
    return Server("clipstream", [exe, "run"], int(bench_env()["CLIPSTREAM_HTTP_PORT"]), logdir / "clipstream.log")


def ref_server(name: str, port: int, workers: int, logdir: Path) -> Server:
    argv = [sys.executable, "-m", "clipstream.bench.serve_ref", name, str(port), str(workers)]
    return Server(f"ref_{name}", argv, port, logdir / f"ref_{name}.log")


@contextlib.asynccontextmanager
async def running(server: Server, env: dict[str, str], ready_path: str) -> AsyncIterator[Server]:
    """A started server, stopped (by its pid) on exit."""
    try:
        await server.start(env, ready_path)
        yield server
    finally:
        server.stop()
