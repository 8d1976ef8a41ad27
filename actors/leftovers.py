"""What a node leaves on the machine, recorded so that nothing of it outlives the node.

Thespian's admin daemonizes (fork, ``setsid``, fork), so the admin, its logger, the Guardian and
every shard run in a session of their own, with parent 1: killing the node's process group does
not reach them. The node writes what identifies them, its *record*, to
``<state_dir>/nodes/admin-<port>.json`` as soon as the actor system is up, and removes it once its
stop left nothing. With it:

- ``clipstream run``, which had to SIGKILL a node that did not stop in time (or saw it die),
  ends exactly the processes of the recorded session (:func:`end_leftovers`);
- a node that starts and finds its admin port held ends the stale node of the record when the
  recorded node is gone and the port's holders are in the recorded session and run the recorded
  command line, and logs the pids it ended; a port held by anything else is a :class:`PortHeld`
  error naming the holder and what to do (:func:`clear_stale_node`).

Processes are identified by their session id, from ``/proc``, never by their names. The node also
reaps the zombie Thespian's daemonizing leaves it (:func:`reap`).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import msgspec
import structlog

__all__ = ["NodeRecord", "PortHeld", "children", "clear_stale_node", "cmdline", "describe", "end_leftovers",
           "end_session", "port_holders", "port_open", "proc_stat", "read_record", "reap", "record_path",
           "remove_record", "session_processes", "write_record"]

log = structlog.get_logger("clipstream.actors.leftovers")


class PortHeld(RuntimeError):
    """The admin port is held by something this node may not end."""


class NodeRecord(msgspec.Struct, frozen=True):
    """A running node's actor system: what to end if the node cannot."""

    node_pid: int
    session: int
    admin_port: int
    name: str
    started_at: float
    #: the node's command line; its actor processes are forks of it and carry the same one
    cmdline: str = ""


def record_path(state_dir: str, admin_port: int) -> Path:
    return Path(state_dir) / "nodes" / f"admin-{admin_port}.json"


def write_record(path: Path, record: NodeRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(record))
    tmp.replace(path)


def read_record(path: Path) -> NodeRecord | None:
    try:
        return msgspec.json.decode(path.read_bytes(), type=NodeRecord)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def remove_record(path: Path, node_pid: int) -> None:
    """Remove the record if it is this node's (a newer node may have written its own)."""
    record = read_record(path)
    if record is not None and record.node_pid == node_pid:
        path.unlink(missing_ok=True)


def proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgrp, session) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    rest = raw.rpartition(")")[2].split()
    return rest[0], int(rest[1]), int(rest[2]), int(rest[3])


def session_processes(session: int) -> list[int]:
    """Live (non-zombie) processes of a session: every process of an actor system shares the
    admin's session, whoever their parent is now."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = proc_stat(int(entry))
            if fields and fields[3] == session and fields[0] != "Z":
                out.append(int(entry))
    return out


def cmdline(pid: int) -> str:
    """A process's command line, spaces for NULs ("?" if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def describe(pid: int) -> str:
    """A process's state and command line, for a log line ("gone" if it is gone)."""
    stat = proc_stat(pid)
    return "gone" if stat is None else f"state {stat[0]}: {cmdline(pid)[:100]}"


def children(pid: int) -> set[int]:
    """Pids whose parent is ``pid``."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = proc_stat(int(entry))
            if fields and fields[1] == pid:
                out.add(int(entry))
    return out


def reap(pids: set[int], timeout: float = 2.0) -> None:
    """Wait for these children of ours to exit, so none stays a zombie.

    Thespian's admin daemonizes (fork, setsid, fork): the first child exits at once and nobody
    waits for it, so without this it stays a zombie of the node."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            time.sleep(0.01)


def port_open(port: int) -> bool:
    """Something accepts connections on 127.0.0.1 ``port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def end_session(session: int, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process of ``session`` (a stopped one too: SIGKILL needs no cooperation) and
    wait until they are gone; returns the pids that were ended."""
    pids = session_processes(session)
    if not pids or session == os.getsid(0):  # never our own session
        return []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while session_processes(session) and time.monotonic() < deadline:
        time.sleep(0.02)
    return pids


def _alive(pid: int) -> bool:
    fields = proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def end_leftovers(state_dir: str, admin_port: int, node_pid: int) -> list[int]:
    """After node ``node_pid`` ended (it was killed, or died): end what its record names. Returns
    the pids ended; none if the record is another node's or there is none."""
    path = record_path(state_dir, admin_port)
    record = read_record(path)
    if record is None or record.node_pid != node_pid or _alive(node_pid):
        return []
    ended = end_session(record.session)
    path.unlink(missing_ok=True)
    if ended:
        log.warning("ended the processes the node left behind", node_pid=node_pid, session=record.session,
                    pids=ended)
    return ended


def port_holders(port: int) -> list[int]:
    """Pids with a listening TCP socket on 127.0.0.1/0.0.0.0 ``port`` (IPv4, from /proc)."""
    inodes = set()
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
            inodes.add(fields[9])
    holders = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                link = os.readlink(f"/proc/{entry}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    holders.append(int(entry))
                    break
        except OSError:
            continue
    return holders


def clear_stale_node(state_dir: str, admin_port: int) -> list[int]:
    """The admin port is in use: end the stale node holding it, or raise :class:`PortHeld`.

    Stale means: the record of this port names a node process that is gone, and the port's holders
    belong to the recorded session and run the recorded node's command line (a session id or pid
    reused since by something else is not ended). Returns the pids ended."""
    holders = port_holders(admin_port)
    path = record_path(state_dir, admin_port)
    record = read_record(path)
    if record is not None and not _alive(record.node_pid):
        sessions = {(proc_stat(pid) or ("", 0, 0, 0))[3] for pid in holders}
        same_program = all(cmdline(pid) == record.cmdline for pid in holders) if record.cmdline else True
        if holders and sessions == {record.session} and same_program:
            ended = end_session(record.session)
            path.unlink(missing_ok=True)
            log.warning("ended a stale node that held the admin port", admin_port=admin_port,
                        stale_node_pid=record.node_pid, session=record.session, pids=ended)
            return ended
    if not holders:
        return []  # it went away meanwhile (or is not visible to us): let the start try
    who = ", ".join(f"pid {pid} ({cmdline(pid)[:120]})" for pid in holders)
    if record is not None and _alive(record.node_pid):
        raise PortHeld(f"Thespian admin port {admin_port} is held by a running clipstream node "
                       f"(node pid {record.node_pid}, {record.name}): stop it first, or give this node another "
                       f"port (CLIPSTREAM_ACTORS_ADMIN_PORT)")
    raise PortHeld(f"Thespian admin port {admin_port} is held by {who}, which is not a clipstream node this "
                   f"machine recorded: stop it, or give the node another port (CLIPSTREAM_ACTORS_ADMIN_PORT)")
