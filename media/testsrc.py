"""Generate real media files with ffmpeg's synthetic sources, for tests, demo data and benchmarks."""

from __future__ import annotations

import os

from clipstream.media._proc import run_tool
from clipstream.media.errors import MediaFailure

__all__ = ["make_test_audio", "make_test_image", "make_test_video"]

_TIMEOUT = 120.0

# Fastest encoder settings per container: these files exist to be decoded, not to look good.
_VIDEO_CODECS: dict[str, list[str]] = {
    "mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    "mov": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    "mkv": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    "webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-b:v", "1M"],
}
_AUDIO_CODECS = {"mp4": "aac", "mov": "aac", "mkv": "aac", "webm": "libopus"}
_MUXERS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm"}


async def _ffmpeg(args: list[str], ffmpeg: str) -> None:
    res = await run_tool([ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", *args], _TIMEOUT)
    if res.returncode != 0:
        raise MediaFailure(f"ffmpeg could not generate test media: {res.stderr[-500:]}")


async def make_test_video(
    path: str | os.PathLike[str],
    seconds: float = 5.0,
    width: int = 720,
    height: int = 1280,
    fmt: str = "mp4",
    audio: bool = True,
    *,
    fps: int = 30,
    audio_seconds: float | None = None,
    ffmpeg: str = "ffmpeg",
) -> None:
    """Write a moving test pattern (testsrc2) with a sine tone as an mp4, mov, mkv or webm file.

    ``audio_seconds`` makes the tone last longer or shorter than the picture, as in real uploads.
    """
    if fmt not in _MUXERS:
        raise ValueError(f"fmt must be one of {sorted(_MUXERS)}, not {fmt!r}")
    args = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={audio_seconds or seconds}"]
    args += _VIDEO_CODECS[fmt]
    args += ["-c:a", _AUDIO_CODECS[fmt]] if audio else ["-an"]
    await _ffmpeg([*args, "-f", _MUXERS[fmt], "file:" + os.fspath(path)], ffmpeg)


async def make_test_image(
    path: str | os.PathLike[str], width: int = 720, height: int = 1280, *, codec: str = "png", ffmpeg: str = "ffmpeg"
) -> None:
    """Write a single still picture (png or mjpeg), whatever the file name says."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}", "-frames:v", "1", "-c:v", codec]
    await _ffmpeg([*args, "-f", "image2", "-update", "1", "file:" + os.fspath(path)], ffmpeg)


async def make_test_audio(path: str | os.PathLike[str], seconds: float = 3.0, *, ffmpeg: str = "ffmpeg") -> None:
    """Write an AAC tone in an MP4 container: a well-formed file with no video track."""
    args = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"]
    await _ffmpeg([*args, "-f", "mp4", "file:" + os.fspath(path)], ffmpeg)
