"""`clipstream run`: the API, the actor node and the worker under one command; Ctrl-C stops them all.

It supervises them the way a container runtime's ``restart: on-failure`` does: a process that dies
(a crash, an OOM kill, ``kill -9``) is started again after a backoff that doubles per restart, with
the Guardian's restart budget (:class:`~clipstream.actors.supervision.RestartPolicy`); one that keeps
dying past the budget is tried again every :data:`RESTART_SLOW` seconds, each time with a line that
says so: what fails it (a service down, a port held) usually passes, and giving up stopped the whole
system for a cause a later start would not have met.
State lives in the services, not in these processes, so a restarted one resumes where JetStream's
ack floors and Scylla say.

A process that exits with :data:`EXIT_CONFIG` reported an error a restart cannot fix (the node's
admin port held by something else): it is given up on at once, with what it printed. A node that
died, or had to be killed at the stop, leaves its actor system in a session of its own; what it
recorded of it is ended here (:mod:`clipstream.actors.leftovers`), so nothing survives the node.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from clipstream.actors.leftovers import end_leftovers
from clipstream.actors.messages import RuntimeOptions
from clipstream.actors.node import stop_budget
from clipstream.actors.supervision import RestartPolicy
from clipstream.config import get_settings

__all__ = ["run_cmd"]

PROCESSES = ("api", "node", "worker")
#: exit status of a process whose error a restart cannot fix (sysexits.h's EX_CONFIG)
EXIT_CONFIG = 78
#: seconds the API and the worker get to stop before they are killed (the node gets its stop budget)
STOP_PATIENCE = 20.0
#: first restart delay (doubles per restart in the window), and restarts allowed per process in ten minutes
RESTART_BACKOFF = 0.5
RESTART_BUDGET = 5
#: seconds between restarts of a process past its budget
RESTART_SLOW = 30.0


def _clipstream() -> str:
    return str(Path(sys.executable).with_name("clipstream"))


@click.command("run")
@click.option("--only", default=",".join(PROCESSES), show_default=True, help="processes to start")
def run_cmd(only: str) -> None:
    """Start the clipstream processes and supervise them (restarting the ones that die) until Ctrl-C."""
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = set(names) - set(PROCESSES)
    if unknown:
        raise click.UsageError(f"unknown process(es): {', '.join(sorted(unknown))}")
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False
    gave_up = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    settings = get_settings()

    def leftovers(name: str, proc: subprocess.Popen[bytes]) -> None:
        _reap_group(proc.pid)  # what the dead leader left in its group (granian workers)
        if name == "node":  # and in the actor system's own session
            ended = end_leftovers(settings.stack.state_dir, settings.actors.admin_port, proc.pid)
            if ended:
                click.echo(f"node {proc.pid} left processes behind; ended them: {' '.join(map(str, ended))}", err=True)

    policy = RestartPolicy(RESTART_BACKOFF, RESTART_BUDGET, max_delay=10.0)
    due: dict[str, float] = {}  # dead process -> when to start it again

    def start(name: str) -> None:
        # Each in its own process group, so a kill reaches its workers too (granian forks them).
        children[name] = subprocess.Popen([_clipstream(), name], env=env, start_new_session=True)
        click.echo(f"started {name} (pid {children[name].pid})")

    try:
        for name in names:
            start(name)
        while not stopping:
            now = time.monotonic()
            for name, proc in children.items():
                if name in due or proc.poll() is None:
                    continue
                leftovers(name, proc)
                if proc.returncode == EXIT_CONFIG:
                    click.echo(f"{name} cannot start: a restart cannot fix what it printed above; fix that and "
                               "run again. Stopping the others", err=True)
                    stopping = gave_up = True
                    break
                delay = policy.on_exit(name, now)
                if delay is None:
                    # Over the budget, but whatever made it fail (a service still down, a port not
                    # yet free) may pass: keep trying, slowly, and say so every time.
                    delay = RESTART_SLOW
                    click.echo(f"{name} exited with {proc.returncode}, {RESTART_BUDGET} times or more in ten minutes: "
                               f"read its last lines above; trying again every {delay:.0f}s (Ctrl-C stops everything)",
                               err=True)
                    due[name] = now + delay
                    continue
                click.echo(f"{name} exited with {proc.returncode}; restarting it in {delay:.1f}s", err=True)
                due[name] = now + delay
            for name, at in list(due.items()):
                if not stopping and now >= at:
                    del due[name]
                    start(name)
            time.sleep(0.2)
    finally:
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        node_patience = stop_budget(RuntimeOptions.from_settings(settings.actors).stop_timeout)
        for name, proc in children.items():
            patience = node_patience if name == "node" else STOP_PATIENCE
            try:
                proc.wait(timeout=max(0.1, began + patience - time.monotonic()))
            except subprocess.TimeoutExpired:
                click.echo(f"{name} did not stop in {patience:.0f}s; killing it", err=True)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            leftovers(name, proc)
        click.echo("all processes stopped")
    if gave_up:
        sys.exit(1)


def _reap_group(pgid: int) -> None:
    """SIGKILL what is left of a child's process group (its leader is gone or stopped)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
