"""Reconnect delays: exponential with jitter, capped, reset after a success."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * 2)
        return delay * random.uniform(0.75, 1.25)

    def reset(self) -> None:
        self._next = self.first
