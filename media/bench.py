"""Wrapper overhead benchmark: ``python -m clipstream.media.bench [--rounds N] [--seconds S]``.

Times, on one generated 720x1280 clip and interleaved round by round so that background load hits
every variant alike: the bare ffmpeg argv that :func:`transcode` runs, :func:`transcode` itself,
:func:`process_upload` (probe + validate + transcode + output check), and for reference a plain
one-output ffmpeg command and the two-invocation alternative (video, then a separate thumbnail run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from clipstream.config.settings import MediaSettings
from clipstream.media.pipeline import process_upload
from clipstream.media.probe import probe
from clipstream.media.testsrc import make_test_video
from clipstream.media.transcode import default_threads, ffmpeg_command, transcode

__all__ = ["main"]


def _bare(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


async def _timed(make: Callable[[], Awaitable[object]], overheads: list[float]) -> float:
    """Wall time of ``make()``; also records the part spent outside ffmpeg, which load barely moves."""
    started = time.perf_counter()
    result = await make()
    total = time.perf_counter() - started
    output = getattr(result, "output", result)
    overheads.append(total - output.elapsed)  # type: ignore[attr-defined]
    return total


async def _run(rounds: int, seconds: float) -> None:
    settings = MediaSettings()
    with tempfile.TemporaryDirectory(prefix="cs-media-bench-") as tmp:
        work = Path(tmp)
        src = work / "src.mp4"
        await make_test_video(src, seconds=seconds)
        probed = await probe(src, settings)
        size = os.stat(src).st_size
        threads = default_threads(settings)
        mp4, jpg = str(work / "o.mp4"), str(work / "o.jpg")
        ours = ffmpeg_command(src, mp4, jpg, probed, settings, threads=threads)
        common = [settings.ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(src)]
        video_only = [
            *common, "-vf", "scale=720:1280,format=yuv420p", "-c:v", "libx264", "-preset", settings.preset,
            "-crf", "23", "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", mp4,
        ]  # fmt: skip
        thumb_only = [*common, "-ss", "1", "-frames:v", "1", "-vf", "scale=540:960", "-q:v", "3", "-update", "1", jpg]
        over: dict[str, list[float]] = {"transcode()": [], "process_upload()": []}
        variants: dict[str, Callable[[], Awaitable[float]]] = {
            f"bare ffmpeg, transcode()'s argv (threads={threads})": lambda: asyncio.to_thread(_bare, ours),
            "transcode()": lambda: _timed(lambda: transcode(src, mp4, jpg, probed, settings), over["transcode()"]),
            "process_upload()": lambda: _timed(
                lambda: process_upload(src, work / "p", size, "mp4", settings), over["process_upload()"]
            ),
            "probe() alone": lambda: _timed_probe(src, settings),
            "bare ffmpeg, threads auto": lambda: asyncio.to_thread(
                _bare, [a if a != str(threads) or ours[i - 1] != "-threads" else "0" for i, a in enumerate(ours)]
            ),
            "bare ffmpeg, video only (no thumbnail)": lambda: asyncio.to_thread(_bare, video_only),
            "bare ffmpeg, video then thumbnail (2 runs)": lambda: asyncio.to_thread(
                lambda: _bare(video_only) + _bare(thumb_only)
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, run in variants.items():
                times[name].append(await run())
        print(f"{seconds:g} s 720x1280 clip, preset {settings.preset}, {rounds} rounds, {os.cpu_count()} cpus")
        for name, values in times.items():
            print(f"  {name:45s} median {statistics.median(values):.3f} s  min {min(values):.3f} s")
        for name, values in over.items():
            label = f"{name} time outside ffmpeg"
            print(f"  {label:45s} median {statistics.median(values):.3f} s  max {max(values):.3f} s")


async def _timed_probe(src: Path, settings: MediaSettings) -> float:
    started = time.perf_counter()
    await probe(src, settings)
    return time.perf_counter() - started


def main() -> None:
    """Run the benchmark from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(_run(args.rounds, args.seconds))


if __name__ == "__main__":
    main()
