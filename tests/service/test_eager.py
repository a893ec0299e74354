"""A coroutine's first step run outside any task: what it sees is what a task would show it."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from relaygate.service.eager import Suspended, first_step

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


async def rest(step: Any) -> Any:
    """Run the rest of a suspended first step in a task of its own, as the gateway does."""
    assert isinstance(step, Suspended)
    return await asyncio.get_running_loop().create_task(_await(step))


async def _await(step: Suspended) -> Any:
    return await step


async def test_a_coroutine_that_does_not_suspend_returns_its_value_and_leaves_the_caller_current() -> None:
    seen: list[Any] = []

    async def answer() -> int:
        seen.append(asyncio.current_task())
        return 42

    me = asyncio.current_task()
    assert first_step(answer()) == 42
    assert seen[0] is not None and seen[0] is not me  # a stand-in, not the caller's task
    assert asyncio.current_task() is me


async def test_what_the_first_step_raises_is_raised_and_the_caller_stays_current() -> None:
    async def broken() -> None:
        raise ValueError("bad")

    me = asyncio.current_task()
    with pytest.raises(ValueError, match="bad"):
        first_step(broken())
    assert asyncio.current_task() is me


async def test_from_a_loop_callback_there_is_no_current_task_afterwards() -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[Any, Any]] = loop.create_future()

    async def answer() -> Any:
        return asyncio.current_task()

    def callback() -> None:
        inside = first_step(answer())
        done.set_result((inside, asyncio.current_task()))

    loop.call_soon(callback)
    inside, after = await done
    assert inside is not None and after is None


async def test_the_rest_runs_in_the_awaiting_task_with_the_first_steps_context() -> None:
    gate = asyncio.Event()
    tasks: list[Any] = []

    async def suspending() -> str:
        VAR.set("inside")
        tasks.append(asyncio.current_task())
        await gate.wait()
        tasks.append(asyncio.current_task())
        return VAR.get()

    step = first_step(suspending())
    assert VAR.get() == "unset"  # the first step's context is its own copy
    running = asyncio.get_running_loop().create_task(_await(step))
    await asyncio.sleep(0)
    gate.set()
    assert await running == "inside"
    assert tasks[1] is running
    assert tasks[0].get_coro() is not None and tasks[0].get_name() == running.get_name()


async def test_a_timeout_entered_in_the_first_step_cancels_the_task_that_runs_the_rest() -> None:
    async def bounded() -> str:
        try:
            async with asyncio.timeout(0):
                await asyncio.Event().wait()
        except TimeoutError:
            return "timed out"
        return "not reached"

    assert await rest(first_step(bounded())) == "timed out"
    assert asyncio.current_task() is not None and not asyncio.current_task().cancelling()  # type: ignore[union-attr]


async def test_a_task_group_entered_in_the_first_step_works() -> None:
    async def child(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    async def grouped() -> list[int]:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(child(n)) for n in range(3)]
        return [t.result() for t in tasks]

    assert await rest(first_step(grouped())) == [0, 2, 4]


async def test_a_cancel_asked_in_the_first_step_reaches_the_task() -> None:
    cancelled = asyncio.Event()

    async def self_cancelling() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        assert task.cancelling() == 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(asyncio.CancelledError):
        await rest(first_step(self_cancelling()))
    assert cancelled.is_set()


async def test_cancelling_the_task_throws_into_the_coroutine_and_close_runs_its_finally() -> None:
    ended: list[str] = []

    async def waiting() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("finally")

    running = asyncio.get_running_loop().create_task(_await(first_step(waiting())))
    await asyncio.sleep(0)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert ended == ["finally"]

    step = first_step(waiting())
    assert isinstance(step, Suspended)
    step.close()
    assert ended == ["finally", "finally"]
