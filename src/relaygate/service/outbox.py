"""Messages bound for Redis, collected per destination and written once per event-loop turn.

Gateways and service nodes send many small messages (calls, replies, chunks, credits). Writing
each with its own command costs a write and a wake-up of Redis per message; the :class:`Outbox`
instead gathers everything queued during one loop turn and hands it to one ``send``: one
``LPUSH`` per list with every element, one ``PUBLISH`` per channel with a batch payload. While a
batch is unanswered, new messages wait for the answer, so batches grow with the load and a lone
message leaves on the next loop turn. No task: a loop callback flushes. The I/O is the caller's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

Pushes = dict[str, list[bytes]]
Publishes = dict[str, list[bytes]]
Send = Callable[[Pushes, Publishes, list[Any]], "asyncio.Future[Any] | None"]
"""``send(pushes, publishes, tags)``: write one batch now and return a future that is done once
Redis has answered it (or ``None``). It handles (and reports) its own failures."""


class Outbox:
    def __init__(self, send: Send) -> None:
        self._send = send
        self._pushes: Pushes = {}
        self._publishes: Publishes = {}
        self._tags: list[Any] = []
        self._scheduled = False
        self._unanswered: asyncio.Future[Any] | None = None
        self._closed = False

    def push(self, queue: str, data: bytes, tag: Any = None) -> None:
        """Append ``data`` to the list ``queue``; ``tag`` comes back to ``send`` with the batch."""
        if self._closed:
            return
        items = self._pushes.get(queue)
        if items is None:
            self._pushes[queue] = [data]
        else:
            items.append(data)
        if tag is not None:
            self._tags.append(tag)
        if not self._scheduled:
            self._schedule()

    def publish(self, channel: str, data: bytes) -> None:
        if self._closed:
            return
        items = self._publishes.get(channel)
        if items is None:
            self._publishes[channel] = [data]
        else:
            items.append(data)
        if not self._scheduled:
            self._schedule()

    def pending(self) -> int:
        """Messages not yet handed to ``send``."""
        return sum(map(len, self._pushes.values())) + sum(map(len, self._publishes.values()))

    def _schedule(self) -> None:
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Send what is queued now, unless a batch is unanswered (then it follows the answer)."""
        self._scheduled = False
        if self._unanswered is not None or not (self._pushes or self._publishes):
            return
        pushes, self._pushes = self._pushes, {}
        publishes, self._publishes = self._publishes, {}
        tags, self._tags = self._tags, []
        future = self._send(pushes, publishes, tags)
        if future is not None and not future.done():
            self._unanswered = future
            future.add_done_callback(self._answered)

    def _answered(self, future: asyncio.Future[Any]) -> None:
        self._unanswered = None
        if not future.cancelled():
            future.exception()  # reported by ``send``'s own handling
        self.flush()

    async def close(self, grace: float = 5.0) -> None:
        """Send what is queued and wait for its answer (within ``grace`` seconds); then drop
        whatever is queued later."""
        deadline = time.monotonic() + grace
        while (self._pushes or self._publishes or self._unanswered) and time.monotonic() < deadline:
            self.flush()
            unanswered = self._unanswered
            if unanswered is not None:
                await asyncio.wait({unanswered}, timeout=max(0.0, deadline - time.monotonic()))
            else:
                await asyncio.sleep(0.005)  # nothing sent: the link is down, or send returned None
        self._closed = True
        self._pushes, self._publishes, self._tags = {}, {}, []
