"""`clipstream run`: the API, the actor node and the worker under one command; Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

__all__ = ["run_cmd"]

PROCESSES = ("api", "node", "worker")


def _clipstream() -> str:
    return str(Path(sys.executable).with_name("clipstream"))


@click.command("run")
@click.option("--only", default=",".join(PROCESSES), show_default=True, help="processes to start")
def run_cmd(only: str) -> None:
    """Start the clipstream processes and supervise them until Ctrl-C (or one of them dies)."""
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
    try:
        for name in names:
            # Each in its own process group, so a kill reaches its workers too (granian forks them).
            children[name] = subprocess.Popen([_clipstream(), name], env=env, start_new_session=True)
            click.echo(f"started {name} (pid {children[name].pid})")
        while not stopping:
            for name, proc in children.items():
                if proc.poll() is not None:
                    click.echo(f"{name} exited with {proc.returncode}; stopping the others", err=True)
                    stopping = True
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
        click.echo("all processes stopped")
