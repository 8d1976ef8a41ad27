"""Run ffmpeg/ffprobe as asyncio children that never outlive their deadline or their caller."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence

from clipstream.media.errors import MediaFailure, MediaTimeout

__all__ = ["ToolResult", "run_tool"]

# Only the end of stderr is useful in an error message (ffmpeg prints the fatal line last).
_STDERR_TAIL = 4000


class ToolResult:
    """Exit status and captured output of one finished child."""

    __slots__ = ("returncode", "stdout", "stderr")

    def __init__(self, returncode: int, stdout: bytes, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


async def run_tool(argv: Sequence[str | os.PathLike[str]], timeout: float) -> ToolResult:
    """Run ``argv`` (no shell) with stdin closed; kill and reap it on timeout or cancellation."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:  # binary missing or not executable: a deployment problem, not the upload's
        raise MediaFailure(f"cannot start {argv[0]}: {exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await proc.communicate()
            returncode = await proc.wait()
    except TimeoutError:
        raise MediaTimeout(f"{os.path.basename(str(argv[0]))} killed after {timeout:g} s") from None
    finally:
        # Reached on timeout and on cancellation alike: the child must not keep burning a core.
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    return ToolResult(returncode, stdout, stderr[-_STDERR_TAIL:].decode("utf-8", "replace").strip())
