"""What every service of the stack shares: paths, logging, and the install/start/check/stop cycle.

A service subclass only says how to install itself, which command runs it, how to ask it a real
question (``check``), and optionally what to create once it answers (``after_healthy``).
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import click

from clipstream.stack import pins
from clipstream.stack.proc import ProcRecord, is_alive, port_open, read_record, spawn, terminate, write_record

if TYPE_CHECKING:
    from clipstream.config.settings import Settings

__all__ = ["Service", "StackContext", "StackError", "Status"]


class StackError(RuntimeError):
    """A step of the stack failed; the message says which and where to look."""


@dataclass
class StackContext:
    """Settings, directories and the shared console of one `clipstream stack` command."""

    settings: "Settings"
    t0: float = field(default_factory=time.monotonic)
    _out: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state_dir(self) -> Path:
        return Path(self.settings.stack.state_dir).expanduser()

    @property
    def cache_dir(self) -> Path:
        return Path(self.settings.stack.cache_dir).expanduser()

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    def log(self, service: str, message: str, *, err: bool = False) -> None:
        with self._out:
            click.echo(f"[{time.monotonic() - self.t0:6.1f}s] {service:<9} {message}", err=err)


@dataclass
class Status:
    name: str
    pid: int | None
    address: str
    healthy: bool
    detail: str


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no {path})"


class Service:
    """One service: installed once into the cache, run as our own process with a pid file."""

    name: str = ""
    deps: tuple[str, ...] = ()  # services that must be healthy before this one starts
    has_process: bool = True
    start_timeout: float = 30.0
    stop_timeout: float = 15.0

    def __init__(self, ctx: StackContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings

    # ---- paths
    @property
    def data_dir(self) -> Path:
        return self.ctx.state_dir / self.name

    @property
    def pid_file(self) -> Path:
        return self.ctx.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.ctx.log_dir / f"{self.name}.log"

    def wipe_paths(self) -> list[Path]:
        """Data removed by `stack down --wipe`."""
        return [self.data_dir]

    # ---- to implement
    def installed(self) -> bool:
        raise NotImplementedError

    def install(self) -> None:
        raise NotImplementedError

    def command(self) -> tuple[list[str], dict[str, str]]:
        """Write the service's config files; return argv and extra environment."""
        raise NotImplementedError

    def ports(self) -> list[int]:
        """Every port the service listens on (all on pins.HOST)."""
        raise NotImplementedError

    def address(self) -> str:
        return f"{pins.HOST}:{self.ports()[0]}"

    def check(self) -> str:
        """Ask the running service a real question; return a short answer or raise."""
        raise NotImplementedError

    def after_healthy(self) -> str | None:
        """Idempotent setup once the service answers (streams, buckets); returns what it did, for the log."""
        return None

    # ---- shared behaviour
    def healthy(self) -> tuple[bool, str]:
        try:
            return True, self.check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", with the reason
            return False, f"{type(exc).__name__}: {exc}"[:300]

    def record(self) -> ProcRecord | None:
        """Our running process, or None (a stale pid file is removed)."""
        rec = read_record(self.pid_file)
        if rec is None:
            return None
        if is_alive(rec):
            return rec
        self.pid_file.unlink(missing_ok=True)
        return None

    def ensure_installed(self) -> None:
        t = time.monotonic()
        if self.installed():
            return
        self.ctx.log(self.name, "installing ...")
        self.install()
        if not self.installed():
            raise StackError(f"{self.name}: install finished but the service is still not installed")
        self.ctx.log(self.name, f"installed in {time.monotonic() - t:.1f}s")

    def ensure_running(self) -> None:
        """Start unless our process already runs, then wait for a real answer and run the setup hook."""
        if not self.has_process:
            ok, detail = self.healthy()
            if not ok:
                raise StackError(f"{self.name}: {detail}")
            self.ctx.log(self.name, f"ready ({detail})")
            return
        rec = self.record()
        t = time.monotonic()
        if rec is None:
            busy = [p for p in self.ports() if port_open(pins.HOST, p)]
            if busy:
                raise StackError(
                    f"{self.name}: port(s) {busy} on {pins.HOST} already in use by a process this stack did not"
                    f" start (no live pid file {self.pid_file}); stop it first"
                )
            argv, env = self.command()
            rec = spawn(argv, self.log_file, env=env, cwd=self.data_dir)
            write_record(self.pid_file, rec)
            started = True
        else:
            started = False
        detail = self.wait_healthy(rec)
        what = f"started pid {rec.pid}, healthy in {time.monotonic() - t:.1f}s" if started else f"already running pid {rec.pid}"
        self.ctx.log(self.name, f"{what} ({detail})")
        t = time.monotonic()
        done = self.after_healthy()
        if done:
            self.ctx.log(self.name, f"{done} in {time.monotonic() - t:.1f}s")

    def wait_healthy(self, rec: ProcRecord) -> str:
        deadline = time.monotonic() + self.start_timeout
        delay = 0.1
        while True:
            ok, detail = self.healthy()
            if ok:
                return detail
            if not is_alive(rec):
                self.pid_file.unlink(missing_ok=True)
                raise StackError(f"{self.name}: process {rec.pid} exited; last log lines of {self.log_file}:\n{tail(self.log_file)}")
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name}: no healthy answer within {self.start_timeout:.0f}s (last: {detail}); process {rec.pid}"
                    f" left running, see {self.log_file}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def stop(self) -> str:
        if not self.has_process:
            return "no process"
        rec = self.record()
        if rec is None:
            return "not running"
        how = terminate(rec, self.stop_timeout)
        if how == "still running after SIGKILL":
            raise StackError(f"{self.name}: pid {rec.pid} survived SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        return f"{how} (pid {rec.pid})"

    def wipe(self) -> None:
        for path in self.wipe_paths():
            shutil.rmtree(path, ignore_errors=True)

    def status(self) -> Status:
        if not self.has_process:
            ok, detail = self.healthy()
            return Status(self.name, None, "-", ok, detail)
        rec = self.record()
        if rec is None:
            busy = [p for p in self.ports() if port_open(pins.HOST, p)]
            detail = f"not running (ports {busy} taken by another process)" if busy else "not running"
            return Status(self.name, None, self.address(), False, detail)
        ok, detail = self.healthy()
        return Status(self.name, rec.pid, self.address(), ok, detail)


ServiceFactory = Callable[[StackContext], Service]
