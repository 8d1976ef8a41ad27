"""bus/tasks.py: a background task is stopped for certain, even when a cancel is lost in a wait_for."""

from __future__ import annotations

import asyncio
import sys

import pytest

from clipstream.bus.tasks import stop_task, stop_tasks


class Poller:
    """A periodic loop that awaits each call through ``wait_for``, like redis-py's reply reads. The
    test completes the call in flight (``answer``) and can cancel in the same loop iteration."""

    def __init__(self) -> None:
        self.calls: list[asyncio.Future[None]] = []
        self.task = asyncio.get_running_loop().create_task(self._run(), name="poller")

    async def _run(self) -> None:
        while True:
            call = asyncio.get_running_loop().create_future()
            self.calls.append(call)
            await asyncio.wait_for(call, 10)

    def answer(self) -> None:
        self.calls[-1].set_result(None)


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="CPython gh-86296 is fixed in 3.12")
async def test_the_race_loses_a_cancel_on_311() -> None:
    # The premise of bus/tasks.py: this CPython drops a cancel that lands with the inner result.
    p = Poller()
    await turns()
    p.answer()
    p.task.cancel()
    await turns()
    assert not p.task.done() and len(p.calls) == 2  # cancelled, yet it went on to its next call
    p.task.cancel()  # an ordinary cancel, while it waits
    await turns()
    assert p.task.cancelled()


async def test_stop_task_ends_a_task_whose_cancel_was_lost() -> None:
    p = Poller()
    await turns()
    p.answer()
    p.task.cancel()  # lost on 3.11, as above
    await turns()
    assert await stop_task(p.task, timeout=2.0)
    assert p.task.cancelled()


async def test_stop_task_gives_up_on_a_task_that_refuses_to_stop() -> None:
    refusals, refusing = 0, True

    async def stubborn() -> None:
        nonlocal refusals
        while refusing:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                refusals += 1

    task = asyncio.get_running_loop().create_task(stubborn())
    await turns()
    assert not await stop_task(task, timeout=0.5)
    assert not task.done() and refusals >= 2  # cancelled again while it refused, then left behind
    refusing = False  # the test's own clean-up: let it end
    task.cancel()
    await task


async def test_stop_task_takes_a_failed_or_finished_task_and_none() -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    failed = asyncio.get_running_loop().create_task(fail())
    await turns()
    assert await stop_task(failed)  # not raised: the caller is stopping
    assert await stop_task(None)

    async def quick() -> int:
        return 1

    done = asyncio.get_running_loop().create_task(quick())
    await turns()
    assert await stop_task(done) and done.result() == 1


async def test_stop_tasks_stops_them_together() -> None:
    pollers = [Poller() for _ in range(3)]
    await turns()
    pollers[0].answer()
    pollers[0].task.cancel()  # one of them lost a cancel
    await turns()
    assert await stop_tasks([p.task for p in pollers] + [None], timeout=2.0)
    assert all(p.task.cancelled() for p in pollers)
