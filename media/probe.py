"""Inspect an uploaded file with ffprobe and decide whether it is a video we can take."""

from __future__ import annotations

import os
import re
from fractions import Fraction

import msgspec

from clipstream.config.settings import MediaSettings
from clipstream.media._proc import run_tool
from clipstream.media.errors import MediaFailure, MediaRejected

__all__ = [
    "MAX_ASPECT",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIN_DURATION",
    "MIN_SIDE",
    "PROBE_TIMEOUT",
    "ProbeResult",
    "check_limits",
    "demuxers_for",
    "probe",
    "read_probe",
]

PROBE_TIMEOUT = 20.0
"""Seconds ffprobe may take; it reads headers only, so a slow probe means a hostile or broken file."""

MIN_DURATION = 0.5
MIN_SIDE = 32
MAX_SIDE = 8192
MAX_PIXELS = 7680 * 4320  # 8K: what current phones record at most
MAX_ASPECT = 4.0  # beyond 4:1 the feed cannot show it sensibly

# ffprobe reports demuxers, not file types: one demuxer reads MP4 and QuickTime alike, another
# Matroska and WebM. Formats not listed here are assumed to be named like their ffmpeg demuxer.
_DEMUXERS: dict[str, tuple[str, ...]] = {
    "mp4": ("mov", "mp4", "m4a", "3gp", "3g2", "mj2"),
    "mov": ("mov", "mp4", "m4a", "3gp", "3g2", "mj2"),
    "webm": ("matroska", "webm"),
    "mkv": ("matroska", "webm"),
}

_IMAGE_CODECS = frozenset({"png", "apng", "mjpeg", "jpeg2000", "bmp", "gif", "webp", "tiff", "jpegls"})
_NOT_ON_WHITELIST = re.compile(r"\[([\w,]+) @ [^\]]*\] Format not on whitelist")


def demuxers_for(formats: frozenset[str]) -> tuple[str, ...]:
    """ffmpeg demuxer names able to read the given upload formats (mp4, mov, webm, …)."""
    names: dict[str, None] = {}
    for fmt in sorted(formats):
        names.update(dict.fromkeys(_DEMUXERS.get(fmt, (fmt,))))
    return tuple(names)


class ProbeResult(msgspec.Struct, frozen=True, kw_only=True):
    """What ffprobe found in a file, reduced to what validation and transcoding need."""

    duration: float
    """seconds, of the whole file (the longest stream), as a player shows it"""
    video_duration: float | None
    """seconds of the video track alone, when the container says (WebM does not)"""
    width: int
    """stored frame width, before sample aspect ratio and rotation"""
    height: int
    rotation: int
    """display-matrix rotation in degrees, normalised to 0, 90, 180 or 270"""
    display_width: int
    """width as a player shows it (sample aspect ratio and rotation applied)"""
    display_height: int
    video_codec: str
    frame_rate: float | None
    has_audio: bool
    audio_codec: str | None
    audio_channels: int
    audio_sample_rate: int
    format_names: tuple[str, ...]
    """the demuxer's names, e.g. ("mov", "mp4", "m4a", "3gp", "3g2", "mj2")"""
    size_bytes: int


# --- ffprobe's JSON, typed: msgspec decodes only the fields we read and ignores the rest.


class _Disposition(msgspec.Struct):
    attached_pic: int = 0
    still_image: int = 0


class _SideData(msgspec.Struct):
    rotation: float | None = None


class _Stream(msgspec.Struct):
    codec_type: str = ""
    codec_name: str = ""
    width: int = 0
    height: int = 0
    sample_aspect_ratio: str = ""
    avg_frame_rate: str = ""
    r_frame_rate: str = ""
    duration: str | None = None
    nb_frames: str | None = None
    channels: int = 0
    sample_rate: str | None = None
    disposition: _Disposition = msgspec.field(default_factory=_Disposition)
    tags: dict[str, str] = {}
    side_data_list: list[_SideData] = []


class _Format(msgspec.Struct):
    format_name: str = ""
    duration: str | None = None


class _Output(msgspec.Struct):
    streams: list[_Stream] = []
    format: _Format | None = None


_decoder = msgspec.json.Decoder(_Output)


def _ratio(text: str | None) -> Fraction | None:
    """Parse ffprobe's "num/den" or decimal strings; None for "0/0", "N/A" and the like."""
    if not text:
        return None
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _rotation(stream: _Stream) -> int:
    for side in stream.side_data_list:
        if side.rotation is not None:
            return round(side.rotation / 90) * 90 % 360
    # Files written by older muxers carry the rotation as a tag instead of a display matrix.
    tag = _ratio(stream.tags.get("rotate"))
    return round(float(tag) / 90) * 90 % 360 if tag is not None else 0


def _seconds(value: float, limit: float) -> str:
    """Format a duration with just enough digits that it visibly differs from ``limit``."""
    for digits in (1, 2, 3):
        text = f"{value:.{digits}f}"
        if float(text) != limit:
            return text
    return f"{value:.3f}"


def check_limits(result: ProbeResult, settings: MediaSettings) -> None:
    """Raise MediaRejected if duration or picture size is outside what the platform accepts."""
    if result.duration <= 0:
        raise MediaRejected("the video has no duration")
    if result.duration > settings.max_duration:
        raise MediaRejected(
            f"video is {_seconds(result.duration, settings.max_duration)} s long;"
            f" the limit is {settings.max_duration:g} s"
        )
    if result.duration < MIN_DURATION:
        raise MediaRejected(
            f"video is {_seconds(result.duration, MIN_DURATION)} s long; the minimum is {MIN_DURATION:g} s"
        )
    w, h = result.display_width, result.display_height
    if min(w, h) < MIN_SIDE:
        raise MediaRejected(f"video is {w}x{h} pixels; each side must be at least {MIN_SIDE}")
    if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
        raise MediaRejected(f"video is {w}x{h} pixels; the largest accepted is 7680x4320")
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise MediaRejected(f"video is {w}x{h} pixels; sides more than {MAX_ASPECT:g}:1 apart are not accepted")


def _unreadable_reason(stderr: str) -> str:
    match = _NOT_ON_WHITELIST.search(stderr)
    if match:
        demuxer = match.group(1).split(",")[0]
        if demuxer.endswith("_pipe") or demuxer in ("image2", "gif"):
            return "the file is an image, not a video"
        return f"{demuxer} files are not accepted"
    return "the file is not a video we can read"


def _parse(raw: bytes, size_bytes: int) -> ProbeResult:
    try:
        out = _decoder.decode(raw)
    except msgspec.DecodeError:
        raise MediaRejected("the file is not a video we can read") from None
    videos = [s for s in out.streams if s.codec_type == "video" and not s.disposition.attached_pic]
    audios = [s for s in out.streams if s.codec_type == "audio"]
    if not videos:
        raise MediaRejected("the file has no video track" if audios else "the file is not a video we can read")
    video = videos[0]
    if video.width <= 0 or video.height <= 0:
        raise MediaRejected("the video track has no picture size")
    if video.codec_name in _IMAGE_CODECS and (video.disposition.still_image or video.nb_frames in (None, "0", "1")):
        raise MediaRejected("the file is an image, not a video")

    video_duration = _ratio(video.duration)
    duration = _ratio(out.format.duration if out.format else None) or video_duration
    sar = _ratio(video.sample_aspect_ratio) or Fraction(1)
    rotation = _rotation(video)
    # Display width follows the sample aspect ratio; a quarter turn then swaps the axes.
    shown_w, shown_h = max(1, round(video.width * sar)), video.height
    if rotation in (90, 270):
        shown_w, shown_h = shown_h, shown_w
    fps = _ratio(video.avg_frame_rate) or _ratio(video.r_frame_rate)
    audio = audios[0] if audios else None
    return ProbeResult(
        duration=float(duration) if duration else 0.0,
        video_duration=float(video_duration) if video_duration else None,
        width=video.width,
        height=video.height,
        rotation=rotation,
        display_width=shown_w,
        display_height=shown_h,
        video_codec=video.codec_name,
        frame_rate=float(fps) if fps else None,
        has_audio=audio is not None,
        audio_codec=audio.codec_name if audio else None,
        audio_channels=audio.channels if audio else 0,
        audio_sample_rate=int(_ratio(audio.sample_rate) or 0) if audio else 0,
        format_names=tuple(out.format.format_name.split(",")) if out.format else (),
        size_bytes=size_bytes,
    )


async def read_probe(path: str | os.PathLike[str], settings: MediaSettings, *, timeout: float) -> ProbeResult:
    """Run ffprobe and parse its answer, with no policy check; MediaRejected if it cannot read the file."""
    argv = [
        settings.ffprobe,
        "-v", "error",
        # Only the demuxers of accepted formats and only local files: a playlist or concat file
        # posing as a video must not make ffprobe open other files or URLs.
        "-format_whitelist", ",".join(demuxers_for(settings.format_set)),
        "-protocol_whitelist", "file",
        "-print_format", "json",
        "-show_format", "-show_streams",
        "file:" + os.fspath(path),
    ]  # fmt: skip
    try:
        size_bytes = os.stat(path).st_size
    except OSError as exc:  # the worker lost its own download: not the creator's fault
        raise MediaFailure(f"cannot read {os.fspath(path)}: {exc}") from exc
    res = await run_tool(argv, timeout)
    if res.returncode != 0:
        raise MediaRejected(_unreadable_reason(res.stderr))
    return _parse(res.stdout, size_bytes)


async def probe(
    path: str | os.PathLike[str], settings: MediaSettings, *, timeout: float = PROBE_TIMEOUT
) -> ProbeResult:
    """Probe ``path``; raise MediaRejected unless it is a video within the platform's limits."""
    result = await read_probe(path, settings, timeout=timeout)
    check_limits(result, settings)
    return result
