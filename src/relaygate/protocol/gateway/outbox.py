"""Messages bound for Redis, collected per destination and written once per event-loop turn.

Gateways and service nodes send many small messages (calls, replies, chunks, credits). Writing
each with its own command costs a round trip and a pipeline per message; the :class:`Outbox`
instead gathers everything queued while the loop runs and hands it to one ``write`` call: one
``LPUSH`` per list with every element, one ``PUBLISH`` per channel with a batch payload. While
a write is in flight new messages wait for the next one, so batches grow with the load and a
lone message leaves on the next loop turn. The I/O itself is the caller's ``write``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Pushes = dict[str, list[bytes]]
Publishes = dict[str, list[bytes]]
Write = Callable[[Pushes, Publishes, list[Any]], Awaitable[None]]
"""``write(pushes, publishes, tags)``: send one batch; it handles (and reports) its own failures."""


class Outbox:
    def __init__(self, write: Write) -> None:
        self._write = write
        self._pushes: Pushes = {}
        self._publishes: Publishes = {}
        self._tags: list[Any] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def push(self, queue: str, data: bytes, tag: Any = None) -> None:
        """Append ``data`` to the list ``queue``; ``tag`` comes back to ``write`` with the batch."""
        items = self._pushes.get(queue)
        if items is None:
            self._pushes[queue] = [data]
        else:
            items.append(data)
        if tag is not None:
            self._tags.append(tag)
        self._wake.set()

    def publish(self, channel: str, data: bytes) -> None:
        items = self._publishes.get(channel)
        if items is None:
            self._publishes[channel] = [data]
        else:
            items.append(data)
        self._wake.set()

    def pending(self) -> int:
        """Messages not yet handed to ``write``."""
        return sum(map(len, self._pushes.values())) + sum(map(len, self._publishes.values()))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="redis-outbox")

    async def close(self, grace: float = 5.0) -> None:
        """Write what is queued (within ``grace`` seconds), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                while self._pushes or self._publishes or not self._idle.is_set():
                    self._wake.set()
                    await asyncio.sleep(0.005)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not (self._pushes or self._publishes):
                continue
            pushes, self._pushes = self._pushes, {}
            publishes, self._publishes = self._publishes, {}
            tags, self._tags = self._tags, []
            self._idle.clear()
            try:
                await self._write(pushes, publishes, tags)
            except Exception:  # write reports its own failures; never let the sender die
                log.exception("redis outbox write failed")
            finally:
                self._idle.set()
