"""Function timeouts through one shared timer: who gets cancelled, when, and what it reports."""

from __future__ import annotations

import asyncio

from relaygate.service.deadlines import Deadlines


async def _run(deadlines: Deadlines, timeout: float, work: asyncio.Event) -> str:
    watch = deadlines.start(timeout)
    try:
        await work.wait()
        return "done"
    except asyncio.CancelledError:
        if watch.timed_out():
            return "timeout"
        raise
    finally:
        deadlines.end(watch)


async def test_only_calls_past_their_deadline_are_cancelled_whatever_the_order_of_timeouts() -> None:
    deadlines = Deadlines()
    never, released = asyncio.Event(), asyncio.Event()
    long = asyncio.create_task(_run(deadlines, 30, never))  # registered first, expires last
    short = asyncio.create_task(_run(deadlines, 0.05, never))
    quick = asyncio.create_task(_run(deadlines, 0.05, released))
    released.set()
    assert await quick == "done"
    assert await short == "timeout"
    assert not long.done() and asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    long.cancel()  # a cancel from elsewhere is not a timeout: it stays raised
    await asyncio.gather(long, return_exceptions=True)
    assert long.cancelled()
    assert deadlines.pending() == 0


async def test_a_function_that_swallows_its_timeout_leaves_the_task_uncancelled() -> None:
    deadlines = Deadlines()

    async def stubborn() -> int:
        watch = deadlines.start(0.01)
        try:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                pass  # returns normally after its deadline
        finally:
            deadlines.end(watch)
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert await asyncio.create_task(stubborn()) == 0
