"""An actor node: the Thespian actor system, its Guardian and shards, started and stopped cleanly.

    node = Node(settings, kinds={"counter": "clipstream.actors.testing:make_echo_kind"})
    node.start()
    node.status()      # NodeStatus: the supervision tree
    node.shutdown()    # leaves no Thespian process behind

A ``Node`` used directly owns every partition. The node process (``clipstream node``,
:func:`clipstream.actors.service.run_node`) runs one until SIGINT/SIGTERM, answers status requests
and shares the partitions with the other nodes through leases.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import nullcontext
from datetime import timedelta
from typing import Any, Mapping

import structlog
from thespian.actors import ActorSystem

from clipstream.actors.guardian import GUARDIAN_NAME, Guardian
from clipstream.actors.kinds import KINDS
from clipstream.actors.leftovers import (NodeRecord, PortHeld, children, clear_stale_node, cmdline, describe, end_session,
                                         port_holders, port_open, proc_stat, reap, record_path, remove_record, session_processes, write_record)
from clipstream.actors.lifeline import tethered
from clipstream.actors.loopback import bind_loopback
from clipstream.actors.messages import AssignPartitions, RuntimeOptions, ShardsStopped, StartShards, Status, StopShards
from clipstream.bus.status import NodeStatus
from clipstream.config.settings import Settings

__all__ = ["AdminPortHeld", "Node", "NodeError", "SHUTDOWN_GRACE", "THESPIAN_SHUTDOWN_WAIT", "stop_budget"]

log = structlog.get_logger("clipstream.actors.node")

#: seconds the node waits for Thespian's own shutdown (bounded by Thespian at 10 s) before it ends
#: the actor processes itself
THESPIAN_SHUTDOWN_WAIT = 8.0
#: seconds the actor processes get to exit after Thespian's shutdown before they are killed
SHUTDOWN_GRACE = 3.0


def stop_budget(stop_timeout: float) -> float:
    """The longest a node's stop takes (every step at its bound), plus slack: how long
    ``clipstream run`` waits before it kills the node and ends what the node recorded."""
    return stop_timeout + 2.0 + THESPIAN_SHUTDOWN_WAIT + SHUTDOWN_GRACE + 2.0 + 5.0


def _since(t: float) -> float:
    return round(time.monotonic() - t, 2)


class NodeError(RuntimeError):
    """The node could not start, answer or stop as asked."""


class AdminPortHeld(NodeError):
    """The admin port is held by something that is not a stale node of ours: a restart cannot help."""


class Node:
    """One actor system running the shards of the given kinds (default: :data:`KINDS`)."""

    def __init__(
        self,
        settings: Settings,
        kinds: Mapping[str, str] | None = None,
        options: RuntimeOptions | None = None,
        *,
        loopback: bool = True,
        system_base: str = "multiprocTCPBase",
    ) -> None:
        self.settings = settings
        self.kinds = dict(KINDS if kinds is None else kinds)
        self.options = options or RuntimeOptions.from_settings(settings.actors)
        self.name = settings.actors.node_name or f"{socket.gethostname()}-{os.getpid()}"
        self.loopback = loopback
        #: "multiprocTCPBase" in production; "simpleSystemBase" runs the supervision logic in this
        #: process (tests), but shards cannot consume there: it has no ThespianWatch
        self.system_base = system_base
        self._asys: ActorSystem | None = None
        self._guardian = None
        self._session: int | None = None
        #: Thespian's admin, our child once reparented (lifeline): reaped when the stop is done
        self._admin_pids: set[int] = set()
        # The ActorSystem object is not thread-safe; status requests and lease updates come from
        # executor threads of the node process.
        self._lock = threading.Lock()

    @property
    def admin_port(self) -> int:
        return self.settings.actors.admin_port

    @property
    def _record(self):  # type: ignore[no-untyped-def]
        """Where the node records its actor system's session (:mod:`clipstream.actors.leftovers`)."""
        return record_path(self.settings.stack.state_dir, self.admin_port)

    def start(self, owned: Mapping[str, tuple[int, ...]] | None = None) -> None:
        """Start the actor system and the Guardian, and hand the Guardian its shards: those of the
        ``owned`` partitions by kind (None: every partition)."""
        if not self.kinds:
            raise NodeError("no entity kinds to run: register them in clipstream.actors.kinds.KINDS")
        multiproc = self.system_base != "simpleSystemBase"
        if multiproc and port_open(self.admin_port):
            # Thespian would silently join whatever system listens there, stale Guardian included.
            try:
                clear_stale_node(self.settings.stack.state_dir, self.admin_port)
            except PortHeld as exc:
                raise AdminPortHeld(str(exc)) from None
            deadline = time.monotonic() + 5.0
            while port_open(self.admin_port) and time.monotonic() < deadline:
                time.sleep(0.05)
            if port_open(self.admin_port):
                raise NodeError(f"Thespian admin port {self.admin_port} is still in use after its stale node was ended")
        if self.loopback and multiproc:
            bind_loopback()
        before = children(os.getpid())
        with tethered() if multiproc else nullcontext():
            self._asys = ActorSystem(
                self.system_base, capabilities={"Admin Port": self.admin_port}, transientUnique=True
            )
            # Thespian's daemonizing child (a session leader) exits at once: reap it. The admin,
            # reparented to this node (tethered), stays our child until the stop reaps it.
            new = children(os.getpid()) - before
            daemonizers = {pid for pid in new if (proc_stat(pid) or ("", 0, 0, pid))[3] == pid}
            reap(daemonizers)
        self._admin_pids = new - daemonizers
        self._guardian = self._asys.createActor(Guardian, globalName=GUARDIAN_NAME)
        self._asys.tell(
            self._guardian,
            StartShards(node=self.name, settings=self.settings, kinds=self.kinds, options=self.options,
                        multiproc=multiproc, node_pid=os.getpid() if multiproc else 0,
                        owned=None if owned is None else dict(owned)),
        )
        self._session = self.status().guardian.session
        if multiproc:
            write_record(self._record, NodeRecord(node_pid=os.getpid(), session=self._session,
                                                  admin_port=self.admin_port, name=self.name, started_at=time.time(),
                                                  cmdline=cmdline(os.getpid())))
        log.info("node started", node=self.name, admin_port=self.admin_port, kinds=sorted(self.kinds))

    @property
    def actor_system(self) -> ActorSystem:
        """The running ActorSystem (for tools and tests: tell/ask the Guardian directly)."""
        if self._asys is None:
            raise NodeError("node not started")
        return self._asys

    @property
    def guardian(self) -> Any:
        """The Guardian's ActorAddress."""
        return self._guardian

    def status(self, timeout: float = 5.0) -> NodeStatus:
        """The supervision tree, from the Guardian (an ActorSystem.ask: not for hot paths)."""
        if self._asys is None:
            raise NodeError("node not started")
        with self._lock:
            reply = self._asys.ask(self._guardian, Status(), timedelta(seconds=timeout))
        if not isinstance(reply, NodeStatus):
            raise NodeError(f"guardian did not answer the status request (got {reply!r})")
        return reply

    def assign(self, owned: Mapping[str, tuple[int, ...]]) -> None:
        """Tell the Guardian which partitions the node owns now (by kind)."""
        if self._asys is None:
            raise NodeError("node not started")
        with self._lock:
            self._asys.tell(self._guardian, AssignPartitions(owned=dict(owned)))

    def hosted(self) -> dict[str, set[int]]:
        """Partitions some shard of this node still hosts (or is flushing before it stops), by kind."""
        out: dict[str, set[int]] = {}
        for shard in self.status().shards:
            out.setdefault(shard.kind, set()).update(shard.partitions)
        return out

    def wait_ready(self, timeout: float = 30.0) -> NodeStatus:
        """Wait until every shard is running (consumers bound); returns the status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if any(s.state == "running" for s in status.shards) and all(
                s.state in ("running", "idle") for s in status.shards
            ):
                return status
            if time.monotonic() > deadline:
                raise NodeError(f"shards not ready after {timeout}s: {status}")
            time.sleep(0.1)

    def shutdown(self, timeout: float = SHUTDOWN_GRACE) -> None:
        """Stop every actor (shards flush and close NATS), then make sure no process is left.

        Every step is bounded, so the whole stop fits in ``clipstream run``'s patience
        (:func:`stop_budget`): the shards' stop (``stop_timeout``), Thespian's shutdown (its own
        10 s bound, and :data:`THESPIAN_SHUTDOWN_WAIT` here), then ``timeout`` for the processes to
        go before the rest of the session is killed. A shard that never answers (stopped, stuck in
        a syscall) is SIGKILLed by the Guardian at ``stop_timeout``; at worst it costs those
        bounds, never a hang. Each step logs what it waited for."""
        asys, self._asys = self._asys, None
        if asys is None:
            return
        started = time.monotonic()
        stop_timeout = self.options.stop_timeout
        step = time.monotonic()
        try:
            with self._lock:
                stopped = asys.ask(self._guardian, StopShards(stop_timeout), timedelta(seconds=stop_timeout + 2.0))
            if not isinstance(stopped, ShardsStopped) or stopped.remaining:
                log.warning("node stop: shards did not all stop before the actor system shutdown",
                            answer=repr(stopped), waited_s=_since(step), bound_s=stop_timeout + 2.0)
            else:
                log.info("node stop: shards stopped", waited_s=_since(step))
        except Exception as exc:  # the system shutdown below still stops them, less gently
            log.warning("node stop: stopping the shards failed", error=repr(exc), waited_s=_since(step))
        done = threading.Event()

        def thespian_shutdown() -> None:
            try:
                with self._lock:
                    asys.shutdown()
            except Exception as exc:
                log.warning("node stop: actor system shutdown failed", error=repr(exc))
            finally:
                done.set()

        step = time.monotonic()
        threading.Thread(target=thespian_shutdown, name="thespian-shutdown", daemon=True).start()
        if done.wait(THESPIAN_SHUTDOWN_WAIT):
            log.info("node stop: Thespian shut down", waited_s=_since(step))
        else:
            log.warning("node stop: Thespian's shutdown did not finish; ending the actor processes",
                        waited_s=_since(step), bound_s=THESPIAN_SHUTDOWN_WAIT)
        session = self._session
        if session is None or session == os.getsid(0):
            return
        step = time.monotonic()
        deadline = step + timeout
        while session_processes(session) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = session_processes(session)
        if left:
            log.error("node stop: actor processes still running after shutdown; killing them",
                      waited_s=_since(step), processes={pid: describe(pid) for pid in left})
            end_session(session)
        step = time.monotonic()
        while port_open(self.admin_port) and time.monotonic() < step + 2.0:
            time.sleep(0.05)
        if port_open(self.admin_port):
            log.error("node stop: the admin port is still held", admin_port=self.admin_port, waited_s=_since(step),
                      holders={pid: describe(pid) for pid in port_holders(self.admin_port)})
        if not session_processes(session):
            remove_record(self._record, os.getpid())
        reap(self._admin_pids)
        log.info("node stopped", node=self.name, took_s=_since(started))

    def __enter__(self) -> "Node":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
