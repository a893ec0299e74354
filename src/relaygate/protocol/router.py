"""Topic patterns: an exact topic or ``"prefix*"``; the first registered match wins."""

from __future__ import annotations

from typing import Generic, TypeVar

from relaygate.protocol.frames import HEARTBEAT_TOPIC

R = TypeVar("R")


class Router(Generic[R]):
    __slots__ = ("_exact", "_prefixes")

    def __init__(self) -> None:
        self._exact: dict[str, R] = {}
        self._prefixes: list[tuple[str, R]] = []

    def add(self, pattern: str, value: R) -> None:
        if not pattern or "*" in pattern[:-1]:
            raise ValueError(f"topic pattern must be an exact topic or 'prefix*', got {pattern!r}")
        if pattern.endswith("*"):
            self._prefixes.append((pattern[:-1], value))
        else:
            self._exact.setdefault(pattern, value)

    def routes(self) -> list[tuple[str, R]]:
        """(pattern, value) in matching order: exact topics first, then prefixes as registered."""
        return [*self._exact.items(), *((prefix + "*", value) for prefix, value in self._prefixes)]

    def match(self, topic: str) -> R | None:
        """The value for ``topic``; the reserved heartbeat topic ``phoenix`` never matches."""
        if topic == HEARTBEAT_TOPIC:
            return None
        value = self._exact.get(topic)
        if value is not None:
            return value
        for prefix, candidate in self._prefixes:
            if topic.startswith(prefix):
                return candidate
        return None
