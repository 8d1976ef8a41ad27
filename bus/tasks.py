"""Stopping a background task for certain, on Python 3.11.

``task.cancel(); await task`` is not enough there. ``asyncio.wait_for`` in 3.11 returns the inner
result and drops the cancellation when both land in the same loop iteration (CPython gh-86296,
fixed in 3.12 by rebuilding ``wait_for`` on ``asyncio.timeout``). redis-py reads each reply
through a ``wait_for``; nats-py uses it in ``request`` and ``fetch``. A periodic loop that makes
such a call therefore loses a cancel now and then and goes on forever. If the code stopping it
awaits it, that code hangs too.

This happened in CI. The API's rate-limit sync loop lost the cancel on a busy machine, the
worker's lifespan shutdown awaited the loop, and a test hung for 300 s. The same race hung 3 of
193 API shutdowns here while two busy loops kept both cores loaded.

:func:`stop_task` cancels again until the task has ended, up to a deadline. After that it leaves
the task behind and says so, instead of hanging.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

import structlog

__all__ = ["stop_task", "stop_tasks"]

log = structlog.get_logger("clipstream.bus")

#: how long one cancel may take to end a task before it is repeated (a task's own clean-up on
#: cancel must fit in it, or the next cancel interrupts that too)
_RECANCEL_EVERY = 0.2


async def stop_task(task: asyncio.Task[Any] | None, timeout: float = 5.0) -> bool:
    """Cancel ``task`` and wait until it has ended, cancelling again while a cancel gets lost.

    Returns True once it has ended, or False when it is still running after ``timeout`` seconds.
    It is then left behind with a warning. A task that ends by raising has its exception
    retrieved and logged; it is not raised here, because the caller is stopping.
    """
    if task is None:
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done():
        task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            log.warning("task did not stop; left behind", task=task.get_name(), timeout=timeout)
            return False
        # asyncio.wait neither raises the task's exception nor cancels the task when it times out.
        await asyncio.wait({task}, timeout=min(_RECANCEL_EVERY, left))
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("task failed while stopping", task=task.get_name(), error=repr(exc))
    return True


async def stop_tasks(tasks: Iterable[asyncio.Task[Any] | None], timeout: float = 5.0) -> bool:
    """:func:`stop_task` on each of ``tasks`` at once. True when every one of them has ended."""
    results = await asyncio.gather(*(stop_task(t, timeout) for t in tasks))
    return all(results)
