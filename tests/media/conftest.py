"""Real media files generated once per session with ffmpeg's synthetic sources (no ffmpeg mocks)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from clipstream.config.settings import MediaSettings
from clipstream.media.testsrc import make_test_video

if not (shutil.which("ffmpeg") and shutil.which("ffprobe")):
    pytest.skip("ffmpeg/ffprobe not installed (apt-get install ffmpeg)", allow_module_level=True)


@pytest.fixture(scope="session")
def settings() -> MediaSettings:
    return MediaSettings()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media-src")


@pytest.fixture(scope="session")
async def portrait_mp4(media_dir: Path) -> Path:
    """The reference upload: 5 s, 720x1280, 30 fps, H.264 + AAC."""
    path = media_dir / "portrait.mp4"
    await make_test_video(path)
    return path


@pytest.fixture(scope="session")
async def short_mp4(media_dir: Path) -> Path:
    """A small 1 s clip for tests that only need some valid video."""
    path = media_dir / "short.mp4"
    await make_test_video(path, seconds=1.0, width=320, height=568)
    return path


@pytest.fixture(scope="session")
async def rotated_mp4(media_dir: Path) -> Path:
    """How phones store portrait video: 640x360 landscape frames plus a quarter-turn display matrix."""
    landscape, rotated = media_dir / "landscape.mp4", media_dir / "rotated.mp4"
    await make_test_video(landscape, seconds=0.6, width=640, height=360, audio=False)
    # ffmpeg ≥ 6 sets the display matrix with -display_rotation; 5.x (Debian 12) with a "rotate" tag.
    for argv in (
        ["-display_rotation:v:0", "90", "-i", str(landscape), "-c", "copy"],
        ["-i", str(landscape), "-c", "copy", "-metadata:s:v:0", "rotate=90"],
    ):
        proc = await asyncio.create_subprocess_exec(
            "ffmpeg", "-v", "quiet", "-y", *argv, str(rotated), stdin=asyncio.subprocess.DEVNULL
        )
        if await proc.wait() == 0:
            return rotated
    raise RuntimeError("ffmpeg could not write a rotated test video")
