"""The node process: run_node until SIGTERM, no Thespian process or port left behind, Thespian
sockets on 127.0.0.1 only, status over NATS."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import msgspec
import nats
import pytest

from clipstream.actors.leftovers import (NodeRecord, end_leftovers, end_session, port_holders, proc_stat, read_record,
                                         record_path, session_processes, write_record)
from clipstream.actors.node import AdminPortHeld, Node, NodeError, stop_budget
from clipstream.bus.status import NodeStatus, request_status
from clipstream.bus.topology import Topology
from clipstream.config.settings import Settings

ECHO_FACTORY = "clipstream.actors.testing:make_echo_kind"
CLIPSTREAM = str(Path(sys.executable).with_name("clipstream"))


def listening(port: int) -> set[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp, IPv4)."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, _, hexport = local.partition(":")
        if state == "0A" and int(hexport, 16) == port:
            out.add(".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return out


def descendants(root: int, zombies: bool = False) -> set[int]:
    """Processes whose parent chain leads to ``root`` (zombies too if asked)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if zombies or fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    out: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - out
        out |= frontier
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "(gone)"


def env_for(settings: Settings, db: str, state_dir: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSTREAM_")}
    env.update(
        CLIPSTREAM_NATS_URL=settings.nats.url,
        CLIPSTREAM_NATS_SUBJECT_PREFIX=settings.nats.subject_prefix,
        CLIPSTREAM_NATS_MINIO_SUBJECT=settings.nats.minio_subject,
        CLIPSTREAM_ACTORS_PARTITIONS=str(settings.actors.partitions),
        CLIPSTREAM_ACTORS_SHARDS=str(settings.actors.shards),
        CLIPSTREAM_ACTORS_ADMIN_PORT=str(settings.actors.admin_port),
        CLIPSTREAM_ACTORS_NODE_NAME="proc-node",
        ECHO_KIND_DB=db,
        PYTHONSAFEPATH="1",
    )
    if state_dir is not None:
        env["CLIPSTREAM_STACK_STATE_DIR"] = state_dir
    return env


def _start_node(actor_settings: Settings, tmp_path: Path, **popen) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    """``clipstream node`` with the echo counter kind, as a real process; its record of the actor
    system goes to ``tmp_path/state``."""
    return subprocess.Popen(
        [CLIPSTREAM, "node", "--kind", f"counter={ECHO_FACTORY}"],
        env=env_for(actor_settings, str(tmp_path / "echo.db"), str(tmp_path / "state")),
        cwd=tmp_path,
        **popen,
    )


class TestRunNode:
    def test_sigterm_stops_everything(self, actor_settings: Settings, tmp_path: Path, helpers: SimpleNamespace) -> None:
        proc = _start_node(actor_settings, tmp_path)
        session = 0
        try:
            status = asyncio.run(self._status_when_running(actor_settings))
            assert status.node == "proc-node"
            session = status.guardian.session
            pids = {status.guardian.pid, *(s.pid for s in status.shards)}
            assert set(session_processes(session)) >= pids
            # Every Thespian socket of the node listens on loopback only.
            ports = [actor_settings.actors.admin_port]
            ports += [int(m) for s in status.shards for m in re.findall(r":(\d+)\)", s.address)]
            for port in ports:
                assert listening(port) == {"127.0.0.1"}, port

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert session_processes(session) == []
        assert descendants(proc.pid) == set()
        assert not helpers.port_open(actor_settings.actors.admin_port)

    def test_a_killed_node_takes_its_actor_processes_with_it(
        self, actor_settings: Settings, tmp_path: Path, helpers: SimpleNamespace
    ) -> None:
        """SIGKILL on a standalone node (no ``clipstream run`` around it) while its Guardian and a
        shard are stopped too, so no code of ours can notice: the kernel ends the admin, logger,
        Guardian and shards (lifeline), and the port is free within a few seconds."""
        proc = _start_node(actor_settings, tmp_path)
        session = 0
        try:
            status = asyncio.run(self._status_when_running(actor_settings))
            session = status.guardian.session
            actors = set(session_processes(session))
            assert {status.guardian.pid, *(s.pid for s in status.shards)} <= actors and len(actors) >= 5
            # the admin is the node's child (reparented to it), not init's
            assert {p for p in actors if (proc_stat(p) or ("", 0))[1] == proc.pid}, actors
            os.kill(status.guardian.pid, signal.SIGSTOP)
            os.kill(status.shards[0].pid, signal.SIGSTOP)
            killed_at = time.monotonic()
            proc.kill()  # no chance to shut anything down
            proc.wait(10)
            helpers.wait_for(lambda: session_processes(session) == [], 5, what="actor processes gone")
            gone = time.monotonic() - killed_at
            helpers.wait_for(lambda: not helpers.port_open(actor_settings.actors.admin_port), 5, what="port")
            print(f"{len(actors)} actor processes gone {gone:.2f}s after the node's SIGKILL, "
                  f"port free after {time.monotonic() - killed_at:.2f}s")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if session:  # the test failed: do not leave them running
                end_session(session)

    def test_a_stopped_shard_does_not_outlive_the_node(
        self, actor_settings: Settings, tmp_path: Path, helpers: SimpleNamespace
    ) -> None:
        """A shard stuck for good (SIGSTOP stands in for a flush or a syscall that never returns):
        the node's stop is bounded, ends the whole actor system and its record goes."""
        proc = _start_node(actor_settings, tmp_path)
        session = 0
        try:
            status = asyncio.run(self._status_when_running(actor_settings))
            session = status.guardian.session
            record = record_path(str(tmp_path / "state"), actor_settings.actors.admin_port)
            assert read_record(record) == NodeRecord(node_pid=proc.pid, session=session,
                                                     admin_port=actor_settings.actors.admin_port, name="proc-node",
                                                     started_at=read_record(record).started_at,  # type: ignore[union-attr]
                                                     cmdline=_cmdline(proc.pid).strip())
            os.kill(status.shards[0].pid, signal.SIGSTOP)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(stop_budget(10.0)) == 0
            assert session_processes(session) == []
            assert not helpers.port_open(actor_settings.actors.admin_port)
            assert not record.exists()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if session:
                end_session(session)

    def test_a_start_ends_the_stale_node_holding_its_port(
        self, actor_settings: Settings, tmp_path: Path, helpers: SimpleNamespace
    ) -> None:
        """Leftovers of a dead node (a real Thespian admin and logger in a session of their own,
        parent 1, holding the port: what a node left before the lifeline, or where the kernel could
        not tie them): ``end_leftovers`` (what ``clipstream run`` calls) and a new node's start
        both end exactly the recorded session; the new node then runs."""
        state = str(tmp_path / "state")
        port = actor_settings.actors.admin_port
        sessions = []
        procs = []
        try:
            for round_ in ("end_leftovers", "the next start"):
                dead_node, session = self._leftovers(actor_settings, tmp_path)
                sessions.append(session)
                left = session_processes(session)
                assert len(left) >= 2 and helpers.port_open(port), round_
                if round_ == "end_leftovers":
                    assert sorted(end_leftovers(state, port, dead_node)) == sorted(left)
                    assert session_processes(session) == []
                    helpers.wait_for(lambda: not helpers.port_open(port), 5, what="port")
            # the second round's leftovers are still there: a new node ends them and comes up
            proc = _start_node(actor_settings, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            procs.append(proc)
            status = asyncio.run(self._status_when_running(actor_settings))
            assert session_processes(sessions[1]) == [] and status.guardian.session not in sessions
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
            log = proc.stdout.read().decode()  # type: ignore[union-attr]
            assert "ended a stale node that held the admin port" in log, log[-2000:]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for session in sessions:
                end_session(session)

    @staticmethod
    def _leftovers(settings: Settings, tmp_path: Path) -> tuple[int, int]:
        """A process that starts a Thespian system on the node's port, untethered, records it as a
        node would and exits without stopping it: (its pid, the leftover session)."""
        port = settings.actors.admin_port
        script = ("import os, sys\n"
                  "from thespian.actors import ActorSystem\n"
                  "from clipstream.actors.loopback import bind_loopback\n"
                  "bind_loopback()\n"
                  f"ActorSystem('multiprocTCPBase', capabilities={{'Admin Port': {port}}}, transientUnique=True)\n"
                  "os._exit(0)\n")
        starter = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONSAFEPATH": "1"},
                                   cwd=tmp_path)
        assert starter.wait(30) == 0
        holders = port_holders(port)
        assert holders, "the untethered admin does not hold the port"
        session = proc_stat(holders[0])[3]  # type: ignore[index]
        write_record(record_path(str(tmp_path / "state"), port),
                     NodeRecord(node_pid=starter.pid, session=session, admin_port=port,
                                name="proc-node", started_at=time.time(),
                                cmdline=" ".join([sys.executable, "-c", script]).strip()))
        return starter.pid, session

    @staticmethod
    async def _status_when_running(settings: Settings) -> NodeStatus:
        nc = await nats.connect(settings.nats.url)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    status = await request_status(nc, Topology.from_settings(settings.nats), "proc-node", timeout=1)
                    if status.shards and all(s.state == "running" for s in status.shards):
                        return status
                except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("node did not come up")
                await asyncio.sleep(0.1)
        finally:
            await nc.close()


class TestNodeInProcess:
    def test_shutdown_leaves_no_process(self, actor_settings: Settings, echo_store: object, helpers: SimpleNamespace) -> None:
        # Children the session already has (a session-scoped system started by the e2e tests that run
        # first, the nats-server fixture) are not this node's to end.
        before = descendants(os.getpid(), zombies=True)
        node = Node(actor_settings, kinds={"counter": ECHO_FACTORY})
        node.start()
        try:
            status = node.wait_ready(30)
            assert len(status.shards) == 2
            actor_pids = {status.guardian.pid, *(s.pid for s in status.shards)}
            assert all(Path(f"/proc/{pid}").exists() for pid in actor_pids)
        finally:
            node.shutdown()
        assert session_processes(status.guardian.session) == []
        helpers.wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in actor_pids), 5, what="pids gone")
        assert not helpers.port_open(actor_settings.actors.admin_port)
        # No zombie or stray child of the test process either.
        strays = {pid: _cmdline(pid) for pid in descendants(os.getpid(), zombies=True) - before}
        assert strays == {}

    def test_refuses_a_busy_admin_port(self, actor_settings: Settings, echo_store: object) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", actor_settings.actors.admin_port))
            s.listen()
            with pytest.raises(AdminPortHeld, match=f"held by pid {os.getpid()} .*not a clipstream node"):
                Node(actor_settings, kinds={"counter": ECHO_FACTORY}).start()

    def test_refuses_a_port_held_in_the_recorded_session_by_another_program(
        self, actor_settings: Settings, tmp_path: Path
    ) -> None:
        """The record names a dead node and the holder is in its session (a session id reused),
        but the holder runs another command line: not ours to end."""
        import socket

        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        state = str(tmp_path / "state")
        port = actor_settings.actors.admin_port
        write_record(record_path(state, port), NodeRecord(node_pid=dead.pid, session=os.getsid(0), admin_port=port,
                                                          name="proc-node", started_at=time.time(),
                                                          cmdline="/no/such/clipstream node"))
        settings = msgspec.structs.replace(actor_settings, stack=msgspec.structs.replace(actor_settings.stack, state_dir=state))
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
            s.listen()
            with pytest.raises(AdminPortHeld, match=f"held by pid {os.getpid()} .*not a clipstream node"):
                Node(settings, kinds={"counter": ECHO_FACTORY}).start()
        assert record_path(state, port).exists()

    def test_no_kinds_is_an_error(self, actor_settings: Settings) -> None:
        with pytest.raises(NodeError, match="no entity kinds"):
            Node(actor_settings, kinds={}).start()
