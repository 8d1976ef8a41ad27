"""Open-loop load: requests at a constant arrival rate, latency timed from each one's intended send.

wrk (closed loop, 64 connections) only sends when an answer came back: at saturation it measures
queueing and stalls together, and a stall holds back the requests that would have met it
(coordinated omission). Here vegeta (installed by ``clipstream stack up``) sends request *i* at
``t0 + i / rate`` whatever happened before, on as many connections as it takes. Each result's
latency is corrected to start at that intended time (vegeta timestamps a request when a worker
takes it; the difference, its own lateness, is added), so a client-side hiccup counts against the
figure instead of hiding it.

Targets are generated here (JSON targets, one per request, so every like is a (user, video) pair
of its own and the counts can be checked exactly afterwards); results are read back as CSV.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = ["OpenLoopError", "OpenLoopResult", "Target", "feed_targets", "like_pair", "label_of", "like_targets",
           "mixed_targets", "percentile", "run_open_loop", "sched_figures", "sched_snapshot", "summarize"]

#: the share of the closed-loop maximum each open-loop run offers
RATES = (0.25, 0.50, 0.75)
_UPLOAD_BODY = b'{"file_size_bytes":1048576,"file_format":"mp4"}'
_LIKE_BODY = b'{"action":"like"}'


class OpenLoopError(RuntimeError):
    """vegeta is missing, failed, or returned nothing."""


@dataclass(frozen=True, slots=True)
class Target:
    """One request: its endpoint label (for per-endpoint figures), method, path, token, body."""

    label: str
    method: str
    path: str
    token: str
    body: bytes = b""

    def as_json(self, base: str) -> str:
        headers = {"Authorization": [f"Bearer {self.token}"]}
        target: dict[str, Any] = {"method": self.method, "url": base + self.path, "header": headers}
        if self.body:
            headers["Content-Type"] = ["application/json"]
            target["body"] = base64.b64encode(self.body).decode()
        return json.dumps(target, separators=(",", ":"))


def _count(rate: float, seconds: float) -> int:
    # a few more than the run sends, so that vegeta never wraps around to the first ones
    return math.ceil(rate * seconds * 1.05) + 64


def feed_targets(tokens: Sequence[str], rate: float, seconds: float) -> list[Target]:
    """``GET /v1/feed?limit=10`` without a cursor (a new page each time), users in turn."""
    return [Target("feed", "GET", "/v1/feed?limit=10", tokens[i % len(tokens)])
            for i in range(_count(rate, seconds))]


def like_pair(g: int, users: int, videos: int) -> tuple[int, int]:
    """Request ``g``'s (user index, video index): the pairing of ``bench/wrk/like.lua``, so no
    (user, video) pair repeats below ``users * videos``; ``g`` ranges of runs must not overlap."""
    return g % users, (g // users + (g % users) * 7) % videos


def like_targets(tokens: Sequence[str], videos: Sequence[str], first: int, rate: float,
                 seconds: float) -> list[Target]:
    """``POST /v1/videos/{id}/like`` for the pairs ``first, first + 1, ...``."""
    out = []
    for g in range(first, first + _count(rate, seconds)):
        u, v = like_pair(g, len(tokens), len(videos))
        out.append(Target("like", "POST", f"/v1/videos/{videos[v]}/like", tokens[u], _LIKE_BODY))
    return out


def mixed_targets(tokens: Sequence[str], videos: Sequence[str], rate: float, seconds: float,
                  seed: int = 7) -> list[Target]:
    """1000 feed reads : 1 upload-url : 10 likes of random corpus videos (``bench/wrk/mixed.lua``)."""
    rng = random.Random(seed)
    out = []
    for n in range(_count(rate, seconds)):
        slot, token = n % 1011, tokens[n % len(tokens)]
        if slot == 0:
            out.append(Target("upload_url", "POST", "/v1/videos/upload-url", token, _UPLOAD_BODY))
        elif slot <= 10:
            out.append(Target("like", "POST", f"/v1/videos/{rng.choice(videos)}/like", token, _LIKE_BODY))
        else:
            out.append(Target("feed", "GET", "/v1/feed?limit=10", token))
    return out


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (as wrk's scripts take it); 0 for no values."""
    if not sorted_values:
        return 0.0
    i = max(1, math.ceil(len(sorted_values) * p / 100))
    return sorted_values[min(i, len(sorted_values)) - 1]


def _figures(latencies_ms: list[float]) -> dict[str, float]:
    values = sorted(latencies_ms)
    return {"n": len(values), "p50_ms": round(percentile(values, 50), 2), "p90_ms": round(percentile(values, 90), 2),
            "p99_ms": round(percentile(values, 99), 2), "p999_ms": round(percentile(values, 99.9), 2),
            "max_ms": round(values[-1], 2) if values else 0.0}


@dataclass(slots=True)
class OpenLoopResult:
    """One open-loop run: the offered and achieved rates, corrected latencies overall and per endpoint."""

    rate: float
    seconds: float
    sent: int
    ok: int
    bad: int
    errors: int
    achieved_rps: float
    overall: dict[str, float]
    endpoints: dict[str, dict[str, float]] = field(default_factory=dict)
    #: vegeta's own lateness (a request's start past its intended time): how far the client kept up
    send_lag_p99_ms: float = 0.0
    send_lag_max_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"offered_rps": round(self.rate, 1), "achieved_rps": round(self.achieved_rps, 1),
                "seconds": self.seconds, "sent": self.sent, "ok": self.ok, "non_2xx": self.bad,
                "errors": self.errors, **{k: v for k, v in self.overall.items() if k != "n"},
                "endpoints": self.endpoints, "send_lag_p99_ms": self.send_lag_p99_ms,
                "send_lag_max_ms": self.send_lag_max_ms, "latency_from": "intended send time"}


def label_of(method: str, url: str) -> str:
    """The endpoint of a request, as the wrk scripts label them."""
    if url.endswith("/like"):
        return "like"
    if url.endswith("/upload-url"):
        return "upload_url"
    return "feed" if "/v1/feed" in url else f"{method} {url}"


def summarize(rows: Iterator[list[str]], rate: float, seconds: float) -> OpenLoopResult:
    """Figures from vegeta's CSV results (timestamp ns, code, latency ns, bytes out, bytes in,
    error, body, attack, seq, method, url, headers). A request's latency is counted from its
    intended send time ``t0 + seq / rate``."""
    parsed = [(int(r[0]), int(r[1]), int(r[2]), r[5], int(r[8]), label_of(r[9], r[10])) for r in rows if r]
    if not parsed:
        raise OpenLoopError("vegeta returned no results")
    t0 = min(ts - seq * 1e9 / rate for ts, _, _, _, seq, _ in parsed)  # the schedule's origin
    latencies: list[float] = []
    per: dict[str, list[float]] = {}
    lags: list[float] = []
    ok = bad = errors = 0
    last = 0
    for ts, code, latency, error, seq, label in parsed:
        lag = max(0.0, ts - (t0 + seq * 1e9 / rate))
        lags.append(lag / 1e6)
        total = (lag + latency) / 1e6
        latencies.append(total)
        per.setdefault(label, []).append(total)
        if error and code == 0:
            errors += 1
        elif 200 <= code < 300:
            ok += 1
        else:
            bad += 1
        last = max(last, ts + latency)
    lags.sort()
    span = (last - t0) / 1e9
    return OpenLoopResult(
        rate=rate, seconds=seconds, sent=len(parsed), ok=ok, bad=bad, errors=errors,
        achieved_rps=len(parsed) / seconds if seconds else 0.0, overall=_figures(latencies),
        endpoints={name: _figures(v) for name, v in sorted(per.items())} if len(per) > 1 else {},
        send_lag_p99_ms=round(percentile(lags, 99), 2), send_lag_max_ms=round(lags[-1], 2),
    ) if span > 0 else OpenLoopResult(rate, seconds, len(parsed), ok, bad, errors, 0.0, _figures(latencies))


def vegeta() -> Path:
    """The stack's vegeta (``clipstream stack up`` builds it into the cache)."""
    from clipstream.config.settings import get_settings
    from clipstream.stack.apt_tools import vegeta_binary

    path = vegeta_binary(Path(get_settings().stack.cache_dir))
    if path is None:
        raise OpenLoopError("vegeta not found: `clipstream stack up` installs it")
    return path


async def run_open_loop(url: str, targets: Sequence[Target], rate: float, seconds: float, workdir: Path,
                        name: str, timeout_s: float = 10.0) -> OpenLoopResult:
    """``targets`` sent at ``rate`` per second (whole, as vegeta takes it) for ``seconds``, from one
    vegeta process."""
    binary = vegeta()
    rate = max(1, round(rate))
    tfile, rfile = workdir / f"openloop-{name}.targets", workdir / f"openloop-{name}.bin"
    tfile.write_text("".join(t.as_json(url) + "\n" for t in targets))
    proc = await asyncio.create_subprocess_exec(
        str(binary), "attack", "-format", "json", "-targets", str(tfile), f"-rate={max(1, round(rate))}/1s",
        f"-duration={seconds:g}s", f"-timeout={timeout_s:g}s", "-max-body", "0", "-http2=false",
        "-output", str(rfile), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise OpenLoopError(f"vegeta attack exited {proc.returncode}: {out.decode(errors='replace')[-2000:]}")
    enc = await asyncio.create_subprocess_exec(str(binary), "encode", "--to", "csv", str(rfile),
                                               stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    csv_out, err = await enc.communicate()
    if enc.returncode != 0:
        raise OpenLoopError(f"vegeta encode exited {enc.returncode}: {err.decode(errors='replace')[-2000:]}")
    rfile.unlink(missing_ok=True)
    return summarize(csv.reader(io.StringIO(csv_out.decode())), rate, seconds)


#: the histogram families read after each run, and how a series is named in the bench output
_STAGE_FAMILIES = {
    "clipstream_shard_stage_seconds": lambda labels: f"{labels['kind']} shard {labels['stage']}",
    "clipstream_api_bus_wait_seconds": lambda labels: f"api wait {labels['op']}",
    "clipstream_api_loop_lag_seconds": lambda labels: "api loop_lag",
    "clipstream_api_gc_pause_seconds": lambda labels: "api gc",
    "clipstream_api_gc_full_pause_seconds": lambda labels: "api gc_full",
}


async def scrape_stages(url: str) -> dict[str, dict[float, float]]:
    """Every stage histogram of ``/metrics``, summed over shards and workers: name → {le: count}."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{url}/metrics")).text
    out: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        name_of = _STAGE_FAMILIES.get(family.name)
        if name_of is None:
            continue
        for sample in family.samples:
            if not sample.name.endswith("_bucket"):
                continue
            buckets = out.setdefault(name_of(sample.labels), {})
            le = float(sample.labels["le"])
            buckets[le] = buckets.get(le, 0.0) + sample.value
    return out


def stage_figures(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]) -> list[dict[str, Any]]:
    """Per stage, what was observed between two scrapes: count, and p50 / p99 / p99.9 as the upper
    bound of the bucket holding that rank (so "≤ 25 ms" reads 25), plus the count over 50 ms."""
    figures = []
    for name in sorted(after):
        cumulative = sorted((le, n - before.get(name, {}).get(le, 0.0)) for le, n in after[name].items())
        total = cumulative[-1][1] if cumulative else 0
        if total <= 0:
            continue

        def bound(p: float) -> float:
            rank = math.ceil(total * p / 100)
            le = next(le for le, n in cumulative if n >= rank)
            return round(le * 1000, 2) if math.isfinite(le) else float("inf")

        over50 = total - next((n for le, n in cumulative if le >= 0.05), total)
        figures.append({"name": name, "n": int(total), "p50_ms": bound(50), "p99_ms": bound(99),
                        "p999_ms": bound(99.9), "over_50ms": int(over50)})
    return figures


def sched_snapshot(proc: str = "/proc") -> tuple[dict[int, tuple[float, float, str]], float]:
    """pid -> (CPU seconds run, seconds spent runnable waiting for a CPU, command line), summed over
    the process's threads (``/proc/<pid>/task/<tid>/schedstat``), and the machine's CPU pressure
    total (``/proc/pressure/cpu`` "some", seconds; 0 where the kernel has no PSI)."""
    out: dict[int, tuple[float, float, str]] = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        ran = waited = 0.0
        try:
            with open(f"{proc}/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            for tid in os.listdir(f"{proc}/{entry}/task"):
                try:
                    with open(f"{proc}/{entry}/task/{tid}/schedstat") as f:
                        fields = f.read().split()
                except OSError:
                    continue
                ran += int(fields[0]) / 1e9
                waited += int(fields[1]) / 1e9
        except OSError:
            continue
        out[int(entry)] = (ran, waited, cmdline)
    pressure = 0.0
    try:
        with open(f"{proc}/pressure/cpu") as f:
            some = f.readline().split()
        pressure = int(some[-1].split("=")[1]) / 1e6
    except (OSError, IndexError, ValueError):
        pass
    return out, pressure


def sched_figures(before: tuple[dict[int, tuple[float, float, str]], float],
                  after: tuple[dict[int, tuple[float, float, str]], float], seconds: float) -> dict[str, Any]:
    """Between two :func:`sched_snapshot` s: by process role, CPU used and time spent waiting for a
    CPU (run-queue wait), both in ms per second of the window; and the share of the window in
    which some task of the machine waited for a CPU (PSI). Roles are :mod:`clipstream.bench.cpu`'s
    ("other": every process outside the system and its load generators, e.g. other sessions')."""
    from clipstream.bench.cpu import role_of

    (b, pb), (a, pa) = before, after
    ran: dict[str, float] = {}
    waited: dict[str, float] = {}
    for pid, (r, w, cmdline) in a.items():
        r0, w0 = b[pid][:2] if pid in b else (0.0, 0.0)
        role = "vegeta" if "vegeta attack" in cmdline else role_of(cmdline)
        ran[role] = ran.get(role, 0.0) + max(0.0, r - r0)
        waited[role] = waited.get(role, 0.0) + max(0.0, w - w0)
    per_s = 1000 / seconds if seconds > 0 else 0.0
    return {
        "seconds": round(seconds, 2),
        "cpu_ms_per_s": {k: round(v * per_s) for k, v in sorted(ran.items(), key=lambda kv: -kv[1]) if v * per_s >= 5},
        "runqueue_wait_ms_per_s": {k: round(v * per_s) for k, v in sorted(waited.items(), key=lambda kv: -kv[1])
                                   if v * per_s >= 5},
        "cpu_pressure_some_pct": round(100 * (pa - pb) / seconds, 1) if seconds > 0 else 0.0,
    }
