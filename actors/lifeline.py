"""Every process of a node's actor system dies with its parent, by the kernel's hand.

Thespian's admin daemonizes (fork, ``setsid``, fork): its first child exits at once, and the
admin, with the logger, Guardian and shards it forks, would run on with parent 1 when the node
dies (a SIGKILL, the OOM killer), holding the admin port. No code of ours runs in a node that is
SIGKILLed, so the processes must be told by the kernel:

- while its actor system starts, the node is a *child subreaper* (``PR_SET_CHILD_SUBREAPER``):
  when Thespian's first child exits, the admin is reparented to the node, not to init;
- every process forked after that asks for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``):
  the admin when the node dies, the logger and Guardian when the admin dies, each shard when the
  Guardian dies. A parent that died before the child asked is caught by comparing ``getppid``.

The kernel sends the signal when the parent *thread* exits. The admin's parent is the node's main
thread (the reaper the kernel picks); Thespian forks every actor from its process's main thread.

Losing the shards' last flush window this way costs nothing durable: JetStream messages are acked
only after their flush, so the next owner gets them again (as after a shard's own SIGKILL).
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from contextlib import contextmanager
from typing import Iterator

__all__ = ["tethered"]

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
#: how long the admin waits for the kernel to reparent it to the node (Thespian's first child
#: exits right after forking it)
REPARENT_WAIT = 10.0

_libc = ctypes.CDLL(None, use_errno=True)

# What a forked child is to do; copied into every child by fork. None: nothing (a fork that is
# not part of an actor system); "node": the next fork is Thespian's daemonizing child; "daemon":
# the next fork is the admin; "actor": the next fork is an actor process (or the logger).
_stage: str | None = None
_node_pid = 0
_parent_pid = 0
_hooked = False


def _prctl(option: int, arg: int) -> None:
    if _libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def _before_fork() -> None:
    global _parent_pid
    _parent_pid = os.getpid()


def _tie(parent: int) -> None:
    """Die with ``parent``: SIGKILL from the kernel when it exits, or now if it already did."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def _after_fork_in_child() -> None:
    global _stage
    if _stage == "node":
        _stage = "daemon"
    elif _stage == "daemon":
        _stage = "actor"
        deadline = time.monotonic() + REPARENT_WAIT
        while os.getppid() != _node_pid and time.monotonic() < deadline:
            time.sleep(0.001)
        _tie(_node_pid)  # not reparented to the node (it died): this admin must not start
    elif _stage == "actor":
        _tie(_parent_pid)


@contextmanager
def tethered() -> Iterator[None]:
    """Around the start of a multiproc actor system in this process: the admin it forks, and
    every process forked from there on, dies with its parent (see the module docstring).

    Leave the block only once Thespian's daemonizing child has been reaped: the node is the
    admin's reaper only while the block runs."""
    global _stage, _node_pid, _hooked
    if not _hooked:
        os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
        _hooked = True
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _stage, _node_pid = "node", os.getpid()
    try:
        yield
    finally:
        _stage = None
        # Orphans of later deaths (a logger whose admin died) need no reaper here: they die too.
        _prctl(PR_SET_CHILD_SUBREAPER, 0)
