"""Nothing left behind: `clipstream run` with a node whose shard is stuck (SIGSTOP) stops within the
node's stop budget, no process of the node's actor system survives, its admin port is free, and
the next start comes up and runs its shards.

Before, run waited 20 s for the node, whose own bounds add up to more with a stuck shard; it then
SIGKILLed the node's process group, which does not reach Thespian's daemonized admin, logger,
Guardian and shards: they kept the admin port, and the next start gave up on it.

Real processes and services, the real kinds, on a subject prefix, admin port and state directory
of their own (the shared system takes no part).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path

import nats
import pytest

from clipstream.actors.leftovers import read_record, record_path, session_processes
from clipstream.actors.node import stop_budget
from clipstream.bus.messages import LikeDelta
from clipstream.bus.publisher import Publisher
from clipstream.bus.status import NodeStatus, request_status
from clipstream.bus.topology import Topology
from clipstream.storage.ids import new_id
from tests.e2e.nodes import CLIPSTREAM, free_port, private_bus

pytestmark = pytest.mark.integration


async def running(nc, topology: Topology, name: str, proc: subprocess.Popen[bytes], log: Path) -> NodeStatus:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"clipstream run exited:\n{log.read_text()[-3000:]}"
        try:
            status = await request_status(nc, topology, name, timeout=1)
            if status.shards and any(s.state == "running" for s in status.shards) and all(
                    s.state in ("running", "idle") for s in status.shards):
                return status
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            pass
        assert time.monotonic() < deadline, f"the node did not come up:\n{log.read_text()[-3000:]}"
        await asyncio.sleep(0.2)


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def node_env(prefix: str, name: str, tmp_path: Path) -> tuple[dict[str, str], Topology, int, Path]:
    """A node's environment on a bus prefix, admin port and state dir of its own: env, topology,
    admin port, state dir."""
    env, topology = private_bus(prefix + uuid.uuid4().hex[:8], 8, 2)
    port, state = free_port(), tmp_path / "state"
    env.update(CLIPSTREAM_ACTORS_ADMIN_PORT=str(port), CLIPSTREAM_STACK_STATE_DIR=str(state),
               CLIPSTREAM_ACTORS_NODE_NAME=name)
    return env, topology, port, state


async def test_a_stuck_shard_then_stop_leaves_nothing_and_the_next_start_runs(migrated, tmp_path) -> None:
    name = "leftovers-node"
    env, topology, port, state = node_env("lo", name, tmp_path)
    nc = await nats.connect(migrated.nats.url, connect_timeout=5)
    procs: list[subprocess.Popen[bytes]] = []
    sessions: list[int] = []

    def start(log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            proc = subprocess.Popen([CLIPSTREAM, "run", "--only", "node"], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        return proc

    try:
        first = start(tmp_path / "first.log")
        status = await running(nc, topology, name, first, tmp_path / "first.log")
        sessions.append(status.guardian.session)
        record = read_record(record_path(str(state), port))
        assert record is not None and record.session == status.guardian.session
        stuck = next(s.pid for s in status.shards if s.state == "running")
        os.kill(stuck, signal.SIGSTOP)
        stopped_at = time.monotonic()
        first.send_signal(signal.SIGINT)  # Ctrl-C
        assert first.wait(stop_budget(10.0) + 25) == 0
        took = time.monotonic() - stopped_at
        log = (tmp_path / "first.log").read_text()
        assert "all processes stopped" in log
        assert session_processes(status.guardian.session) == [], log[-3000:]
        assert not port_open(port)
        print(f"stopped in {took:.1f}s with shard {stuck} stopped")

        second = start(tmp_path / "second.log")
        again = await running(nc, topology, name, second, tmp_path / "second.log")
        sessions.append(again.guardian.session)
        assert again.guardian.session != status.guardian.session
        second.send_signal(signal.SIGINT)
        assert second.wait(stop_budget(10.0) + 25) == 0
        assert session_processes(again.guardian.session) == []
    finally:
        await nc.close()
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for session in sessions:  # the test failed: leave nothing running
            for pid in session_processes(session):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


async def like_load(nc, topology: Topology, stop: asyncio.Event) -> int:  # type: ignore[no-untyped-def]
    """Like deltas published onto the node's counter partitions until ``stop``; how many went."""
    publisher = Publisher(nc, topology, 8)
    videos = [new_id() for _ in range(20)]
    sent = 0
    while not stop.is_set():
        batch = [(LikeDelta(video_id=random.choice(videos), user_id=new_id(), delta=1, at=int(time.time() * 1000)), None)
                 for _ in range(50)]
        try:
            await publisher.publish_many(batch)
            sent += len(batch)
        except Exception:  # the streams are not there yet (the node's first shard makes them)
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.02)
    return sent


async def test_shards_killed_twice_then_stop_leaves_nothing(migrated, tmp_path) -> None:
    """Two counter shards SIGKILLed together, twice, under a like load (the Guardian restarts them,
    one of the deaths unreported by Thespian each time), then Ctrl-C: the stop is bounded and
    leaves nothing."""
    name = "killed-shards-node"
    env, topology, port, _ = node_env("lk", name, tmp_path)
    nc = await nats.connect(migrated.nats.url, connect_timeout=5)
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([CLIPSTREAM, "run", "--only", "node"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    session = 0
    load_stop = asyncio.Event()
    load = asyncio.create_task(like_load(nc, topology, load_stop))
    try:
        status = await running(nc, topology, name, proc, log)
        session = status.guardian.session
        await asyncio.sleep(2)  # the load reaches the shards
        for _ in range(2):
            victims = [s.pid for s in status.shards if s.kind == "counter" and s.state == "running"]
            assert len(victims) == 2
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while True:  # both restarted, with new pids
                status = await running(nc, topology, name, proc, log)
                pids = {s.pid for s in status.shards if s.kind == "counter" and s.state == "running"}
                if len(pids) == 2 and not pids & set(victims):
                    break
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # loaded again: the restarted shards apply and flush
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(stop_budget(10.0) + 25) == 0
        took = time.monotonic() - stopped_at
        text = log.read_text()
        slow = [line[:300] for line in text.splitlines() if "did not all stop" in line or "killing" in line]
        load_stop.set()
        sent = await load
        assert sent > 0
        print(f"stopped in {took:.1f}s after two rounds of shard kills under {sent} like deltas; "
              f"the node's own stop warnings: {slow}")
        # the node stopped by itself, within its budget: run did not have to kill it
        assert "did not stop in" not in text, text[-3000:]
        assert session_processes(session) == [] and not port_open(port)
    finally:
        load_stop.set()
        await asyncio.gather(load, return_exceptions=True)
        await nc.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in session_processes(session) if session else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_port_held_by_something_else_is_given_up_at_once_with_what_to_do(tmp_path) -> None:
    import socket

    env, _, port, _ = node_env("lp", "port-held-node", tmp_path)
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        done = subprocess.run([CLIPSTREAM, "run", "--only", "node"], env=env, capture_output=True, text=True,
                              timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-3000:]
    assert f"held by pid {os.getpid()}" in out and "CLIPSTREAM_ACTORS_ADMIN_PORT" in out, out[-3000:]
    assert "node cannot start" in out and "restarting" not in out, out[-3000:]
