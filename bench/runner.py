"""One bench run: seed, start the servers, run the scenarios in order, collect every figure.

Order (so no server is loaded by another's idle work and Redis holds the right corpus at each step):
reference servers on the 100k corpus → clipstream on a 10k-video Redis (growth point) → the
100k corpus (feed, likes, mixed; growth point) → open-loop feed, likes and mixed at 25/50/75 % of
those closed-loop maxima (vegeta) → 900k more Redis-only cards (growth point 1M) →
upload → ready → the taste scenario (its own catalogue in a Redis holding only it, a fresh
clipstream) → the actor scenarios, if the module exists.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import os
import platform
import random
import resource
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

from clipstream.bench import scenarios
from clipstream.bench.cpu import CpuWindow
from clipstream.bench.profile import record, with_env
from clipstream.bench.seed import (CorpusShape, forget_feeds, mint_tokens, seed_cards, seed_corpus, seed_extra_cards,
                                   seed_like_targets)
from clipstream.bench.system import CACHE_PORT, CEILING_PORT, clipstream_server, ref_server, running

__all__ = ["ALL_SCENARIOS", "DEFAULT_SCENARIOS", "machine", "run_bench"]

ALL_SCENARIOS = ("refs", "feed", "like", "mixed", "openloop", "growth", "upload", "taste", "watch", "actors")
#: what a bare `clipstream bench` runs: all but `watch`, which takes ~20 min of browser swiping on
#: its own and runs when named (`--scenarios watch`)
DEFAULT_SCENARIOS = tuple(s for s in ALL_SCENARIOS if s != "watch")
LIKE_TARGETS = 2_000
#: users that drive one wrk scenario: 4 per connection. Each scenario that serves feeds gets its own
#: slice of the corpus's users, with their feed history cleared first: a page's cost grows with
#: what the user was served before (the unserved candidates are found past the served ones), so
#: scenarios sharing users, or runs drawing users with longer histories, measured the history,
#: not the system (the growth points came later in the run than the feed point, with ~1,000 more
#: videos served per user each).
ACTIVE_USERS = 4 * scenarios.CONNECTIONS
#: the scenarios with their own users, in slice order
SLICES = ("growth-10k", "feed", "like", "mixed", "growth-1M", "open-feed", "open-mixed")
GROWTH_EXTRA = 900_000


class Progress:
    """Timestamped progress lines (a run takes minutes; the operator sees where it is)."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo, self.started = echo, time.monotonic()

    def __call__(self, message: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:6.1f}s] {message}")


def machine() -> dict[str, Any]:
    """Cores, RAM, CPU model and the commit: what a reader needs to compare runs."""
    info: dict[str, Any] = {"cores": os.cpu_count(), "python": platform.python_version()}
    with open("/proc/cpuinfo") as f:
        info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        info["ram_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent)
    info["commit"] = out.stdout.strip()
    return info


async def _zrevrange_calls(redis: Any) -> int:
    """Redis's count of ZREVRANGE calls so far: the feed shards' candidate-pool refreshes make two each."""
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_zrevrange", {}).get("calls", 0))


def _spread(values: Sequence[float]) -> float:
    return max(values) / min(values) - 1 if values and min(values) > 0 else 0.0


async def _actors(quick: bool) -> dict[str, Any]:
    try:
        module = importlib.import_module("clipstream.bench.actors_bench")
    except ModuleNotFoundError:
        return {"skipped": "bench/actors_bench.py not present"}
    return await module.run(quick)


async def _growth_point(name: str, url: str, load: "scenarios.Load", seconds: float, work: Path) -> dict[str, Any]:
    """A growth point: warmed like the feed point, then measured with the CPU shares of every
    process (which one a slower point spent its time in)."""
    await scenarios.warm_feed(url, load)
    run, cpu = await _profiled(name, scenarios.feed(url, load, warm=False), "", seconds, work, None)
    return {**run.as_dict(), "cpu": cpu}


async def _open_loop(results: dict[str, Any], url: str, loads: dict[str, "scenarios.Load"],
                     slices: dict[str, list[int]], cql: Any, seconds: float, quick: bool,
                     progress: Progress) -> dict[str, Any]:
    """Feed, like and mixed traffic at fixed shares of the closed-loop maximum this run measured
    (:mod:`clipstream.bench.openloop`); likes get pairs of their own and a second count check."""
    from clipstream.bench import openloop

    work = loads["feed"].workdir
    out: dict[str, Any] = {"rates": list(openloop.RATES), "seconds": seconds, "tool": "vegeta"}
    feed_tokens = loads["open-feed"].tokens_file.read_text().split()
    mixed_tokens = loads["open-mixed"].tokens_file.read_text().split()
    corpus_videos = loads["feed"].corpus_videos_file.read_text().split()
    like_load = loads["like"]
    like_tokens = like_load.tokens_file.read_text().split()
    like_videos = like_load.like_videos_file.read_text().split() if like_load.like_videos_file.exists() else []
    next_pair = 2 * results["like"]["sent"] + 10_000 if "like" in results else 0
    like_sent = like_ok = 0
    for kind in ("feed", "like", "mixed"):
        closed = results.get(kind)
        if not closed or (kind == "like" and not like_videos):
            continue
        if kind != "like":
            await scenarios.warm_feed(url, loads[f"open-{kind}"])
            await asyncio.sleep(2.5)  # the warm-up's stage timings reach /metrics before the first run's start
        runs = []
        for share in openloop.RATES:
            rate = closed["rps"] * share
            if kind == "feed":
                targets = openloop.feed_targets(feed_tokens, rate, seconds)
            elif kind == "like":
                targets = openloop.like_targets(like_tokens, like_videos, next_pair, rate, seconds)
                next_pair += len(targets)
            else:
                targets = openloop.mixed_targets(mixed_tokens, corpus_videos, rate, seconds)
            before = await openloop.scrape_stages(url)
            sched_before, t0 = await asyncio.to_thread(openloop.sched_snapshot), time.monotonic()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            run = await openloop.run_open_loop(url, targets, rate, seconds, work, f"{kind}-{share}")
            sched = openloop.sched_figures(sched_before, await asyncio.to_thread(openloop.sched_snapshot),
                                           time.monotonic() - t0)
            # vegeta starts and ends inside the window, so /proc never shows it: its rusage does
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            sched["cpu_ms_per_s"]["vegeta"] = round(1000 * (used.ru_utime + used.ru_stime - children.ru_utime
                                                            - children.ru_stime) / sched["seconds"])
            if kind == "like":
                like_sent, like_ok = like_sent + run.sent, like_ok + run.ok
            await asyncio.sleep(2.5)  # the shards' stats reach /metrics within ~2 s (1 s push, 1 s cache)
            stages = openloop.stage_figures(before, await openloop.scrape_stages(url))
            runs.append({"share": share, **run.as_dict(), "stages": stages, "sched": sched})
            progress(f"open loop {kind} at {share:.0%} ({rate:,.0f}/s): p50 {run.overall['p50_ms']} ms, "
                     f"p99 {run.overall['p99_ms']} ms, p99.9 {run.overall['p999_ms']} ms, "
                     f"{run.ok}/{run.sent} ok, client lag p99 {run.send_lag_p99_ms} ms; CPU pressure "
                     f"{sched['cpu_pressure_some_pct']} %, run-queue wait ms/s {sched['runqueue_wait_ms_per_s']}")
        out[kind] = runs
    if like_sent and "like_counts" in results:
        closed = results["like_counts"]
        progress("open loop: waiting for the likes' flush")
        out["like_counts"] = await scenarios.count_check(
            cql, slices["like"], [int(v) for v in like_videos],
            scenarios.Sent(sent=closed["sent"] + like_sent, ok=closed["acknowledged"] + like_ok),
            settle_timeout=60.0 if quick else 150.0)
        progress(f"open loop like counts (closed and open runs together): {out['like_counts']}")
    return out


async def _profiled(name: str, scenario: Awaitable[Any], node_name: str, seconds: float, workdir: Path,
                    profiles: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """Run a scenario, with the CPU shares of every process during it (and py-spy sampling every
    process of the system meanwhile when asked); returns the result and the shares."""
    window = CpuWindow(seconds)
    if profiles is None:
        result, _ = await asyncio.gather(scenario, window.run())
    else:
        pids = with_env(f"CLIPSTREAM_ACTORS_NODE_NAME={node_name}")
        outdir = workdir / f"profile-{name}"
        outdir.mkdir(exist_ok=True)
        result, profiles[name], _ = await asyncio.gather(scenario, record(pids, seconds, outdir), window.run())
    return result, window.finish(result.rps)


async def run_bench(quick: bool, wanted: Sequence[str], echo: Callable[[str], None],
                    profile: bool = False, logs: Path | None = None,
                    watch_runs: Sequence[tuple[str, int, str, str]] = ()) -> dict[str, Any]:
    """Run the chosen scenarios; returns every figure (the caller prints and writes them).

    The servers' logs go to ``logs`` when given (kept), else to the run's temporary directory.
    ``watch_runs`` (link, cards preloaded, how much, page variant) narrows the watch scenario to those
    runs."""
    from clipstream.bench.system import bench_env
    from clipstream.config.settings import get_settings
    from clipstream.http.security import Tokens
    from clipstream.storage.cache import connect_redis
    from clipstream.storage.cql import apply_migrations, connect_cql

    progress = Progress(echo)
    profiles: dict[str, Any] | None = {} if profile else None
    settings = get_settings()
    env = bench_env()
    workers = settings.http.workers
    seconds, warmup = (5.0, 3.0) if quick else (15.0, 8.0)
    results: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": quick,
        "machine": machine(), "api_workers": workers, "wrk": {"connections": scenarios.CONNECTIONS,
        "seconds": seconds, "warmup_seconds": warmup}, "keyspace": settings.cql.keyspace, "redis": settings.redis.url,
    }  # fmt: skip
    progress(f"keyspace {settings.cql.keyspace}, redis {settings.redis.url}, {workers} API workers, "
             f"wrk {seconds:g} s runs")
    await asyncio.to_thread(apply_migrations, settings.cql)
    cql = await asyncio.to_thread(connect_cql, settings.cql, settings.cql.keyspace)
    redis = connect_redis(settings.redis)
    try:
        if set(wanted) - {"watch", "actors"}:  # the corpus and taste rows point at it; the watch seeds its own
            await _seed_media(settings)
        if set(wanted) - {"taste", "watch", "actors"}:
            await _corpus_scenarios(results, cql, redis, settings, env, wanted, seconds, warmup, quick, progress,
                                    profiles, logs)
        if "taste" in wanted:
            results["taste"] = await _taste(cql, redis, settings, env, quick, progress, logs)
        if "watch" in wanted:
            results["watch"] = await _watch(settings, env, quick, progress, logs, watch_runs)
        if "actors" in wanted:
            progress("actor scenarios")
            results["actors"] = await _actors(quick)
    finally:
        await redis.aclose()
        cql.close()
    if profiles is not None:
        results["profiles"] = profiles
    results["elapsed_s"] = round(time.monotonic() - progress.started, 1)
    return results


async def _taste(cql: Any, redis: Any, settings: Any, env: dict[str, str], quick: bool, progress: Progress,
                 logs: Path | None) -> dict[str, Any]:
    """The taste scenario (:mod:`clipstream.bench.taste`) against a clipstream started for it."""
    from clipstream.bench import taste
    from clipstream.http.security import Tokens

    shape = taste.Shape(videos=5_000, creators=150, users=60, pages=20, uploads=3, probe_users=10) if quick \
        else taste.Shape()
    world = taste.make_world(shape)
    cat = await taste.seed_taste(cql, redis, world, progress)
    issuer = Tokens(settings.http.jwt_secret, 6 * 3600)
    tokens = [issuer.issue(u, f"taste{u}") for u in cat.user_ids]
    with tempfile.TemporaryDirectory(prefix="cs-bench-taste-") as tmp:
        logdir = logs or Path(tmp)
        logdir.mkdir(parents=True, exist_ok=True)
        progress("taste: starting clipstream on the catalogue")
        async with running(clipstream_server(logdir), env, "/health") as system:
            await asyncio.sleep(2)  # the feed shards' candidate pools refresh every second
            figures = await taste.run_taste(system.url, world, cat, tokens, progress)
    late, shift = figures["pages_6_20"], figures["shift"]
    progress(f"taste: pages 6-20 expected like rate {late['system']:.3f} (most liked {late['most_liked']:.3f}, "
             f"oracle {late['oracle']:.3f}): lift {late['lift_over_most_liked']}x, {late['share_of_oracle']:.0%} "
             f"of the oracle; recovery {shift['recovery_pages']} pages; coverage {figures['coverage']['share']:.0%}; "
             f"real time {figures['real_time']['share']} (with read_after {figures['real_time']['with_read_after']['share']}); new uploads min {figures['new_uploads']['min']}")
    return figures


async def _seed_media(settings: Any) -> None:
    """The shared clip the seeded corpus's rows point at, so that its videos play (in a browser too)."""
    from clipstream.storage.objects import ObjectStore
    from clipstream.workers.seed import seed_media

    await seed_media(ObjectStore.from_settings(settings.minio), settings.media)


async def _watch(settings: Any, env: dict[str, str], quick: bool, progress: Progress,
                 logs: Path | None, only: Sequence[tuple[str, int, str, str]] = ()) -> dict[str, Any]:
    """The watch scenario (:mod:`clipstream.bench.watch`): its own keyspace and Redis database, a
    fresh clipstream on them, real clips seeded and played in headless Chromium."""
    import msgspec
    from redis.asyncio import Redis

    from clipstream.bench import watch
    from clipstream.storage.cql import apply_migrations, connect_cql
    from clipstream.storage.objects import ObjectStore

    cql_settings = msgspec.structs.replace(settings.cql, keyspace=watch.WATCH_ENV["CLIPSTREAM_CQL_KEYSPACE"])
    await asyncio.to_thread(apply_migrations, cql_settings)
    cql = await asyncio.to_thread(connect_cql, cql_settings, cql_settings.keyspace)
    redis = Redis.from_url(watch.WATCH_ENV["CLIPSTREAM_REDIS_URL"])
    try:
        # only this run's videos: the cache keeper rebuilds its lists from every ready video
        await asyncio.to_thread(cql.execute_sync, "TRUNCATE videos")
        await redis.flushdb()
        objects = ObjectStore.from_settings(settings.minio)
        with tempfile.TemporaryDirectory(prefix="cs-bench-watch-") as tmp:
            logdir = logs or Path(tmp)
            logdir.mkdir(parents=True, exist_ok=True)
            progress("watch: starting clipstream on its own keyspace")
            async with running(clipstream_server(logdir), {**env, **watch.WATCH_ENV}, "/health") as system:
                seed = functools.partial(watch.seed_corpus, system.url, cql, redis, objects, settings.media,
                                         progress=progress)
                return await watch.run_watch(system.url, progress, seed, swipes=12 if quick else 32,
                                             links=("loopback", "3g") if quick else tuple(watch.LINKS), only=only)
    finally:
        await redis.aclose()
        cql.close()


async def _corpus_scenarios(results: dict[str, Any], cql: Any, redis: Any, settings: Any, env: dict[str, str],
                            wanted: Sequence[str], seconds: float, warmup: float, quick: bool, progress: Progress,
                            profiles: dict[str, Any] | None, logs: Path | None) -> None:
    """The scenarios on the 100k corpus: references, feed, like, mixed, growth, upload."""
    from clipstream.http.security import Tokens

    workers = settings.http.workers
    corpus = await seed_corpus(cql, redis, CorpusShape(), progress)
    start = random.randrange(0, len(corpus.user_ids) - ACTIVE_USERS * len(SLICES))
    slices = {name: corpus.user_ids[start + i * ACTIVE_USERS : start + (i + 1) * ACTIVE_USERS]
              for i, name in enumerate(SLICES)}
    await forget_feeds(cql, [u for users in slices.values() for u in users])
    results["active_users"] = {"count": ACTIVE_USERS, "first_id": {n: u[0] for n, u in slices.items()},
                               "feed_history": "cleared before the run"}
    issuer = Tokens(settings.http.jwt_secret, 6 * 3600)
    with tempfile.TemporaryDirectory(prefix="cs-bench-") as tmp:
        work = Path(tmp)
        (work / "corpus_videos.txt").write_text("\n".join(map(str, corpus.video_ids)) + "\n")
        loads: dict[str, scenarios.Load] = {}
        for name, users in slices.items():
            (work / f"tokens-{name}.txt").write_text("\n".join(mint_tokens(issuer, users)) + "\n")
            loads[name] = scenarios.Load(work / f"tokens-{name}.txt", work / "like_videos.txt",
                                         work / "corpus_videos.txt", seconds, warmup, work)
        load = loads["feed"]
        logdir = logs or Path(tmp)
        logdir.mkdir(parents=True, exist_ok=True)
        if "refs" in wanted:
            for name, port, key in (("ceiling", CEILING_PORT, "ref_ceiling"), ("cache", CACHE_PORT, "ref_cache")):
                progress(f"reference ({name}): starting, {workers} workers")
                async with running(ref_server(name, port, workers, logdir), env, "/v1/feed") as ref:
                    await scenarios.warm_feed(ref.url, load)
                    run, cpu = await _profiled(name, scenarios.feed(ref.url, load, warm=False), "", seconds,
                                               work, None)
                    results[key] = {**run.as_dict(), "cpu": cpu}
                progress(f"reference ({name}): {results[key]['rps']:,.0f} req/s, p99 {results[key]['p99_ms']} ms")
        growth: dict[str, Any] = {}
        if "growth" in wanted:
            await redis.flushdb(asynchronous=True)
            await seed_cards(redis, corpus, corpus.video_ids[:10_000])
        progress("clipstream: starting (clipstream run)")
        async with running(clipstream_server(logdir), env, "/health") as system:
            results["clipstream_pids"] = system.pids()
            if "growth" in wanted:
                await asyncio.sleep(2)  # the feed shards' candidate pools refresh every second
                growth["10k"] = await _growth_point("growth-10k", system.url, loads["growth-10k"], seconds, work)
                progress(f"growth 10k: {growth['10k']['rps']:,.0f} req/s, p99 {growth['10k']['p99_ms']} ms")
                await seed_cards(redis, corpus, corpus.video_ids[10_000:])
                await asyncio.sleep(2)
            if "feed" in wanted or "growth" in wanted:
                node = env["CLIPSTREAM_ACTORS_NODE_NAME"]
                await scenarios.warm_feed(system.url, load)
                calls_before, t0 = await _zrevrange_calls(redis), time.monotonic()
                run, cpu = await _profiled("feed", scenarios.feed(system.url, load, warm=False), node,
                                           seconds, work, profiles)
                results["feed"] = {**run.as_dict(), "cpu": cpu}
                growth["100k"] = results["feed"]
                # Evidence for BENCHMARKS.md: a pool refresh is meant to happen once a second per shard.
                results["feed"]["pool_refreshes_per_s"] = round(
                    (await _zrevrange_calls(redis) - calls_before) / 2 / (time.monotonic() - t0), 1)
                progress(f"feed: {results['feed']['rps']:,.0f} req/s, p50 {results['feed']['p50_ms']} ms, "
                         f"p99 {results['feed']['p99_ms']} ms")
            if "like" in wanted:
                targets = await seed_like_targets(cql, redis, corpus, LIKE_TARGETS)
                load.like_videos_file.write_text("\n".join(map(str, targets)) + "\n")
                run, cpu = await _profiled("like", scenarios.likes(system.url, loads["like"]),
                                           env["CLIPSTREAM_ACTORS_NODE_NAME"], seconds, work, profiles)
                results["like"] = {**run.as_dict(), "cpu": cpu}
                progress(f"like: {run.rps:,.0f} req/s, p99 {run.p99_ms} ms; waiting for the flush")
                results["like_counts"] = await scenarios.count_check(
                    cql, slices["like"], targets, run, settle_timeout=60.0 if quick else 150.0)
                progress(f"like counts: {results['like_counts']}")
            if "mixed" in wanted:
                await scenarios.warm_feed(system.url, loads["mixed"])  # as warm as the feed scenario
                run, cpu = await _profiled("mixed", scenarios.mixed(system.url, loads["mixed"]), "", seconds,
                                           work, None)
                results["mixed"] = {**run.as_dict(), "cpu": cpu}
                progress(f"mixed: {results['mixed']['rps']:,.0f} req/s")
            if "openloop" in wanted:
                results["openloop"] = await _open_loop(results, system.url, loads, slices, cql, seconds, quick,
                                                       progress)
            if "growth" in wanted:
                await seed_extra_cards(redis, corpus, GROWTH_EXTRA, progress)
                await asyncio.sleep(2)
                growth["1M"] = await _growth_point("growth-1M", system.url, loads["growth-1M"], seconds, work)
                progress(f"growth 1M: {growth['1M']['rps']:,.0f} req/s, p99 {growth['1M']['p99_ms']} ms")
                results["growth"] = {
                    "points": growth,
                    "p50_spread": _spread([g["p50_ms"] for g in growth.values()]),
                    "p99_spread": _spread([g["p99_ms"] for g in growth.values()]),
                    "seeded": "10k/100k: CQL rows + Redis cards, counts, candidate lists; 1M: the 100k "
                              "plus 900k Redis-only cards, counts and candidate entries (lists trimmed "
                              "to their 20k cap as the system trims them)",
                }  # fmt: skip
            if "upload" in wanted:
                progress("upload → ready: generating a 5 s 720p clip")
                results["upload"] = await scenarios.upload_to_ready(system.url, 1 if quick else 3, progress)
        progress("clipstream: stopped")
