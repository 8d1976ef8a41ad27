"""``--profile``: py-spy samples every Python process of the system while a scenario runs.

Each process gets a ``py-spy record --format raw`` (collapsed stacks) for the scenario's duration;
the summary keeps, per process, the functions with the most samples on-CPU at the top of the
stack (self) and the clipstream functions with the most samples anywhere in it (inclusive).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["record", "summarize", "with_env"]


def with_env(assignment: str) -> dict[int, str]:
    """pid -> command line of every process whose environment holds ``NAME=value``.

    Thespian's actor processes are not below the node in the process tree; they inherit its
    environment, so the node's unique name finds them.
    """
    needle = assignment.encode() + b"\0"
    out: dict[int, str] = {}
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in env.read_bytes() + b"\0":
                pid = int(env.parent.name)
                out[pid] = (env.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()[:120]
        except OSError:
            continue
    return out


def summarize(raw: str, top: int = 12) -> dict[str, Any]:
    """Self and inclusive sample counts from py-spy's raw output (``frame;frame;... count`` lines)."""
    self_count: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = stack.split(";")
        self_count[frames[-1]] += count
        for frame in set(frames):
            if "clipstream" in frame or "main/" in frame:
                inclusive[frame] += count
    pct = lambda c: round(100 * c / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "self_pct": [(f, pct(c)) for f, c in self_count.most_common(top)],
        "clipstream_inclusive_pct": [(f, pct(c)) for f, c in inclusive.most_common(top)],
    }


async def record(pids: dict[int, str], seconds: float, outdir: Path) -> dict[str, Any]:
    """Sample each process for ``seconds``; returns the summaries keyed by ``pid command``."""
    beside = Path(sys.executable).with_name("py-spy")
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        return {"skipped": "py-spy not installed (pip install -e '.[bench]')"}

    async def one(pid: int) -> tuple[int, str]:
        out = outdir / f"{pid}.txt"
        proc = await asyncio.create_subprocess_exec(
            spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", "200",
            "--nonblocking", "--format", "raw", "--output", str(out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await proc.wait()
        return pid, out.read_text() if out.exists() else ""

    got = await asyncio.gather(*(one(p) for p in pids))
    return {f"{pid} {pids[pid]}": summarize(raw) for pid, raw in got if raw}
