"""Tools the stack installs but never runs as a service: ffmpeg, chromium, wrk (Debian), vegeta (`go install`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from clipstream.stack import pins
from clipstream.stack.base import Service, StackError
from clipstream.stack.installers import apt_install, go_binary, go_install, which

__all__ = ["AptTool", "ChromiumTool", "FfmpegTool", "VegetaTool", "WrkTool", "chromium_binary", "vegeta_binary"]


class Tool(Service):
    """Binaries run by others (no process of its own, no port, no data): installed and checked."""

    has_process = False

    def ports(self) -> list[int]:
        return []

    def address(self) -> str:
        return "-"

    def wipe_paths(self) -> list:
        return []


class AptTool(Tool):
    """A Debian package whose binaries are only run by others: install it, report its version."""

    package: str
    #: each binary the package must provide, as alternative names (distributions differ)
    binaries: tuple[tuple[str, ...], ...]
    version_args: tuple[str, ...] = ("--version",)

    def paths(self) -> list[str | None]:
        return [next((p for p in map(which, names) if p), None) for names in self.binaries]

    def installed(self) -> bool:
        return all(self.paths())

    def install(self) -> None:
        apt_install(self.ctx, self.package)

    def check(self) -> str:
        paths = self.paths()
        for names, path in zip(self.binaries, paths):
            if path is None:
                raise StackError(f"{names[0]} not installed")
        out = subprocess.run([paths[0], *self.version_args], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise StackError(f"{paths[0]} {' '.join(self.version_args)} exited {out.returncode}")
        return f"{self.describe(out.stdout)} ({', '.join(p for p in paths if p)})"

    def describe(self, version_output: str) -> str:
        return version_output.strip().splitlines()[0] if version_output.strip() else "?"


class FfmpegTool(AptTool):
    name = "ffmpeg"
    package = pins.FFMPEG_DEBIAN_PACKAGE
    binaries = (("ffmpeg",), ("ffprobe",))
    version_args = ("-hide_banner", "-version")

    def describe(self, version_output: str) -> str:
        words = version_output.split()  # "ffmpeg version 5.1.9-0+deb12u1 Copyright ..."
        return f"ffmpeg {words[2] if len(words) > 2 and words[1] == 'version' else '?'}"


class ChromiumTool(AptTool):
    """Headless Chromium drives the admin page in the tests."""

    name = "chromium"
    package = pins.CHROMIUM_DEBIAN_PACKAGE
    binaries = (("chromium", "chromium-browser"),)


class WrkTool(AptTool):
    """wrk drives the HTTP load of `clipstream bench` (Lua scripts in ``bench/wrk/``)."""

    name = "wrk"
    package = pins.WRK_DEBIAN_PACKAGE
    binaries = (("wrk",),)
    version_args = ("-v",)

    def check(self) -> str:
        # `wrk -v` prints its version and usage, then exits 1: only its presence is checked.
        path = self.paths()[0]
        if path is None:
            raise StackError("wrk not installed")
        out = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=30)
        return f"{self.describe(out.stdout + out.stderr)} ({path})"


def chromium_binary() -> str | None:
    """Debian installs ``chromium``; other distributions call it ``chromium-browser``."""
    return which("chromium") or which("chromium-browser")


class VegetaTool(Tool):
    """vegeta drives the open-loop load of `clipstream bench` (requests at a constant rate, each
    sent at its scheduled time whatever the answers before it did): built by `go install`."""

    name = "vegeta"

    def binary(self) -> Path | None:
        return go_binary(self.ctx, "vegeta", pins.VEGETA_VERSION)

    def installed(self) -> bool:
        return self.binary() is not None

    def install(self) -> None:
        go_install(self.ctx, "vegeta", pins.VEGETA_MODULE, pins.VEGETA_VERSION)

    def check(self) -> str:
        path = self.binary()
        if path is None:
            raise StackError("vegeta not installed")
        out = subprocess.run([str(path), "-version"], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise StackError(f"{path} -version exited {out.returncode}")
        return f"vegeta {pins.VEGETA_VERSION} ({path})"


def vegeta_binary(cache_dir: Path) -> Path | None:
    """The cached vegeta of the pinned version under the stack's cache dir, or None."""
    binary = cache_dir / "go" / "bin" / "vegeta"
    stamp = binary.with_name(".vegeta.version")
    if binary.exists() and stamp.exists() and stamp.read_text().strip() == pins.VEGETA_VERSION:
        return binary
    return None
