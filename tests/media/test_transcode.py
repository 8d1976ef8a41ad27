"""clipstream.media.transcode and pipeline on real files: the MP4 and thumbnail a feed can serve."""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path
from typing import Any

import msgspec
import pytest

from clipstream.config.settings import MediaSettings
from clipstream.media import MediaRejected, MediaTimeout, ProbeResult, probe, process_upload, transcode
from clipstream.media.testsrc import make_test_video


def top_level_boxes(path: Path) -> list[str]:
    """Types of the MP4's top-level boxes, in file order."""
    boxes = []
    with path.open("rb") as f:
        end = os.fstat(f.fileno()).st_size
        pos = 0
        while pos + 8 <= end:
            f.seek(pos)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:  # 64-bit size follows the type
                size = struct.unpack(">Q", f.read(8))[0]
            elif size == 0:  # box runs to the end of the file
                size = end - pos
            assert size >= 8, f"corrupt box at {pos}"
            boxes.append(kind.decode("latin-1"))
            pos += size
    return boxes


def jpeg_size(path: Path) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame segment."""
    data = path.read_bytes()
    assert data[:3] == b"\xff\xd8\xff", "not a JPEG"
    pos = 2
    while pos < len(data):
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise AssertionError("no start-of-frame segment")


def ffmpeg_children(needle: str) -> list[int]:
    """Pids of live processes whose command line mentions ``needle``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if needle.encode() in cmdline:
                pids.append(int(entry))
    return pids


async def source(
    tmp_path: Path, settings: MediaSettings, width: int, height: int, *, seconds: float = 1.0, **kw: Any
) -> tuple[Path, ProbeResult]:
    """Generate a clip in ``tmp_path`` and probe it."""
    path = tmp_path / f"src-{width}x{height}.{kw.get('fmt', 'mp4')}"
    await make_test_video(path, seconds=seconds, width=width, height=height, **kw)
    return path, await probe(path, settings)


class TestProcessUpload:
    async def test_reference_upload_becomes_feed_ready(
        self, portrait_mp4: Path, tmp_path: Path, settings: MediaSettings
    ) -> None:
        size = os.stat(portrait_mp4).st_size
        done = await process_upload(portrait_mp4, tmp_path / "work", size, "video/mp4", settings)

        video, thumb = Path(done.video_path), Path(done.thumbnail_path)
        assert video.parent == thumb.parent == tmp_path / "work"
        out = await probe(video, settings)
        assert out.video_codec == "h264" and out.audio_codec == "aac"
        assert (out.width, out.height) == (720, 1280)
        assert out.duration == pytest.approx(5.0, abs=0.1)
        boxes = top_level_boxes(video)
        assert boxes.index("moov") < boxes.index("mdat"), f"not faststart: {boxes}"
        assert jpeg_size(thumb) == (540, 960)
        assert done.output.width == 720 and done.output.height == 1280
        assert done.output.video_size == os.stat(video).st_size > 0
        assert done.output.thumbnail_size == os.stat(thumb).st_size > 0
        assert done.source.size_bytes == size

    async def test_size_mismatch_rejected_before_probe(
        self, short_mp4: Path, tmp_path: Path, settings: MediaSettings
    ) -> None:
        size = os.stat(short_mp4).st_size
        with pytest.raises(MediaRejected, match="larger than the"):
            await process_upload(short_mp4, tmp_path, size - 1, "mp4", settings)
        assert not list(tmp_path.iterdir())

    async def test_not_a_video_rejected(self, tmp_path: Path, settings: MediaSettings) -> None:
        junk = tmp_path / "junk.mp4"
        junk.write_bytes(os.urandom(4096))
        with pytest.raises(MediaRejected, match="not a video"):
            await process_upload(junk, tmp_path / "work", 4096, "mp4", settings)

    async def test_declared_format_mismatch_rejected(self, tmp_path: Path, settings: MediaSettings) -> None:
        path, _ = await source(tmp_path, settings, 320, 568, fmt="webm")
        with pytest.raises(MediaRejected, match="declared as mp4 but is a matroska file"):
            await process_upload(path, tmp_path / "work", os.stat(path).st_size, "mp4", settings)


class TestTranscodeGeometry:
    @pytest.mark.parametrize(
        ("src", "expected"),
        [
            ((1080, 1920), (720, 1280)),  # portrait 1080p: long side bounded to 1280
            ((1920, 1080), (1280, 720)),  # landscape stays landscape
            ((320, 240), (320, 240)),  # never upscaled
            ((321, 241), (320, 240)),  # odd sides made even (H.264 4:2:0 needs it)
        ],
    )
    async def test_output_size(
        self, tmp_path: Path, settings: MediaSettings, src: tuple[int, int], expected: tuple[int, int]
    ) -> None:
        path, probed = await source(tmp_path, settings, *src, seconds=0.6)
        res = await transcode(path, tmp_path / "o.mp4", tmp_path / "o.jpg", probed, settings)
        assert (res.width, res.height) == expected
        out = await probe(tmp_path / "o.mp4", settings)
        assert (out.display_width, out.display_height) == expected
        thumb_w, thumb_h = jpeg_size(tmp_path / "o.jpg")
        assert thumb_w == min(540, expected[0])
        assert thumb_h == pytest.approx(thumb_w * expected[1] / expected[0], abs=2)

    async def test_rotated_source_is_upright(self, rotated_mp4: Path, tmp_path: Path, settings: MediaSettings) -> None:
        probed = await probe(rotated_mp4, settings)
        res = await transcode(rotated_mp4, tmp_path / "o.mp4", tmp_path / "o.jpg", probed, settings)
        out = await probe(tmp_path / "o.mp4", settings)
        assert (res.width, res.height) == (out.width, out.height) == (360, 640)
        assert out.rotation == 0
        assert jpeg_size(tmp_path / "o.jpg") == (360, 640)


class TestTranscodeInputs:
    @pytest.mark.parametrize("fmt", ["webm", "mov"])
    async def test_container(self, tmp_path: Path, settings: MediaSettings, fmt: str) -> None:
        path, probed = await source(tmp_path, settings, 320, 568, fmt=fmt)
        res = await transcode(path, tmp_path / "o.mp4", tmp_path / "o.jpg", probed, settings)
        out = await probe(tmp_path / "o.mp4", settings)
        assert (out.video_codec, out.audio_codec) == ("h264", "aac")
        assert res.has_audio and res.duration == pytest.approx(1.0, abs=0.1)

    @pytest.mark.parametrize("fmt", ["mp4", "webm"])
    async def test_video_track_shorter_than_audio(self, tmp_path: Path, settings: MediaSettings, fmt: str) -> None:
        # 0.6 s of picture under 3 s of sound: the 1 s thumbnail time is past the last frame.
        # MP4 states the track length; WebM does not, which exercises the first-frame fallback.
        path, probed = await source(tmp_path, settings, 320, 568, seconds=0.6, audio_seconds=3.0, fmt=fmt)
        assert probed.duration == pytest.approx(3.0, abs=0.1)
        res = await transcode(path, tmp_path / "o.mp4", tmp_path / "o.jpg", probed, settings)
        assert jpeg_size(tmp_path / "o.jpg") == (res.thumbnail_width, res.thumbnail_height) == (320, 568)

    async def test_silent_source_gives_video_only_mp4(self, tmp_path: Path, settings: MediaSettings) -> None:
        path, probed = await source(tmp_path, settings, 320, 568, audio=False)
        res = await transcode(path, tmp_path / "o.mp4", tmp_path / "o.jpg", probed, settings)
        assert not res.has_audio
        assert not (await probe(tmp_path / "o.mp4", settings)).has_audio

    async def test_metadata_is_stripped(self, tmp_path: Path, settings: MediaSettings) -> None:
        plain, tagged = await source(tmp_path, settings, 320, 568)
        located = tmp_path / "located.mp4"
        proc = await asyncio.create_subprocess_exec(
            "ffmpeg", "-v", "error", "-i", str(plain), "-c", "copy",
            "-metadata", "location=+48.8584+002.2945/", "-metadata", "title=secret-title", str(located),
        )  # fmt: skip
        assert await proc.wait() == 0
        assert b"secret-title" in located.read_bytes()
        await transcode(located, tmp_path / "o.mp4", tmp_path / "o.jpg", await probe(located, settings), settings)
        data = (tmp_path / "o.mp4").read_bytes()
        assert b"secret-title" not in data and b"+48.8584" not in data


class TestBitrateCap:
    async def test_a_busy_picture_stays_playable_on_a_3g_like_link(
        self, portrait_mp4: Path, tmp_path: Path, settings: MediaSettings
    ) -> None:
        # testsrc2 with its noise is ~2.6 Mbit/s at CRF 23 alone; a 1.6 Mbit/s link stalls on it.
        probed = await probe(portrait_mp4, settings)
        await transcode(portrait_mp4, tmp_path / "o.mp4", tmp_path / "o.jpg", probed, settings)
        kbps = (tmp_path / "o.mp4").stat().st_size * 8 / probed.duration / 1000
        assert kbps < 1_500, kbps
        uncapped = msgspec.structs.replace(settings, max_video_kbps=0)
        await transcode(portrait_mp4, tmp_path / "u.mp4", tmp_path / "u.jpg", probed, uncapped)
        assert (tmp_path / "u.mp4").stat().st_size * 8 / probed.duration / 1000 > kbps * 1.3


class TestLowRendition:
    async def test_an_upload_gets_a_small_low_rendition_beside_the_main_one(
        self, portrait_mp4: Path, tmp_path: Path, settings: MediaSettings
    ) -> None:
        size = os.stat(portrait_mp4).st_size
        done = await process_upload(portrait_mp4, tmp_path / "work", size, "mp4", settings)
        assert done.low_path is not None and Path(done.low_path).parent == tmp_path / "work"
        low, main = await probe(done.low_path, settings), await probe(done.video_path, settings)
        assert (low.width, low.height) == (done.output.low_width, done.output.low_height) == (360, 640)
        assert (main.width, main.height) == (720, 1280)
        assert (low.video_codec, low.audio_codec) == ("h264", "aac")
        assert low.duration == pytest.approx(main.duration, abs=0.1)
        boxes = top_level_boxes(Path(done.low_path))
        assert boxes.index("moov") < boxes.index("mdat"), f"not faststart: {boxes}"
        low_kbps = done.output.low_size * 8 / low.duration / 1000
        main_kbps = done.output.video_size * 8 / main.duration / 1000
        assert done.output.low_size == os.stat(done.low_path).st_size
        # 300k video cap + 64k audio + the container: what a 1.6 Mbit/s link loads at ~4x real time
        assert 250 < low_kbps < 450, low_kbps
        assert main_kbps > 2.5 * low_kbps, (main_kbps, low_kbps)

    async def test_a_small_upload_keeps_its_size_in_the_low_rendition(
        self, tmp_path: Path, settings: MediaSettings
    ) -> None:
        path, probed = await source(tmp_path, settings, 320, 568, seconds=0.6)
        res = await transcode(path, tmp_path / "o.mp4", tmp_path / "o.jpg", probed, settings, out_low=tmp_path / "l.mp4")
        assert (res.low_width, res.low_height) == (320, 568)  # never upscaled
        assert res.low_path == str(tmp_path / "l.mp4") and res.low_size > 0

    async def test_none_when_switched_off(self, short_mp4: Path, tmp_path: Path, settings: MediaSettings) -> None:
        off = msgspec.structs.replace(settings, low_max_height=0)
        done = await process_upload(short_mp4, tmp_path / "w", os.stat(short_mp4).st_size, "mp4", off)
        assert done.low_path is None and done.output.low_size == 0
        assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["thumb.jpg", "video.mp4"]

    async def test_a_failed_run_leaves_no_low_rendition(
        self, portrait_mp4: Path, tmp_path: Path, settings: MediaSettings
    ) -> None:
        probed = await probe(portrait_mp4, settings)
        with pytest.raises(MediaTimeout):
            await transcode(portrait_mp4, tmp_path / "o.mp4", tmp_path / "o.jpg", probed, settings, timeout=0.2,
                            out_low=tmp_path / "l.mp4")
        assert not list(tmp_path.iterdir())


class TestTranscodeDeadline:
    async def test_timeout_kills_ffmpeg(self, portrait_mp4: Path, tmp_path: Path, settings: MediaSettings) -> None:
        out = tmp_path / "timeout-out.mp4"
        probed = await probe(portrait_mp4, settings)
        with pytest.raises(MediaTimeout):
            await transcode(portrait_mp4, out, tmp_path / "t.jpg", probed, settings, timeout=0.2)
        assert ffmpeg_children(str(out)) == []
        assert not out.exists() and not (tmp_path / "t.jpg").exists()

    async def test_cancel_kills_ffmpeg(self, portrait_mp4: Path, tmp_path: Path, settings: MediaSettings) -> None:
        out = tmp_path / "cancel-out.mp4"
        probed = await probe(portrait_mp4, settings)
        task = asyncio.create_task(transcode(portrait_mp4, out, tmp_path / "c.jpg", probed, settings))
        for _ in range(100):  # wait until ffmpeg is really running
            await asyncio.sleep(0.02)
            if ffmpeg_children(str(out)):
                break
        assert ffmpeg_children(str(out))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ffmpeg_children(str(out)) == []
        assert not out.exists()
