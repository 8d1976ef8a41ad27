"""`stack down` leaves no process of ours behind; `stack up` brings everything back (the stack ends UP)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clipstream.stack import pins
from clipstream.stack.proc import port_open
from clipstream.stack.runner import SERVICES, make_context

from .conftest import run_cli

pytestmark = pytest.mark.integration


def _stack_processes(ctx) -> list[str]:
    """Every live process that looks like one of the stack's: by executable, config path or address."""
    state = str(ctx.state_dir)
    gobin = str(ctx.cache_dir / "go" / "bin")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            exe = os.readlink(entry / "exe")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state_flag = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state_flag == "Z":
            continue
        ours = (
            exe.startswith(gobin)
            or (exe.endswith("/java") and "CassandraDaemon" in cmdline and state in cmdline)
            or (exe.endswith("redis-server") and (state in cmdline or f"{pins.HOST}:{ctx.settings.redis.url.rsplit(':', 1)[1].split('/')[0]}" in cmdline))
        )
        if ours:
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def test_down_stops_everything_then_up_restores(stack_up):
    ctx = make_context()
    before = {n: cls(ctx).record() for n, cls in SERVICES.items() if cls.has_process}
    assert all(before.values()), before
    assert _stack_processes(ctx), "the process scan must see the running stack, or it proves nothing"

    down = run_cli("stack", "down", timeout=180)
    try:
        assert down.returncode == 0, down.stdout + down.stderr
        assert _stack_processes(ctx) == []
        for name, rec in before.items():
            assert not Path(f"/proc/{rec.pid}").exists() or "Z" in Path(f"/proc/{rec.pid}/stat").read_text().split()[2]
            assert not SERVICES[name](ctx).pid_file.exists()
        for svc in (cls(ctx) for cls in SERVICES.values()):
            for port in svc.ports():
                assert not port_open(pins.HOST, port), f"{svc.name} port {port} still open after down"
        status = run_cli("stack", "status", timeout=60)
        assert status.returncode != 0
    finally:
        up = run_cli("stack", "up", timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    after = {n: cls(ctx).record() for n, cls in SERVICES.items() if cls.has_process}
    assert all(after.values())
    assert all(after[n].pid != before[n].pid for n in before)
    assert run_cli("stack", "status", timeout=60).returncode == 0
