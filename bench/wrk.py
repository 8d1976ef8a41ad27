"""Running wrk: scripts rendered from ``bench/wrk/*.lua``, results parsed from the line ``done()`` prints."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

__all__ = ["WrkError", "WrkResult", "parse_output", "render_script", "run_wrk"]

SCRIPTS = Path(__file__).resolve().parent / "wrk"
MARKER = "BENCH_JSON "


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no result."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run: totals from wrk itself, per-endpoint latencies timed by the script."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    sent: int
    ok: int
    bad: int
    socket_errors: int
    endpoints: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def endpoint_rps(self, name: str) -> float:
        return self.endpoints.get(name, {}).get("n", 0) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rps": round(self.rps, 1), "requests": self.requests, "seconds": round(self.seconds, 2),
            "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms, "max_ms": self.max_ms,
            "sent": self.sent, "ok": self.ok, "non_2xx": self.bad, "socket_errors": self.socket_errors,
            "endpoints": {
                name: {**v, "rps": round(self.endpoint_rps(name), 1)} for name, v in self.endpoints.items()
            },
        }  # fmt: skip


def render_script(name: str) -> str:
    """The Lua that wrk runs: ``common.lua`` (shared setup, timing, ``done``) then the scenario's."""
    return (SCRIPTS / "common.lua").read_text() + "\n" + (SCRIPTS / f"{name}.lua").read_text()


def _ms(us: float) -> float:
    return round(us / 1000, 2)


def parse_output(stdout: str) -> WrkResult:
    """The result line of a wrk run (the script's ``done`` prints it); WrkError if there is none."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise WrkError(f"wrk printed no result:\n{stdout[-2000:]}")
    data = json.loads(line[len(MARKER):])
    lat, errors = data["latency_us"], data["errors"]
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=_ms(lat["p50"]), p90_ms=_ms(lat["p90"]), p99_ms=_ms(lat["p99"]), max_ms=_ms(lat["max"]),
        sent=data["sent"], ok=data["ok"], bad=data["bad"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        endpoints={
            name: {"n": v["n"], "p50_ms": _ms(v["p50_us"]), "p99_ms": _ms(v["p99_us"])}
            for name, v in data["endpoints"].items()
        },
    )  # fmt: skip


async def run_wrk(url: str, script: str, args: Sequence[str], *, connections: int, seconds: float,
                  workdir: Path, timeout_s: float = 10.0) -> WrkResult:
    """wrk with one connection per thread (so a response is known to answer the thread's last request)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkError("wrk not found: `clipstream stack up` installs it")
    path = workdir / f"{script}.lua"
    path.write_text(render_script(script))
    proc = await asyncio.create_subprocess_exec(
        wrk, f"-t{connections}", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout_s:g}s",
        "-s", str(path), url, "--", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise WrkError(f"wrk exited {proc.returncode}:\n{text[-2000:]}")
    return parse_output(text)
