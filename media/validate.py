"""Policy checks on an upload: what the creator declared against what ffprobe found."""

from __future__ import annotations

from clipstream.config.settings import MediaSettings
from clipstream.media.errors import MediaRejected
from clipstream.media.probe import ProbeResult, check_limits, demuxers_for

__all__ = ["check_size", "normalize_format", "validate"]

# Clients may declare a MIME type or an extension rather than the bare format name.
_ALIASES = {
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
    "quicktime": "mov",
    "m4v": "mp4",
}


def normalize_format(declared: str) -> str:
    """``"video/mp4"``, ``".MP4"`` or ``"mp4"`` → ``"mp4"``."""
    name = declared.strip().lower().lstrip(".")
    return _ALIASES.get(name, name)


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def check_size(declared_size: int, actual_size: int, settings: MediaSettings) -> None:
    """Raise MediaRejected unless the stored object is exactly as large as declared and within the limit."""
    if actual_size > settings.max_upload_bytes:
        raise MediaRejected(f"upload is {_mib(actual_size)}; the limit is {_mib(settings.max_upload_bytes)}")
    if actual_size != declared_size:
        more = "larger" if actual_size > declared_size else "smaller"
        raise MediaRejected(f"upload is {actual_size} bytes, {more} than the {declared_size} bytes declared")


def validate(
    result: ProbeResult,
    declared_size: int,
    actual_size: int,
    declared_format: str,
    settings: MediaSettings,
) -> None:
    """Raise MediaRejected with a reason for the creator unless the probed upload is acceptable."""
    check_size(declared_size, actual_size, settings)
    fmt = normalize_format(declared_format)
    accepted = settings.format_set
    if fmt not in accepted:
        raise MediaRejected(f"{fmt or 'an empty'} format is not accepted; use {', '.join(sorted(accepted))}")
    # MP4 and QuickTime share one demuxer, as do WebM and Matroska: compare families, since phones
    # label them loosely, but a WebM declared as MP4 means the client lied or broke.
    if not set(result.format_names) & set(demuxers_for(frozenset({fmt}))):
        found = result.format_names[0] if result.format_names else "unknown"
        raise MediaRejected(f"the upload was declared as {fmt} but is a {found} file")
    check_limits(result, settings)
