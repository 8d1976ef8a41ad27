"""Chromium from Debian: installed, nothing to run. The tests drive the admin page with it headless."""

from __future__ import annotations

import subprocess

from clipstream.stack import pins
from clipstream.stack.base import Service, StackError
from clipstream.stack.installers import apt_install, which

__all__ = ["ChromiumTool", "chromium_binary"]


def chromium_binary() -> str | None:
    """Debian installs ``chromium``; other distributions call it ``chromium-browser``."""
    return which("chromium") or which("chromium-browser")


class ChromiumTool(Service):
    name = "chromium"
    has_process = False

    def ports(self) -> list[int]:
        return []

    def address(self) -> str:
        return "-"

    def installed(self) -> bool:
        return chromium_binary() is not None

    def install(self) -> None:
        apt_install(self.ctx, pins.CHROMIUM_DEBIAN_PACKAGE)

    def check(self) -> str:
        binary = chromium_binary()
        if binary is None:
            raise StackError("chromium not installed")
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise StackError(f"chromium --version exited {out.returncode}")
        return f"{out.stdout.strip()} ({binary})"

    def wipe_paths(self) -> list:
        return []
