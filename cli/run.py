"""`clipstream run`: the API, the actor node and the worker under one command; Ctrl-C stops them all.

It supervises them the way a container runtime's ``restart: on-failure`` does: a process that dies
(a crash, an OOM kill, ``kill -9``) is started again after a backoff that doubles per restart, with
the Guardian's restart budget (:class:`~clipstream.actors.supervision.RestartPolicy`); one that keeps
dying is given up on and the others are stopped, because restarting it forever would hide the fault.
State lives in the services, not in these processes, so a restarted one resumes where JetStream's
ack floors and Scylla say.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from clipstream.actors.supervision import RestartPolicy

__all__ = ["run_cmd"]

PROCESSES = ("api", "node", "worker")
#: first restart delay (doubles per restart in the window), and restarts allowed per process in ten minutes
RESTART_BACKOFF = 0.5
RESTART_BUDGET = 5


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

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
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
                _reap_group(proc.pid)  # what the dead leader left behind (granian workers)
                delay = policy.on_exit(name, now)
                if delay is None:
                    click.echo(f"{name} exited with {proc.returncode} {RESTART_BUDGET} times in ten minutes; "
                               "giving up and stopping the others", err=True)
                    stopping = True
                    break
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
        deadline = time.monotonic() + 20
        for name, proc in children.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                click.echo(f"{name} did not stop in time; killing it", err=True)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            _reap_group(proc.pid)
        click.echo("all processes stopped")


def _reap_group(pgid: int) -> None:
    """SIGKILL what is left of a child's process group (its leader is gone or stopped)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
