"""The Guardian: creates the node's shard actors, restarts crashed ones, answers :class:`Status`.

Thespian reports a child's death (``ChildActorExited``, also after a SIGKILL) and leaves restart
policy to the parent; the policy is :class:`clipstream.actors.supervision.RestartPolicy`. The
delay is waited with ``wakeupAfter`` so the Guardian keeps answering meanwhile.

Which partitions the node owns comes with :class:`StartShards` (all of them without leases) and
then with :class:`AssignPartitions` (from :mod:`clipstream.actors.leases`); each kind's partitions
are split among a fixed number of shard slots. A running shard whose part only grows (a take-over)
binds the new partitions in place; one that loses partitions is restarted with its new part (its
stop path flushes and acks before the partitions are released).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from thespian.actors import (
    ActorExitRequest,
    ActorTypeDispatcher,
    ChildActorExited,
    PoisonMessage,
    WakeupMessage,
)

from clipstream.actors.messages import (
    AssignPartitions,
    OwnPartitions,
    ShardStats,
    ShardsStopped,
    StartShards,
    Status,
    StopShards,
)
from clipstream.actors.shard import Shard
from clipstream.actors.supervision import RestartPolicy
from clipstream.bus.status import GuardianStatus, NodeStatus, ShardStatus

__all__ = ["GUARDIAN_NAME", "Guardian", "split_partitions"]

log = structlog.get_logger("clipstream.actors.guardian")

#: Thespian global name of the node's Guardian (one per actor system)
GUARDIAN_NAME = "clipstream-guardian"
_LIVENESS = ("liveness",)


def split_partitions(partitions: int, shards: int) -> list[tuple[int, ...]]:
    """A static split of ``range(partitions)`` among ``shards`` shards (round robin); shards left
    without a partition get none."""
    return [tuple(range(i, partitions, shards)) for i in range(shards)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_child(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) child of this process; a reused pid is not."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
    except OSError:
        return False
    return fields[0] != b"Z" and int(fields[1]) == os.getpid()


@dataclass(slots=True)
class _Slot:
    """One supervised shard position: survives the shard processes that fill it."""

    kind: str
    index: int
    factory: str
    #: the partitions this slot may ever host (its share of the static split)
    universe: tuple[int, ...]
    #: the ones it hosts now (those of the universe the node owns)
    partitions: tuple[int, ...]
    address: Any = None
    #: the part to start with once the running shard has stopped (reassignment in progress)
    pending: tuple[int, ...] | None = None
    state: str = "starting"
    restarts: int = 0
    stats: ShardStats | None = None
    stats_at: float = 0.0
    error: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.index)


class Guardian(ActorTypeDispatcher):
    """Supervises the shard actors of one node."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._start: StartShards | None = None
        self._slots: list[_Slot] = []
        self._policy: RestartPolicy | None = None
        self._exiting = False
        self._poison = 0
        #: the node process died: stop everything once the shards are down
        self._orphan = False
        #: who asked for StopShards, answered when the last shard exited
        self._stop_waiters: list[Any] = []

    def receiveMsg_StartShards(self, msg: StartShards, sender: Any) -> None:
        if self._start is not None:
            log.warning("guardian already started; ignoring", node=msg.node)
            return
        self._start = msg
        actors = msg.settings.actors
        self._policy = RestartPolicy(actors.restart_backoff, actors.restart_budget, msg.options.restart_backoff_max)
        for name, factory in sorted(msg.kinds.items()):
            owned = None if msg.owned is None else set(msg.owned.get(name, ()))
            for index, universe in enumerate(split_partitions(actors.partitions, actors.shards)):
                if universe:
                    part = universe if owned is None else tuple(p for p in universe if p in owned)
                    slot = _Slot(name, index, factory, universe, part)
                    self._slots.append(slot)
                    if part:
                        self._spawn(slot)
                    else:
                        slot.state = "idle"
        log.info("guardian started shards", node=msg.node, shards=len(self._slots))
        if msg.multiproc:
            self.wakeupAfter(timedelta(seconds=msg.options.liveness_interval), payload=_LIVENESS)

    def _spawn(self, slot: _Slot) -> None:
        assert self._start is not None
        slot.address = self.createActor(Shard)
        slot.state = "starting"
        slot.stats = None
        self._send_part(slot)

    def _send_part(self, slot: _Slot) -> None:
        assert self._start is not None
        self.send(
            slot.address,
            OwnPartitions(
                kind=slot.kind,
                factory=slot.factory,
                partitions=slot.partitions,
                settings=self._start.settings,
                options=self._start.options,
            ),
        )

    def receiveMsg_AssignPartitions(self, msg: AssignPartitions, sender: Any) -> None:
        if self._exiting or self._start is None:
            return
        for slot in self._slots:
            owned = set(msg.owned.get(slot.kind, ()))
            part = tuple(p for p in slot.universe if p in owned)
            if slot.address is not None:
                if (slot.state == "running" and slot.pending is None and part != slot.partitions
                        and set(slot.partitions) <= set(part)):
                    # Only added partitions (a take-over): the running shard binds them in place.
                    slot.partitions = part
                    self._send_part(slot)
                    continue
                if part != (slot.pending if slot.pending is not None else slot.partitions):
                    # Stop it (final flush, then acks); _shard_exited starts the new part.
                    slot.pending = part
                    if slot.state != "reassigning":
                        slot.state = "reassigning"
                        self.send(slot.address, ActorExitRequest())
                continue
            if part == slot.partitions:
                continue
            slot.partitions = part
            if slot.state == "idle" and part:
                self._spawn(slot)
            elif not part and slot.state in ("restarting", "failed"):
                slot.state = "idle"
        log.info("guardian assigned partitions", owned={k: len(v) for k, v in msg.owned.items()})

    def _slot_of(self, address: Any) -> _Slot | None:
        for slot in self._slots:
            if slot.address is not None and slot.address == address:
                return slot
        return None

    def receiveMsg_StopShards(self, msg: StopShards, sender: Any) -> None:
        self._exiting = True
        self._stop_waiters.append(sender)
        for slot in self._slots:
            if slot.address is not None:
                slot.state = "stopping"
                self.send(slot.address, ActorExitRequest())
            elif slot.state == "restarting":
                slot.state = "stopped"
        self.wakeupAfter(timedelta(seconds=msg.timeout), payload=("stop-timeout",))
        self._answer_stop_if_done(force=False)

    def _orphaned(self) -> None:
        """The node process died without shutting the actor system down (SIGKILL, OOM): stop the
        shards (they flush), then end every process of the actor system, this one included.
        Thespian's admin is a daemon and would otherwise run, with its actors, forever."""
        log.error("node process is gone; stopping the actor system", node_pid=self._start.node_pid if self._start else 0)
        self._orphan = True
        self.receiveMsg_StopShards(StopShards(timeout=10.0), self.myAddress)

    def receiveMsg_ShardsStopped(self, msg: ShardsStopped, sender: Any) -> None:
        if self._orphan:
            # Admin, logger and Guardian share the admin's process group (it called setsid).
            os.killpg(os.getpgid(0), signal.SIGKILL)

    def _answer_stop_if_done(self, force: bool) -> None:
        remaining = sum(1 for slot in self._slots if slot.address is not None)
        if self._stop_waiters and (remaining == 0 or force):
            if remaining:
                log.warning("shards still running at the stop timeout", remaining=remaining)
            for waiter in self._stop_waiters:
                self.send(waiter, ShardsStopped(remaining))
            self._stop_waiters = []

    def _kill_stuck_shards(self) -> None:
        """At the stop timeout: SIGKILL the shards that did not stop (stuck in a flush or a
        syscall, SIGSTOPped). Their unacked messages go to the next owner; left alive, Thespian's
        shutdown would wait for each of them until its own 10 s bound."""
        stuck = {slot.stats.pid: slot for slot in self._slots
                 if slot.address is not None and slot.stats is not None and _is_child(slot.stats.pid)}
        if not stuck:
            return
        log.warning("shards did not stop in time; killing them",
                    shards={pid: f"{slot.kind}/{slot.index}" for pid, slot in stuck.items()})
        for pid in stuck:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _check_liveness(self) -> None:
        """Catch shard deaths Thespian does not report.

        On one ChildActorExited, Thespian 4.0.1 prunes *every* dead child process from its list
        (``_childExited``) but reports only the one: when two shards die together, the second
        death is never announced (reproduced by SIGKILLing both shards of a node). So the Guardian
        also checks the pid each shard reported, and sends itself the ChildActorExited Thespian
        owed: handling it, Thespian also drops the dead child from its own list of children.
        Left there, that ghost was sent an ActorExitRequest at the stop, whose failure handler
        (a late-bound ``each`` in ``_shutdownActor``) drops the *last* child instead: the Guardian
        then waited for the ghost until Thespian's 10 s shutdown bound, the stop that hung after
        shards were SIGKILLed under load (issue 16).
        """
        for slot in self._slots:
            if (slot.address is not None and slot.stats is not None and slot.state != "gone"
                    and not _is_child(slot.stats.pid)):
                log.warning("shard process gone without ChildActorExited", kind=slot.kind, index=slot.index,
                            pid=slot.stats.pid)
                slot.state = "gone"  # once: the ChildActorExited below is on its way
                self.send(self.myAddress, ChildActorExited(slot.address))

    def receiveMsg_ChildActorExited(self, msg: ChildActorExited, sender: Any) -> None:
        slot = self._slot_of(msg.childAddress)
        if slot is not None:
            self._shard_exited(slot)

    def _shard_exited(self, slot: _Slot) -> None:
        if self._exiting:
            slot.address = None
            slot.state = "stopped"
            self._answer_stop_if_done(force=False)
            return
        if self._policy is None:
            return
        slot.address = None
        if slot.pending is not None:
            # A reassignment, not a crash: start the new part at once.
            slot.partitions, slot.pending = slot.pending, None
            if slot.partitions:
                self._spawn(slot)
            else:
                slot.state = "idle"
                slot.stats = None
            return
        delay = self._policy.on_exit(slot.key, time.monotonic())
        if delay is None:
            slot.state = "failed"
            log.error("shard over its restart budget; not restarting", kind=slot.kind, index=slot.index,
                      restarts=slot.restarts, error=slot.error)
            return
        slot.state = "restarting"
        slot.restarts += 1
        log.warning("shard exited; restarting", kind=slot.kind, index=slot.index, delay=delay, restarts=slot.restarts)
        self.wakeupAfter(timedelta(seconds=delay), payload=("restart", slot.kind, slot.index))

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        payload = msg.payload
        if payload == _LIVENESS and self._start is not None:
            if self._start.node_pid and not _alive(self._start.node_pid):
                if not self._exiting:
                    self._orphaned()
                    return
                if not self._orphan:
                    # The node asked for the stop and died before it finished (killed by its
                    # supervisor while a shard would not stop): nobody is left to end the actor
                    # system, and the shards that could flush had their stop timeout already.
                    log.error("node process gone while the actor system stopped; ending it",
                              node_pid=self._start.node_pid)
                    os.killpg(os.getpgid(0), signal.SIGKILL)
            self._check_liveness()
            self.wakeupAfter(timedelta(seconds=self._start.options.liveness_interval), payload=_LIVENESS)
            return
        if payload == ("stop-timeout",):
            self._kill_stuck_shards()
            self._answer_stop_if_done(force=True)
            return
        if self._exiting or not (isinstance(payload, tuple) and payload[0] == "restart"):
            return
        for slot in self._slots:
            if slot.key == (payload[1], payload[2]) and slot.state == "restarting":
                if slot.partitions:
                    self._spawn(slot)
                else:
                    slot.state = "idle"

    def receiveMsg_ShardStats(self, msg: ShardStats, sender: Any) -> None:
        slot = self._slot_of(sender)
        if slot is None:
            return
        slot.stats = msg
        slot.stats_at = time.monotonic()
        slot.error = msg.error
        if slot.state == "starting" and msg.ready:
            slot.state = "running"

    def receiveMsg_Status(self, msg: Status, sender: Any) -> None:
        self.send(sender, self.status())

    def status(self) -> NodeStatus:
        now = time.monotonic()
        shards = []
        for slot in self._slots:
            s = slot.stats
            shards.append(
                ShardStatus(
                    kind=slot.kind,
                    index=slot.index,
                    partitions=slot.partitions,
                    state=slot.state,
                    address=str(slot.address) if slot.address is not None else "",
                    pid=s.pid if s else 0,
                    restarts=slot.restarts,
                    entities=s.entities if s else 0,
                    dirty=s.dirty if s else 0,
                    backlog=s.backlog if s else 0,
                    processed=s.processed if s else 0,
                    avg_fetch=round(s.fetched / s.fetches, 1) if s and s.fetches else 0.0,
                    dead_letters=s.dead_letters if s else 0,
                    flush_failures=s.flush_failures if s else 0,
                    last_flush_age=s.last_flush_age if s else -1.0,
                    stats_age=round(now - slot.stats_at, 3) if s else -1.0,
                    error=slot.error,
                    flushes=s.flushes if s else 0,
                    flush_seconds=s.flush_seconds if s else 0.0,
                    memory_bytes=s.memory_bytes if s else 0,
                    last_flush_latency=s.last_flush_latency if s else 0.0,
                    hot=s.hot if s else (),
                    counters=s.counters if s else {},
                    stages=s.stages if s else {},
                )
            )
        return NodeStatus(
            node=self._start.node if self._start else "",
            guardian=GuardianStatus(address=str(self.myAddress), pid=os.getpid(), session=os.getsid(0),
                                    poison=self._poison),
            shards=shards,
        )

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender: Any) -> None:
        # Thespian stops the children itself; their exits must not be taken for crashes.
        self._exiting = True

    def receiveMsg_PoisonMessage(self, msg: PoisonMessage, sender: Any) -> None:
        self._poison += 1
        log.error("poison message returned", to=str(sender), message=repr(msg.poisonMessage)[:200],
                  details=str(msg.details)[:500])

    def receiveUnrecognizedMessage(self, msg: Any, sender: Any) -> None:
        log.warning("guardian ignored a message", message=type(msg).__name__)
