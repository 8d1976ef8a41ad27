"""`stack down` leaves no process of ours behind; `stack up` brings everything back (the stack ends UP)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

from clipstream.stack import pins
from clipstream.stack.proc import port_open
from clipstream.stack.runner import SERVICES, make_context

from .conftest import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]


def _ticks_now() -> int:
    return int(float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK"))


def _stack_processes(ctx, started_before: int | None = None) -> list[str]:
    """Every live process that looks like one of the stack's: by executable, config path or address.

    With ``started_before`` (clock ticks since boot) only processes older than that: another session's
    `stack up` racing with this test may legitimately start new ones after our `down`."""
    state = str(ctx.state_dir)
    gobin = str(ctx.cache_dir / "go" / "bin")
    # redis-server rewrites its command line to "redis-server 127.0.0.1:<port>"
    redis_title = f"{pins.HOST}:{urlparse(ctx.settings.redis.url).port or 6379}"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            exe = os.readlink(entry / "exe")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] == "Z" or (started_before is not None and int(stat[19]) > started_before):
            continue
        ours = (
            # other sessions run the cached binaries for their own throwaway servers: ours name our state dir
            (exe.startswith(gobin) and state in cmdline)
            or (exe.endswith("/java") and "CassandraDaemon" in cmdline and state in cmdline)
            or (exe.endswith("redis-server") and (state in cmdline or redis_title in cmdline))
        )
        if ours:
            found.append(f"{entry.name} (state {stat[0]}, started {stat[19]}): {cmdline[:160]}")
    return found


def test_down_stops_everything_then_up_restores(stack_up):
    ctx = make_context()
    before = {n: cls(ctx).record() for n, cls in SERVICES.items() if cls.has_process}
    assert all(before.values()), before
    assert _stack_processes(ctx), "the process scan must see the running stack, or it proves nothing"

    t_down = _ticks_now()
    down = run_cli("stack", "down", timeout=180)
    try:
        assert down.returncode == 0, down.stdout + down.stderr
        assert _stack_processes(ctx, started_before=t_down) == [], down.stdout
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
