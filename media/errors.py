"""Exceptions of the media layer: one root, split by whose fault it is."""

from __future__ import annotations

__all__ = ["MediaError", "MediaFailure", "MediaRejected", "MediaTimeout"]


class MediaError(Exception):
    """Root of every error raised by :mod:`clipstream.media`."""


class MediaRejected(MediaError):
    """The upload itself is unacceptable; ``reason`` is a short sentence fit to show the creator."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MediaFailure(MediaError):
    """Processing failed for a reason that is ours or transient (missing binary, disk, crash); retry."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class MediaTimeout(MediaFailure):
    """An ffmpeg/ffprobe child ran past its deadline and was killed."""
