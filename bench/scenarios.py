"""The scenarios of a bench run: each drives a running server and returns its figures as a dict."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from clipstream.bench.wrk import WrkResult, run_wrk
from clipstream.storage.cql import Cql

__all__ = ["Load", "Sent", "count_check", "feed", "likes", "mixed", "upload_to_ready", "warm_feed"]

CONNECTIONS = 64


@dataclass(frozen=True, slots=True)
class Load:
    """What the wrk scenarios need: data files, durations and a scratch directory."""

    tokens_file: Path
    like_videos_file: Path
    corpus_videos_file: Path
    seconds: float
    warmup: float
    workdir: Path


@dataclass(frozen=True, slots=True)
class Sent:
    """Requests sent and acknowledged (2xx) over one or more like runs: what the count check needs."""

    sent: int
    ok: int


def _feed_args(load: Load) -> list[str]:
    return [str(load.tokens_file), str(CONNECTIONS)]


async def warm_feed(url: str, load: Load) -> None:
    """The feed scenario for ``load.warmup`` seconds, not measured: entities active, pools loaded."""
    if load.warmup:
        await run_wrk(url, "feed", _feed_args(load), connections=CONNECTIONS, seconds=load.warmup,
                      workdir=load.workdir)


async def feed(url: str, load: Load, warm: bool = True) -> WrkResult:
    """``GET /v1/feed?limit=10``, 64 connections, distinct users following their cursors."""
    if warm:
        await warm_feed(url, load)
    return await run_wrk(url, "feed", _feed_args(load), connections=CONNECTIONS, seconds=load.seconds,
                         workdir=load.workdir)


async def likes(url: str, load: Load) -> WrkResult:
    """``POST /v1/videos/{id}/like``, 64 connections, each request a (user, video) pair not used before."""
    args = [str(load.tokens_file), str(load.like_videos_file), str(CONNECTIONS)]
    return await run_wrk(url, "like", args, connections=CONNECTIONS, seconds=load.seconds, workdir=load.workdir)


async def mixed(url: str, load: Load) -> WrkResult:
    """1000 feed reads : 1 upload-url : 10 likes of random corpus videos."""
    args = [str(load.tokens_file), str(load.corpus_videos_file), str(CONNECTIONS)]
    return await run_wrk(url, "mixed", args, connections=CONNECTIONS, seconds=load.seconds, workdir=load.workdir)


async def _stats(cql: Cql, video_ids: list[int]) -> dict[int, int]:
    rows = await cql.execute_many("SELECT id, likes FROM stats WHERE id = ?", [(v,) for v in video_ids])
    return {r[0].id: r[0].likes or 0 for r in rows if r}


async def _ledger(cql: Cql, user_ids: list[int], targets: set[int]) -> dict[int, int]:
    """Distinct likers per target video, from likes_by_user (the per-(user, video) like state)."""
    rows = await cql.execute_many("SELECT video_id FROM likes_by_user WHERE user_id = ?", [(u,) for u in user_ids])
    out: dict[int, int] = {}
    for result in rows:
        for r in result:
            if r.video_id in targets:
                out[r.video_id] = out.get(r.video_id, 0) + 1
    return out


async def count_check(cql: Cql, user_ids: list[int], targets: list[int], run: WrkResult | Sent,
                      settle_timeout: float = 60.0) -> dict[str, Any]:
    """After the like run: wait until the stored counts stop moving, then compare them per video.

    Every request of the run was a distinct (user, video) pair on videos that had no likes, so:
    acknowledged (200) <= stored distinct likes <= requests sent (the difference is requests in
    flight when wrk stopped, which the server may still have applied), and each video's ``stats``
    count must equal its distinct likers in ``likes_by_user``.
    """
    started = time.monotonic()
    previous: tuple[int, int] | None = None
    while True:
        counts, ledger = await asyncio.gather(_stats(cql, targets), _ledger(cql, user_ids, set(targets)))
        now = (sum(counts.values()), sum(ledger.values()))
        settled = now == previous and now[0] == now[1] and now[1] >= run.ok
        if settled or time.monotonic() - started > settle_timeout:
            break
        previous = now
        await asyncio.sleep(1.0)
    wrong = [v for v in targets if counts.get(v, 0) != ledger.get(v, 0)]
    stored = sum(ledger.values())
    return {
        "settled": settled, "settled_after_s": round(time.monotonic() - started, 1),
        "sent": run.sent, "acknowledged": run.ok, "stored_distinct_likes": stored,
        "stats_sum": sum(counts.values()), "videos": len(targets), "videos_with_wrong_count": len(wrong),
        "exact": not wrong and run.ok <= stored <= run.sent,
    }  # fmt: skip


def _bare_ffmpeg(src: Path, work: Path) -> float:
    """Wall time of the exact ffmpeg command clipstream's transcode runs, on its own."""
    from clipstream.config.settings import MediaSettings
    from clipstream.media.probe import probe
    from clipstream.media.transcode import default_threads, ffmpeg_command

    settings = MediaSettings()
    probed = asyncio.run(probe(src, settings))
    argv = ffmpeg_command(src, work / "o.mp4", work / "o.jpg", probed, settings, threads=default_threads(settings))
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return time.perf_counter() - started


async def upload_to_ready(url: str, rounds: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """A 5 s 720p clip: upload-url, PUT, poll until ready; against bare ffmpeg, interleaved per round."""
    from clipstream.cli.apiclient import ApiClient
    from clipstream.media.testsrc import make_test_video
    from clipstream.storage.ids import new_id

    with tempfile.TemporaryDirectory(prefix="cs-bench-upload-") as tmp:
        work = Path(tmp)
        clip = work / "clip.mp4"
        await make_test_video(clip, seconds=5.0, width=720, height=1280)
        client = await ApiClient(url).signup(f"benchup{new_id() % 10**9}")
        system, bare = [], []
        try:
            for i in range(rounds):
                started = time.perf_counter()
                vid = await client.upload(clip)
                video = await client.wait_processed(vid, timeout=120)
                if video["status"] != "ready":
                    raise RuntimeError(f"upload {vid} ended {video['status']}: {video.get('failure_reason')}")
                system.append(time.perf_counter() - started)
                bare.append(await asyncio.to_thread(_bare_ffmpeg, clip, work))
                progress(f"upload→ready round {i + 1}/{rounds}: {system[-1]:.2f} s, bare ffmpeg {bare[-1]:.2f} s")
        finally:
            await client.close()
    p50, bare50 = statistics.median(system), statistics.median(bare)
    return {"rounds": rounds, "upload_to_ready_p50_s": round(p50, 2), "bare_ffmpeg_p50_s": round(bare50, 2),
            "samples_s": [round(s, 2) for s in system], "bare_samples_s": [round(s, 2) for s in bare],
            "target_met": p50 <= bare50 + 1.0}
