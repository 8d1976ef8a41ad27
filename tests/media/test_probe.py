"""clipstream.media.probe on real files: what is a video, and what is not."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from clipstream.config.settings import MediaSettings
from clipstream.media import MediaFailure, MediaRejected, probe
from clipstream.media.testsrc import make_test_audio, make_test_image, make_test_video


class TestProbeVideo:
    async def test_reference_mp4(self, portrait_mp4: Path, settings: MediaSettings) -> None:
        result = await probe(portrait_mp4, settings)
        assert result.duration == pytest.approx(5.0, abs=0.1)
        assert (result.width, result.height) == (720, 1280)
        assert (result.display_width, result.display_height) == (720, 1280)
        assert result.rotation == 0
        assert result.video_codec == "h264"
        assert result.frame_rate == pytest.approx(30.0)
        assert result.has_audio and result.audio_codec == "aac"
        assert "mp4" in result.format_names
        assert result.size_bytes == os.stat(portrait_mp4).st_size

    @pytest.mark.parametrize(("fmt", "codec", "family"), [("webm", "vp9", "webm"), ("mov", "h264", "mov")])
    async def test_other_containers(
        self, tmp_path: Path, settings: MediaSettings, fmt: str, codec: str, family: str
    ) -> None:
        path = tmp_path / f"clip.{fmt}"
        await make_test_video(path, seconds=1.0, width=320, height=568, fmt=fmt)
        result = await probe(path, settings)
        assert result.video_codec == codec
        assert family in result.format_names
        assert result.duration == pytest.approx(1.0, abs=0.1)

    async def test_rotation_swaps_display_size(self, rotated_mp4: Path, settings: MediaSettings) -> None:
        result = await probe(rotated_mp4, settings)
        assert (result.width, result.height) == (640, 360)
        assert result.rotation in (90, 270)
        assert (result.display_width, result.display_height) == (360, 640)


class TestProbeRejects:
    async def _reason(self, path: Path, settings: MediaSettings) -> str:
        with pytest.raises(MediaRejected) as info:
            await probe(path, settings)
        assert info.value.reason and info.value.reason == str(info.value)
        return info.value.reason

    async def test_random_bytes(self, tmp_path: Path, settings: MediaSettings) -> None:
        path = tmp_path / "noise.mp4"
        # Seeded: a few random buffers out of many happen to look like a text subtitle format to
        # ffprobe ("lrc files are not accepted"), a different but also fair rejection.
        path.write_bytes(random.Random(20261123).randbytes(200_000))
        assert await self._reason(path, settings) == "the file is not a video we can read"

    async def test_text_file(self, tmp_path: Path, settings: MediaSettings) -> None:
        path = tmp_path / "notes.mp4"
        path.write_text("these are not the frames you are looking for\n" * 100)
        assert await self._reason(path, settings) == "the file is not a video we can read"

    async def test_empty_file(self, tmp_path: Path, settings: MediaSettings) -> None:
        path = tmp_path / "empty.mp4"
        path.touch()
        assert await self._reason(path, settings) == "the file is not a video we can read"

    @pytest.mark.parametrize("codec", ["png", "mjpeg"])
    async def test_still_image_renamed_mp4(self, tmp_path: Path, settings: MediaSettings, codec: str) -> None:
        path = tmp_path / "picture.mp4"
        await make_test_image(path, codec=codec)
        assert await self._reason(path, settings) == "the file is an image, not a video"

    async def test_playlist_is_not_followed(self, tmp_path: Path, settings: MediaSettings) -> None:
        # The classic ffmpeg file-disclosure trick: an HLS playlist posing as a video.
        path = tmp_path / "playlist.mp4"
        path.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
        assert "not" in await self._reason(path, settings)

    async def test_audio_only(self, tmp_path: Path, settings: MediaSettings) -> None:
        path = tmp_path / "song.mp4"
        await make_test_audio(path, seconds=2.0)
        assert await self._reason(path, settings) == "the file has no video track"

    async def test_longer_than_limit(self, tmp_path: Path, settings: MediaSettings) -> None:
        # 181 s at 64x64 and 1 fps: a real over-long video that takes a fraction of a second to make.
        path = tmp_path / "long.mp4"
        await make_test_video(path, seconds=181.0, width=64, height=64, audio=False, fps=1)
        assert await self._reason(path, settings) == "video is 181.0 s long; the limit is 180 s"

    async def test_tiny_picture(self, tmp_path: Path, settings: MediaSettings) -> None:
        path = tmp_path / "tiny.mp4"
        await make_test_video(path, seconds=1.0, width=16, height=16, audio=False)
        assert await self._reason(path, settings) == "video is 16x16 pixels; each side must be at least 32"

    async def test_missing_file_is_our_failure(self, tmp_path: Path, settings: MediaSettings) -> None:
        with pytest.raises(MediaFailure):
            await probe(tmp_path / "gone.mp4", settings)
