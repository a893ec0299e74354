"""A coroutine's first step run at once, outside any task, as Python 3.12's eager tasks run it.

Most local gateway functions answer without suspending (they compute, or read what is in
memory): for them a task per call (its creation, a loop turn, its done callbacks) costs more
than the function. :func:`first_step` runs the coroutine until it returns or first suspends;
only a coroutine that suspended needs a task, which goes on with it by awaiting the
:class:`Suspended` it got back.

What the coroutine may rely on, as in a task from its start:

- ``asyncio.current_task()`` during the first step is the :class:`Suspended`, a stand-in for
  the task that will run the rest: ``cancel``, ``uncancel`` and ``cancelling`` (what
  ``asyncio.timeout`` and ``TaskGroup`` use) are kept until that task awaits it, then forwarded,
  so a timeout entered in the first step cancels the right task. Every other attribute is the
  real task's once it is known.
- Its steps, the first and the later ones, all run in one copy of the context the first step
  started from: a context variable it sets is still set after it suspends, and never leaks
  out to the caller.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Generator
from typing import Any

_swap_current_task: Callable[[asyncio.AbstractEventLoop, Any], Any]
if hasattr(asyncio.tasks, "_swap_current_task"):  # Python 3.12+: what an eager task's step uses
    _swap_current_task = asyncio.tasks._swap_current_task
else:  # Python 3.11: the per-loop dict that a task's step enters itself into
    _CURRENT: dict[asyncio.AbstractEventLoop, Any] = asyncio.tasks._current_tasks  # type: ignore[attr-defined]

    def _swap_current_task(loop: asyncio.AbstractEventLoop, task: Any) -> Any:
        previous = _CURRENT.pop(loop, None)
        if task is not None:
            _CURRENT[loop] = task
        return previous


class Suspended:
    """A coroutine whose first step ran outside a task and suspended: await it (once, in the
    task that runs the rest) for the coroutine's result, or :meth:`close` it. While the first
    step runs it is ``asyncio.current_task()``."""

    __slots__ = ("_cancels", "_context", "_coroutine", "_loop", "_task", "_yielded")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        coroutine: Coroutine[Any, Any, Any],
        context: contextvars.Context,
    ) -> None:
        self._loop = loop
        self._coroutine = coroutine
        self._context = context
        self._yielded: Any = None
        self._task: asyncio.Task[Any] | None = None
        self._cancels = 0
        """Cancel requests made before the task was known (applied to it when it is)."""

    def __await__(self) -> Generator[Any, Any, Any]:
        """Hand the awaiting task what the coroutine yields, and the coroutine what the task is
        woken with (a value or an exception), each step in the coroutine's own context."""
        task = asyncio.current_task()
        assert task is not None, "await a Suspended in a task"
        self._task = task
        for _ in range(self._cancels):
            task.cancel()
        coroutine, yielded, run = self._coroutine, self._yielded, self._context.run
        while True:
            try:
                value = yield yielded
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:
                try:
                    yielded = run(coroutine.throw, exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    yielded = run(coroutine.send, value)
                except StopIteration as done:
                    return done.value

    def close(self) -> None:
        """Never to be awaited: close the coroutine (its ``finally`` blocks run)."""
        self._coroutine.close()

    # The task's side, as asyncio.timeout, TaskGroup and the coroutine itself see it.
    def cancel(self, msg: Any = None) -> bool:
        if self._task is not None:
            return self._task.cancel(msg)
        self._cancels += 1
        return True

    def uncancel(self) -> int:
        if self._task is not None:
            return self._task.uncancel()
        if self._cancels > 0:
            self._cancels -= 1
        return self._cancels

    def cancelling(self) -> int:
        return self._task.cancelling() if self._task is not None else self._cancels

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def get_coro(self) -> Coroutine[Any, Any, Any]:
        return self._coroutine

    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def cancelled(self) -> bool:
        return self._task is not None and self._task.cancelled()

    def __getattr__(self, name: str) -> Any:
        if self._task is None:
            raise AttributeError(f"{name!r} is not available before the coroutine first suspends")
        return getattr(self._task, name)

    def __repr__(self) -> str:
        return f"<Suspended, run by {self._task!r}>" if self._task is not None else "<Suspended (first step)>"


def first_step(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` until it returns (its value) or first suspends (a :class:`Suspended`);
    what it raises in that step is raised here. Call it from a running event loop."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    step = Suspended(loop, coroutine, context)
    previous = _swap_current_task(loop, step)  # None, or the task this is called from
    try:
        step._yielded = context.run(coroutine.send, None)
    except StopIteration as done:
        return done.value
    finally:
        _swap_current_task(loop, previous)
    return step
