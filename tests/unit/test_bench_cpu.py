"""bench/cpu.py: CPU time per process role, read from a /proc tree."""

from __future__ import annotations

import os
from pathlib import Path

from clipstream.bench.cpu import role_of, shares, snapshot
from clipstream.bench.results import rows_of

HZ = os.sysconf("SC_CLK_TCK")


def _proc(root: Path, pid: int, cmdline: str, ticks_user: int, ticks_sys: int) -> None:
    d = root / str(pid)
    d.mkdir(parents=True, exist_ok=True)
    # fields after "(comm) ": state ppid ... utime is the 12th, stime the 13th
    rest = ["S"] + ["0"] * 10 + [str(ticks_user), str(ticks_sys)] + ["0"] * 30
    (d / "stat").write_text(f"{pid} (a b) " + " ".join(rest))
    (d / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")


def test_roles_from_command_lines() -> None:
    assert role_of("/v/bin/python3 /v/bin/clipstream api") == "api"
    assert role_of("/usr/bin/java -Xms1G org.apache.cassandra.service.CassandraDaemon") == "cassandra"
    assert role_of("/usr/bin/wrk -t64 -c64 -d15s http://127.0.0.1:18280") == "wrk"
    assert role_of("/usr/sbin/sshd") == "other"


def test_shares_by_role_and_per_request(tmp_path: Path) -> None:
    _proc(tmp_path, 10, "python clipstream api", 100, 0)
    _proc(tmp_path, 11, "python clipstream api", 100, 0)
    _proc(tmp_path, 20, "nats-server -c x", 0, 50)
    _proc(tmp_path / "x", 1, "", 0, 0)  # not a pid: ignored
    before = snapshot(str(tmp_path))
    assert set(before) == {10, 11, 20}
    _proc(tmp_path, 10, "python clipstream api", 100 + HZ, 0)  # one CPU second more each
    _proc(tmp_path, 11, "python clipstream api", 100, HZ)
    _proc(tmp_path, 20, "nats-server -c x", 0, 50 + HZ // 2)
    _proc(tmp_path, 30, "wrk -t64 http://x", HZ // 4, 0)  # started during the window
    got = shares(before, snapshot(str(tmp_path)), seconds=2.0, requests=4000)
    assert got["pct_of_one_core"] == {"api": 100.0, "nats": 25.0, "wrk": 12.5}
    assert got["total_pct"] == 137.5
    # 2,000 req/s: the API's two CPU seconds over two seconds is 500 us per request
    assert got["us_per_request"] == {"api": 500, "nats": 125, "wrk": 62}


def test_the_table_shows_where_a_request_went() -> None:
    feed = {"rps": 2000.0, "p50_ms": 1.0, "p99_ms": 2.0, "non_2xx": 0, "socket_errors": 0,
            "cpu": {"total_pct": 137.5, "cores": 2, "us_per_request": {"api": 500, "nats": 125, "other": 2}}}
    rows = [r for r in rows_of({"feed": feed}) if r.figure.startswith("CPU")]
    assert [r.value for r in rows] == ["api 500 · nats 125"]
