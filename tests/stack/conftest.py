"""Fixtures of the stack tests: the `clipstream` command and a stack that is up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import clipstream


def _unshadow_stdlib_http() -> None:
    """`python -m pytest` from the repo root puts the root on sys.path, where the project's `http/`
    (clipstream.http) shadows the standard library's `http` that httpx, urllib3 and minio import."""
    root = Path(clipstream.__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != root]
    mod = sys.modules.get("http")
    if mod is not None and Path(getattr(mod, "__file__", None) or "/").resolve().parent == root / "http":
        for name in [m for m in sys.modules if m == "http" or m.startswith("http.")]:
            del sys.modules[name]


_unshadow_stdlib_http()

CLIPSTREAM = str(Path(sys.executable).with_name("clipstream"))


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLIPSTREAM, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def settings():
    from clipstream.config import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def stack_up(settings):
    """Bring the stack up once per session (quick when it already runs)."""
    out = run_cli("stack", "up")
    assert out.returncode == 0, f"`clipstream stack up` failed:\n{out.stdout}\n{out.stderr}"
    return settings
