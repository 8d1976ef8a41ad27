"""ffmpeg and ffprobe from Debian: installed, nothing to run."""

from __future__ import annotations

import subprocess

from clipstream.stack import pins
from clipstream.stack.base import Service, StackError
from clipstream.stack.installers import apt_install, which

__all__ = ["FfmpegTool"]


class FfmpegTool(Service):
    name = "ffmpeg"
    has_process = False

    def ports(self) -> list[int]:
        return []

    def address(self) -> str:
        return "-"

    def installed(self) -> bool:
        return which("ffmpeg") is not None and which("ffprobe") is not None

    def install(self) -> None:
        apt_install(self.ctx, pins.FFMPEG_DEBIAN_PACKAGE)

    def check(self) -> str:
        for tool in ("ffmpeg", "ffprobe"):
            if which(tool) is None:
                raise StackError(f"{tool} not installed")
        out = subprocess.run([which("ffmpeg"), "-hide_banner", "-version"], capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            raise StackError(f"ffmpeg -version exited {out.returncode}")
        words = out.stdout.split()  # "ffmpeg version 5.1.9-0+deb12u1 Copyright ..."
        version = words[2] if len(words) > 2 and words[1] == "version" else "?"
        return f"ffmpeg {version} ({which('ffmpeg')}, {which('ffprobe')})"

    def wipe_paths(self) -> list:
        return []
