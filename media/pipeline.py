"""One upload from raw file to feed-ready media: probe, validate, transcode."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from clipstream.config.settings import MediaSettings
from clipstream.media.errors import MediaFailure
from clipstream.media.probe import ProbeResult, probe
from clipstream.media.transcode import TranscodeResult, transcode
from clipstream.media.validate import check_size, validate

__all__ = ["ProcessedMedia", "process_upload"]


class ProcessedMedia(msgspec.Struct, frozen=True, kw_only=True):
    """A processed upload: the files to publish and what is known about source and output."""

    video_path: str
    thumbnail_path: str
    #: the low rendition for slow links; None when the settings make none
    low_path: str | None
    source: ProbeResult
    output: TranscodeResult


async def process_upload(
    src_path: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    declared_size: int,
    declared_format: str,
    settings: MediaSettings,
) -> ProcessedMedia:
    """Probe, validate and transcode ``src_path`` into ``workdir``; MediaRejected carries the reason."""
    try:
        actual_size = os.stat(src_path).st_size
    except OSError as exc:
        raise MediaFailure(f"cannot read {os.fspath(src_path)}: {exc}") from exc
    # Cheapest check first, and the most telling: a truncated or swapped object fails here
    # with a clearer reason than whatever ffprobe would make of it.
    check_size(declared_size, actual_size, settings)
    source = await probe(src_path, settings)
    validate(source, declared_size, actual_size, declared_format, settings)
    out_dir = Path(workdir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = await transcode(src_path, out_dir / "video.mp4", out_dir / "thumb.jpg", source, settings,
                             out_low=out_dir / "video-low.mp4")
    return ProcessedMedia(video_path=output.video_path, thumbnail_path=output.thumbnail_path,
                          low_path=output.low_path, source=source, output=output)
