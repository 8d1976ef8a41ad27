"""Processes started by the stack: spawn detached, record in a pid file, recognise, stop.

A pid file holds the pid *and* the kernel start time of the process plus its executable, so a
recycled pid that now belongs to someone else is never taken for ours and never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["ProcRecord", "is_alive", "port_open", "read_record", "spawn", "terminate", "write_record"]


@dataclass(frozen=True)
class ProcRecord:
    pid: int
    starttime: int
    exe: str
    argv: list[str]
    started_at: float


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, starttime in clock ticks since boot) of a pid, None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may contain spaces and parens
    return fields[0], int(fields[19])


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except OSError:
        return ""


def _reap(pid: int) -> None:
    """Collect the exit status if the process happens to be our own child (in-process callers)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_alive(rec: ProcRecord) -> bool:
    """True if the recorded process still runs: same pid, same start time, same executable, not a zombie."""
    _reap(rec.pid)
    st = _stat(rec.pid)
    if st is None or st[0] in ("Z", "X") or st[1] != rec.starttime:
        return False
    return _exe(rec.pid) == rec.exe


def read_record(path: Path) -> ProcRecord | None:
    try:
        return ProcRecord(**json.loads(path.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def write_record(path: Path, rec: ProcRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(rec)))
    tmp.replace(path)


def spawn(argv: list[str], log_file: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> ProcRecord:
    """Start ``argv`` in its own session (it outlives the caller), output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    # Popen returns after the exec succeeded, so /proc already shows the new program.
    st = _stat(proc.pid)
    return ProcRecord(proc.pid, st[1] if st else -1, _exe(proc.pid), list(argv), time.time())


def terminate(rec: ProcRecord, timeout: float) -> str:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Returns how it ended."""
    if not is_alive(rec):
        return "not running"
    os.kill(rec.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(rec):
            return "stopped"
        time.sleep(0.1)
    if is_alive(rec):
        os.kill(rec.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_alive(rec) and time.monotonic() < deadline:
        time.sleep(0.1)
    return "killed" if not is_alive(rec) else "still running after SIGKILL"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
