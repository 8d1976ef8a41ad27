"""Media processing: probe, validate and transcode uploads with ffprobe/ffmpeg (no bus, no storage)."""

from clipstream.media.errors import MediaError, MediaFailure, MediaRejected, MediaTimeout
from clipstream.media.pipeline import ProcessedMedia, process_upload
from clipstream.media.probe import ProbeResult, probe
from clipstream.media.testsrc import make_test_video
from clipstream.media.transcode import TranscodeResult, transcode
from clipstream.media.validate import validate

__all__ = [
    "MediaError",
    "MediaFailure",
    "MediaRejected",
    "MediaTimeout",
    "ProbeResult",
    "ProcessedMedia",
    "TranscodeResult",
    "make_test_video",
    "probe",
    "process_upload",
    "transcode",
    "validate",
]
