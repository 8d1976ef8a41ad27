"""A bench run's figures: the rows of the printed table (and of BENCHMARKS.md), and the JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

__all__ = ["Row", "format_table", "ratio", "result_path", "rows_of", "write_json"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    figure: str
    value: str
    target: str = ""
    verdict: str = ""


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else 0.0


def _met(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "NOT met")


def _cpu_row(x: dict[str, Any], label: str = "") -> list[Row]:
    """Where one request's CPU went, by process role (from ``bench/cpu.py``), the largest first."""
    cpu = x.get("cpu") or {}
    per = cpu.get("us_per_request")
    if not per:
        return []
    parts = " · ".join(f"{role} {us:,}" for role, us in per.items() if us >= 5)
    return [Row(label, f"CPU µs per request ({cpu['total_pct']:.0f} % of {cpu['cores']} cores busy)", parts)]


def _feed_rows(r: dict[str, Any]) -> list[Row]:
    feed, ref_a, ref_b = r.get("feed"), r.get("ref_ceiling"), r.get("ref_cache")
    rows = []
    for name, x in (("ref (a) ceiling: feed from memory", ref_a), ("ref (b) cache: feed with one MGET", ref_b)):
        if x:
            rows.append(Row(name, "req/s · p50 · p99", f"{x['rps']:,.0f} · {x['p50_ms']} ms · {x['p99_ms']} ms"))
            if x is ref_b:
                rows.extend(_cpu_row(x))
    if feed:
        rows.append(Row("GET /v1/feed, 64 conns, distinct users", "req/s · p50 · p99",
                        f"{feed['rps']:,.0f} · {feed['p50_ms']} ms · {feed['p99_ms']} ms"))
        if ref_b:
            q = ratio(feed["rps"], ref_b["rps"])
            rows.append(Row("", "× ref (b) req/s", f"{q}", "≥ 1.0", _met(q >= 1.0)))
        if ref_a:
            rows.append(Row("", "× ref (a) req/s", f"{ratio(feed['rps'], ref_a['rps'])}"))
        rows.append(Row("", "p99", f"{feed['p99_ms']} ms", "≤ 50 ms", _met(feed["p99_ms"] <= 50)))
        rows.append(Row("", "non-2xx · socket errors", f"{feed['non_2xx']} · {feed['socket_errors']}"))
        rows.extend(_cpu_row(feed))
    return rows


def _like_rows(r: dict[str, Any]) -> list[Row]:
    like, check = r.get("like"), r.get("like_counts")
    if not like:
        return []
    rows = [
        Row("POST /v1/videos/{id}/like, 64 conns", "req/s", f"{like['rps']:,.0f}", "≥ 3,000",
            _met(like["rps"] >= 3000)),
        Row("", "p50 · p99", f"{like['p50_ms']} ms · {like['p99_ms']} ms", "p99 ≤ 50 ms", _met(like["p99_ms"] <= 50)),
        Row("", "non-2xx · socket errors", f"{like['non_2xx']} · {like['socket_errors']}"),
        *_cpu_row(like),
    ]
    if check:
        rows.append(Row("", "counts exact (sent · acked · stored · stats sum)",
                        f"{check['sent']} · {check['acknowledged']} · {check['stored_distinct_likes']} · "
                        f"{check['stats_sum']}", "exact", _met(check["exact"])))
        if "settled_after_s" in check:
            drained = f"{check['settled_after_s']} s" + ("" if check.get("settled", True) else " (timed out: still applying)")
            rows.append(Row("", "applied and flushed after the run ended", drained))
    return rows


def _mixed_rows(r: dict[str, Any]) -> list[Row]:
    mixed = r.get("mixed")
    if not mixed:
        return []
    rows = [Row("mixed 1000 feed : 1 upload-url : 10 likes", "total req/s", f"{mixed['rps']:,.0f}")]
    for name, e in sorted(mixed["endpoints"].items()):
        rows.append(Row("", f"{name}: req/s · p50 · p99", f"{e['rps']:,.1f} · {e['p50_ms']} ms · {e['p99_ms']} ms"))
    return rows


def _openloop_rows(r: dict[str, Any]) -> list[Row]:
    """Open-loop runs at shares of the closed-loop maximum: corrected p50 · p99 · p99.9 per rate."""
    ol = r.get("openloop")
    if not ol:
        return []
    rows = []
    for kind in ("feed", "like", "mixed"):
        for run in ol.get(kind, []):
            graded = kind in ("feed", "like") and run["share"] == 0.5
            ok = run["p99_ms"] <= 50 and run["p999_ms"] <= 150
            rows.append(Row(f"open loop {kind} (vegeta, from intended send)" if run is ol[kind][0] else "",
                            f"{run['share']:.0%} of max ({run['offered_rps']:,.0f}/s): p50 · p99 · p99.9",
                            f"{run['p50_ms']} · {run['p99_ms']} · {run['p999_ms']} ms ({run['ok']}/{run['sent']} ok)",
                            "p99 ≤ 50, p99.9 ≤ 150 ms" if graded else "", _met(ok) if graded else ""))
            for name, e in run.get("endpoints", {}).items():
                rows.append(Row("", f"  {name}: p50 · p99 · p99.9", f"{e['p50_ms']} · {e['p99_ms']} · {e['p999_ms']} ms"))
            sched = run.get("sched")
            if sched:
                rows.append(Row("", "  CPU ms/s by role · run-queue wait ms/s · CPU pressure (some)",
                                " ".join(f"{k} {v}" for k, v in sched["cpu_ms_per_s"].items()) + " · "
                                + " ".join(f"{k} {v}" for k, v in sched["runqueue_wait_ms_per_s"].items())
                                + f" · {sched['cpu_pressure_some_pct']} %"))
            for stage in run.get("stages", []):
                rows.append(Row("", f"  {stage['name']}: n · p50 · p99 · p99.9 (bucket bounds) · over 50 ms",
                                f"{stage['n']} · ≤{stage['p50_ms']} · ≤{stage['p99_ms']} · ≤{stage['p999_ms']} ms · "
                                f"{stage['over_50ms']}"))
    check = ol.get("like_counts")
    if check:
        rows.append(Row("", "counts exact after open-loop likes (sent · acked · stored · stats sum)",
                        f"{check['sent']} · {check['acknowledged']} · {check['stored_distinct_likes']} · "
                        f"{check['stats_sum']}", "exact", _met(check["exact"])))
    return rows


def _upload_rows(r: dict[str, Any]) -> list[Row]:
    up = r.get("upload")
    if not up:
        return []
    return [Row("upload → ready, 5 s 720p clip", "p50 (bare ffmpeg p50)",
                f"{up['upload_to_ready_p50_s']} s ({up['bare_ffmpeg_p50_s']} s)", "≤ bare + 1 s",
                _met(up["target_met"]))]


def _watch_rows(r: dict[str, Any]) -> list[Row]:
    """The watch page in Chromium: first frame per link and preload, failures, stalls, first card."""
    w = r.get("watch")
    if not w:
        return []
    rows = []
    for run in w["runs"]:
        ahead = run.get("ahead", "auto")
        page = run.get("page", "abr")
        # the page's default
        graded = run["link"] == "3g" and run["preload"] > 0 and ahead == "metadata" and page == "abr"
        p95 = run["first_frame_p95_ms"]
        how = f"preload {run['preload']} {ahead}" if run["preload"] else "no preload"
        how += {"abr": "", "main": ", page before renditions", "allposters": ", every poster at once"}.get(page, page)
        low = f" · {run['cards_low']} low" if "cards_low" in run else ""
        rows.append(Row("watch page: first frame" if not rows else "",
                        f"{run['link']}, {how}: p50 · p95 · max · failures · stalls" + (" · low" if low else ""),
                        f"{run['first_frame_p50_ms']} · {p95} · {run['first_frame_max_ms']} ms · "
                        f"{run['failures']}/{run['cards']} · {run['stalls']}{low}",
                        "p95 < 500 ms, 0 failures" if graded else "",
                        _met(p95 is not None and p95 < 500 and run["failures"] == 0) if graded else ""))
    for run in w["runs"]:
        if run["preload"] > 0 and run.get("ahead", "auto") == "metadata" and run.get("page", "abr") == "abr":
            first = run.get("signed_in_to_first_card_ms") or run["sign_in_to_first_card_ms"]
            rows.append(Row("" if any(r.scenario == "watch page: first card" for r in rows) else "watch page: first card",
                            f"{run['link']}: signed in → first card (click → card; feed request)",
                            f"{first} ms ({run['sign_in_to_first_card_ms']}; "
                            + (f"page in the login's {run['login_ms']} ms)" if run.get("first_page_with_login")
                               else f"{run['first_page_request_ms']} ms)"),
                            "< 200 ms", _met(first < 200)))
    return rows


def _growth_rows(r: dict[str, Any]) -> list[Row]:
    growth = r.get("growth")
    if not growth:
        return []
    rows = []
    for size, g in growth["points"].items():
        rows.append(Row("feed as the corpus grows" if not rows else "", f"{size} videos: req/s · p50 · p99",
                        f"{g['rps']:,.0f} · {g['p50_ms']} ms · {g['p99_ms']} ms"))
        if size != "100k":  # the 100k point is the feed run: its CPU row is there
            rows.extend(Row("", f"{size} videos: {cpu.figure}", cpu.value) for cpu in _cpu_row(g))
    if "p50_spread" in growth:
        rows.append(Row("", "p50 · p99 spread (max/min − 1)", f"{growth['p50_spread']:.0%} · {growth['p99_spread']:.0%}",
                        "≤ 20 %", _met(growth["p50_spread"] <= 0.2 and growth["p99_spread"] <= 0.2)))
    return rows


def _actor_figure(name: str, v: Any) -> Row:
    """One figure of ``bench/actors_bench.py`` ({value, unit, target, met, ...}), or any value as JSON."""
    if isinstance(v, dict) and "value" in v:
        value = f"{v['value']:,}" if isinstance(v["value"], (int, float)) else str(v["value"])
        unit = v.get("unit", "")
        target = v.get("target")
        return Row("", name, f"{value} {unit}".strip(), "" if target is None else f"{target:,} {unit}".strip(),
                   _met(v.get("met")))
    return Row("", name, v if isinstance(v, str) else json.dumps(v))


def _actor_rows(r: dict[str, Any]) -> list[Row]:
    actors = r.get("actors")
    if actors is None:
        return []
    if isinstance(actors, dict) and "skipped" in actors:
        return [Row("actor scenarios", "", actors["skipped"])]
    rows = [_actor_figure(k, v) for k, v in actors.items()]
    if rows:
        rows[0] = replace(rows[0], scenario="actor scenarios (bench/actors_bench.py)")
    return rows


def rows_of(results: dict[str, Any]) -> list[Row]:
    """Every figure of a run, in the issue's order, with targets and ratios where they apply."""
    return [*_feed_rows(results), *_like_rows(results), *_mixed_rows(results), *_openloop_rows(results),
            *_upload_rows(results),
            *_growth_rows(results), *_watch_rows(results), *_actor_rows(results)]


def format_table(rows: Iterable[Row], markdown: bool = False) -> str:
    """Rows as an aligned text table, or as a Markdown table."""
    header = Row("scenario", "figure", "value", "target", "verdict")
    rows = [header, *rows]
    cols = [[r.scenario, r.figure, r.value, r.target, r.verdict] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(c) + " |" for c in cols]
        lines.insert(1, "|" + "---|" * 5)
        return "\n".join(lines)
    widths = [max(len(c[i]) for c in cols) for i in range(5)]
    return "\n".join("  ".join(c[i].ljust(widths[i]) for i in range(5)).rstrip() for c in cols)


def result_path(now: datetime | None = None, directory: Path = RESULTS_DIR) -> Path:
    """``bench/results/<UTC date-time>.json``."""
    now = now or datetime.now(timezone.utc)
    return directory / f"{now.strftime('%Y-%m-%dT%H-%M-%SZ')}.json"


def write_json(results: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")
    return path
