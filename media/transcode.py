"""Transcode a probed upload to a streamable H.264/AAC MP4, a low rendition of it for slow links, and a
JPEG thumbnail, in one ffmpeg run (one decode of the upload feeds the three outputs)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence

import msgspec

from clipstream.config.settings import MediaSettings
from clipstream.media._proc import run_tool
from clipstream.media.errors import MediaFailure, MediaRejected
from clipstream.media.probe import PROBE_TIMEOUT, ProbeResult, demuxers_for, read_probe

__all__ = [
    "AUDIO_BITRATE",
    "CRF",
    "LOW_AUDIO_BITRATE",
    "MAX_FPS",
    "THUMBNAIL_WIDTH",
    "TranscodeResult",
    "default_threads",
    "default_timeout",
    "ffmpeg_command",
    "kbps",
    "low_size",
    "output_size",
    "thumbnail_size",
    "transcode",
]

CRF = 23
AUDIO_BITRATE = "128k"
#: the low rendition's audio: AAC-LC at 64 kbit/s stereo is still clean speech and music on a phone,
#: and a sixth of the rendition's ~390 kbit/s
LOW_AUDIO_BITRATE = "64k"
MAX_FPS = 60  # slow-motion phone footage (120/240 fps) would cost 2-4x the encode for no visible gain
THUMBNAIL_WIDTH = 540

# ffmpeg's words for a stream it cannot decode: the upload's fault, not ours, so no retry.
_INPUT_FAULTS = ("Invalid data found", "corrupt", "Error while decoding", "moov atom not found")


class TranscodeResult(msgspec.Struct, frozen=True, kw_only=True):
    """The files written and what they contain."""

    video_path: str
    thumbnail_path: str
    duration: float
    """seconds, as probed from the written MP4"""
    width: int
    height: int
    has_audio: bool
    video_size: int
    """bytes"""
    thumbnail_width: int
    thumbnail_height: int
    thumbnail_size: int
    """bytes"""
    low_path: str | None = None
    """the low rendition (None when ``low_max_height`` is 0)"""
    low_width: int = 0
    low_height: int = 0
    low_size: int = 0
    """bytes"""
    elapsed: float
    """wall-clock seconds of the ffmpeg run"""


def _even(n: int) -> int:
    return max(2, n - n % 2)


def output_size(display_width: int, display_height: int, max_long_side: int) -> tuple[int, int]:
    """Output frame size: aspect kept, long side ≤ ``max_long_side``, never upscaled, both even."""
    long_side = max(display_width, display_height)
    if long_side > max_long_side:
        # Integer floor: rounding up could upscale an odd dimension by a pixel.
        display_width = display_width * max_long_side // long_side
        display_height = display_height * max_long_side // long_side
    return _even(display_width), _even(display_height)


def low_size(width: int, height: int, settings: MediaSettings) -> tuple[int, int] | None:
    """The low rendition's frame size from the main one's (never larger), or None if it is not made."""
    if not settings.low_max_height:
        return None
    return output_size(width, height, settings.low_max_height)


def kbps(size_bytes: int, seconds: float) -> int:
    """Average bitrate of a file of ``size_bytes`` playing ``seconds``, kbit/s (0 if unknown)."""
    return round(size_bytes * 8 / seconds / 1000) if seconds > 0 else 0


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """Thumbnail size from the output size: width ≤ THUMBNAIL_WIDTH, aspect kept, never upscaled."""
    thumb_w = min(THUMBNAIL_WIDTH, width)
    return _even(thumb_w), _even(height * thumb_w // width)


def default_threads(settings: MediaSettings) -> int:
    """Encoder threads: the machine's cores shared among the process's concurrent transcodes."""
    return max(1, (os.cpu_count() or 1) // settings.workers)


def default_timeout(probe: ProbeResult) -> float:
    """A deadline that only a hung ffmpeg misses: a minute plus ten times the video's length."""
    return 60.0 + 10.0 * probe.duration


def ffmpeg_command(
    src: str | os.PathLike[str],
    out_mp4: str | os.PathLike[str],
    out_jpg: str | os.PathLike[str],
    probe: ProbeResult,
    settings: MediaSettings,
    *,
    threads: int,
    out_low: str | os.PathLike[str] | None = None,
) -> list[str]:
    """The ffmpeg argv that writes every output from a single decode of ``src`` (the low rendition
    only with ``out_low`` and a ``low_max_height``)."""
    width, height = output_size(probe.display_width, probe.display_height, settings.max_height)
    thumb_w, thumb_h = thumbnail_size(width, height)
    low = low_size(width, height, settings) if out_low is not None else None
    # The video track can end long before the audio; a time past its last frame yields no thumbnail.
    thumb_at = min(1.0, (probe.video_duration or probe.duration) / 2)
    fps = f"fps={MAX_FPS}," if probe.frame_rate and probe.frame_rate > MAX_FPS + 0.5 else ""
    # ffmpeg rotates the decoded frames itself (autorotate), so scaling targets the display size;
    # the thumbnail branch keeps the first frame at thumb_at and scales only that one.
    graph = (
        f"[0:v:0]{fps}scale={width}:{height},setsar=1,format=yuv420p,split={3 if low else 2}[v][t]{'[l]' if low else ''};"
        f"[t]setpts=PTS-STARTPTS,trim=start={thumb_at:.3f},trim=end_frame=1,scale={thumb_w}:{thumb_h}[thumb]"
    )
    if low:
        graph += f";[l]scale={low[0]}:{low[1]}[low]"

    def audio(bitrate: str) -> list[str]:
        if not probe.has_audio:
            # No silent track is invented: players handle video-only MP4 and it saves the bytes.
            return ["-an"]
        out = ["-map", "0:a:0", "-c:a", "aac", "-b:a", bitrate]
        if probe.audio_channels > 2:
            out += ["-ac", "2"]
        if probe.audio_sample_rate > 48000:
            out += ["-ar", "48000"]
        return out

    def h264(cap_kbps: int) -> list[str]:
        return [
            "-c:v", "libx264", "-preset", settings.preset, "-crf", str(CRF), "-profile:v", "high",
            # x264's VBV with a buffer of one second's bits: no second of the file is much above the
            # cap, so a link of the cap's speed plays it without waiting (a 2 s buffer measured 1.43
            # against 1.37 Mbit/s for the 1200k main rendition, BENCHMARKS.md)
            *(["-maxrate", f"{cap_kbps}k", "-bufsize", f"{cap_kbps}k"] if cap_kbps else []),
            "-threads", str(threads),
        ]  # fmt: skip

    # Both MP4s: no subtitle or data streams; no metadata (phone videos carry GPS position and
    # device data: never republish it); moov first (faststart), so a player starts from the head.
    mp4 = ["-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1", "-movflags", "+faststart",
           "-max_muxing_queue_size", "1024", "-f", "mp4"]  # fmt: skip
    # The low rendition keeps x264's default keyframe interval (one GOP for a short clip): a
    # faststart MP4 starts from its first keyframe whatever the interval, and the page never
    # switches renditions inside a clip, so shorter GOPs would only cost bits.
    low_out = ["-map", "[low]", *h264(settings.low_video_kbps), *audio(LOW_AUDIO_BITRATE), *mp4,
               "file:" + os.fspath(out_low)] if low and out_low is not None else []  # fmt: skip
    return [
        settings.ffmpeg,
        "-nostdin", "-hide_banner", "-v", "error", "-y",
        # Same input hardening as ffprobe: accepted demuxers only, local file only.
        "-format_whitelist", ",".join(demuxers_for(settings.format_set)),
        "-protocol_whitelist", "file",
        "-i", "file:" + os.fspath(src),
        "-filter_complex", graph,
        "-map", "[v]", *h264(settings.max_video_kbps), *audio(AUDIO_BITRATE), *mp4, "file:" + os.fspath(out_mp4),
        *low_out,
        "-map", "[thumb]", "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "3", "-update", "1",
        "-f", "image2", "file:" + os.fspath(out_jpg),
    ]  # fmt: skip


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


async def _written_h264(path: str, settings: MediaSettings, what: str = "") -> ProbeResult:
    """Probe an MP4 ffmpeg wrote: what was written is checked rather than the plan trusted, since a
    bad file must never be published. MediaFailure unless it is a readable MP4 of H.264."""
    of = f" for {what}" if what else ""
    try:
        written = await read_probe(path, msgspec.structs.replace(settings, formats="mp4"), timeout=PROBE_TIMEOUT)
    except MediaRejected as exc:
        raise MediaFailure(f"ffmpeg wrote an unreadable MP4{of}: {exc.reason}") from None
    if written.video_codec != "h264":
        raise MediaFailure(f"ffmpeg wrote {written.video_codec}{of}, not h264")
    return written


async def _first_frame(mp4: str, jpg: str, size: tuple[int, int], settings: MediaSettings) -> int:
    """Write the first frame of the transcoded ``mp4`` as the thumbnail; returns its size in bytes."""
    argv = [
        settings.ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y",
        "-i", "file:" + mp4,
        "-frames:v", "1", "-vf", f"scale={size[0]}:{size[1]}",
        "-c:v", "mjpeg", "-q:v", "3", "-update", "1", "-f", "image2", "file:" + jpg,
    ]  # fmt: skip
    res = await run_tool(argv, PROBE_TIMEOUT)
    size = _size(jpg)
    if res.returncode != 0 or not size:
        raise MediaFailure(f"ffmpeg wrote no thumbnail: {res.stderr[-500:]}")
    return size


async def transcode(
    src: str | os.PathLike[str],
    out_mp4: str | os.PathLike[str],
    out_jpg: str | os.PathLike[str],
    probe: ProbeResult,
    settings: MediaSettings,
    *,
    threads: int | None = None,
    timeout: float | None = None,
    out_low: str | os.PathLike[str] | None = None,
) -> TranscodeResult:
    """Write the feed MP4, its low rendition (if ``out_low`` is given and the settings make one) and
    the thumbnail; MediaRejected if the input cannot be decoded."""
    out_mp4, out_jpg = os.fspath(out_mp4), os.fspath(out_jpg)
    planned = output_size(probe.display_width, probe.display_height, settings.max_height)
    low_path = os.fspath(out_low) if out_low is not None and low_size(*planned, settings) else None
    argv: Sequence[str] = ffmpeg_command(
        src, out_mp4, out_jpg, probe, settings, threads=threads or default_threads(settings), out_low=low_path
    )
    done = False
    try:
        started = time.perf_counter()
        res = await run_tool(argv, default_timeout(probe) if timeout is None else timeout)
        elapsed = time.perf_counter() - started
        if res.returncode != 0:
            if any(marker in res.stderr for marker in _INPUT_FAULTS):
                raise MediaRejected("the video could not be decoded")
            raise MediaFailure(f"ffmpeg exited with status {res.returncode}: {res.stderr[-500:]}")
        video_size, thumb_size = _size(out_mp4), _size(out_jpg)
        if not video_size:
            raise MediaFailure(f"ffmpeg wrote no video: {res.stderr[-500:]}")
        if not thumb_size:
            # Only when the video track ended before the thumbnail time (e.g. WebM, which does not
            # state the track's length): fall back to the first frame of the small output.
            thumb_size = await _first_frame(out_mp4, out_jpg, thumbnail_size(*planned), settings)
        written = await _written_h264(out_mp4, settings)
        low_w = low_h = low_bytes = 0
        if low_path is not None:
            low_bytes = _size(low_path)
            if not low_bytes:
                raise MediaFailure(f"ffmpeg wrote no low rendition: {res.stderr[-500:]}")
            low = await _written_h264(low_path, settings, "the low rendition")
            low_w, low_h = low.width, low.height
        thumb_w, thumb_h = thumbnail_size(written.width, written.height)
        done = True
        return TranscodeResult(
            video_path=out_mp4,
            thumbnail_path=out_jpg,
            duration=written.duration,
            width=written.width,
            height=written.height,
            has_audio=written.has_audio,
            video_size=video_size,
            thumbnail_width=thumb_w,
            thumbnail_height=thumb_h,
            thumbnail_size=thumb_size,
            low_path=low_path,
            low_width=low_w,
            low_height=low_h,
            low_size=low_bytes,
            elapsed=elapsed,
        )
    finally:
        if not done:  # never leave half-written outputs behind for a caller to upload by mistake
            for path in (out_mp4, out_jpg, *([low_path] if low_path else [])):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
