"""clipstream.media.validate: declared size and format against what was uploaded and probed."""

from __future__ import annotations

import msgspec
import pytest

from clipstream.config.settings import MediaSettings
from clipstream.media import MediaRejected, ProbeResult, validate
from clipstream.media.validate import normalize_format

MP4_NAMES = ("mov", "mp4", "m4a", "3gp", "3g2", "mj2")


def probed(**changes: object) -> ProbeResult:
    base = ProbeResult(
        duration=5.0,
        video_duration=5.0,
        width=720,
        height=1280,
        rotation=0,
        display_width=720,
        display_height=1280,
        video_codec="h264",
        frame_rate=30.0,
        has_audio=True,
        audio_codec="aac",
        audio_channels=2,
        audio_sample_rate=48000,
        format_names=MP4_NAMES,
        size_bytes=1000,
    )
    return msgspec.structs.replace(base, **changes)


def reason(result: ProbeResult, declared: int, actual: int, fmt: str, settings: MediaSettings) -> str:
    with pytest.raises(MediaRejected) as info:
        validate(result, declared, actual, fmt, settings)
    return info.value.reason


class TestValidateAccepts:
    @pytest.mark.parametrize("fmt", ["mp4", "MP4", ".mp4", "video/mp4", "mov", "video/quicktime"])
    def test_mp4_family(self, settings: MediaSettings, fmt: str) -> None:
        validate(probed(), 1000, 1000, fmt, settings)

    def test_webm(self, settings: MediaSettings) -> None:
        validate(probed(format_names=("matroska", "webm"), video_codec="vp9"), 1000, 1000, "webm", settings)

    def test_normalize_format(self) -> None:
        assert normalize_format(" Video/QuickTime ") == "mov"


class TestValidateRejects:
    def test_larger_than_declared(self, settings: MediaSettings) -> None:
        assert reason(probed(), 1000, 1001, "mp4", settings) == (
            "upload is 1001 bytes, larger than the 1000 bytes declared"
        )

    def test_smaller_than_declared(self, settings: MediaSettings) -> None:
        assert "smaller than the 1000 bytes declared" in reason(probed(), 1000, 10, "mp4", settings)

    def test_over_size_limit(self) -> None:
        small = MediaSettings(max_upload_bytes=1024 * 1024)
        assert reason(probed(), 2 * 1024 * 1024, 2 * 1024 * 1024, "mp4", small) == (
            "upload is 2.0 MiB; the limit is 1.0 MiB"
        )

    def test_format_not_accepted(self, settings: MediaSettings) -> None:
        assert reason(probed(), 1000, 1000, "avi", settings) == "avi format is not accepted; use mov, mp4, webm"

    def test_declared_format_differs(self, settings: MediaSettings) -> None:
        assert reason(probed(), 1000, 1000, "webm", settings) == "the upload was declared as webm but is a mov file"

    def test_too_long(self, settings: MediaSettings) -> None:
        assert reason(probed(duration=212.4), 1000, 1000, "mp4", settings) == (
            "video is 212.4 s long; the limit is 180 s"
        )

    def test_just_over_limit_shows_the_difference(self, settings: MediaSettings) -> None:
        assert reason(probed(duration=180.04), 1000, 1000, "mp4", settings).startswith("video is 180.04 s long")

    def test_no_duration(self, settings: MediaSettings) -> None:
        assert reason(probed(duration=0.0), 1000, 1000, "mp4", settings) == "the video has no duration"

    def test_too_large_picture(self, settings: MediaSettings) -> None:
        assert "7680x4320" in reason(probed(display_width=8192, display_height=8192), 1000, 1000, "mp4", settings)

    def test_extreme_aspect(self, settings: MediaSettings) -> None:
        assert "4:1" in reason(probed(display_width=2000, display_height=100), 1000, 1000, "mp4", settings)
