"""Which topics keep history, and how much: ``Keep(size, ttl)`` per topic pattern."""

from __future__ import annotations

from dataclasses import dataclass

from relaygate.protocol import Router


@dataclass(frozen=True, slots=True)
class Keep:
    """Keep the last ``size`` broadcasts of a topic, each for at most ``ttl`` seconds; a stream with
    no broadcast for ``ttl`` seconds is dropped (its next life gets a new epoch)."""

    size: int
    ttl: float

    def __post_init__(self) -> None:
        if type(self.size) is not int or not 1 <= self.size <= 1_000_000:
            raise ValueError(f"history size must be an integer in 1..1000000, got {self.size!r}")
        if not 0 < self.ttl <= 30 * 86_400:
            raise ValueError(f"history ttl must be in (0, 30 days] seconds, got {self.ttl!r}")

    @property
    def ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))


class Retention:
    """Topic pattern (exact or ``"prefix*"``) -> Keep; the first declared match wins.

    Lookups are cached per topic: a broadcast on a topic without history costs one dict lookup.
    """

    __slots__ = ("_cache", "_router")

    def __init__(self) -> None:
        self._router: Router[Keep] = Router()
        self._cache: dict[str, Keep | None] = {}

    def keep(self, pattern: str, keep: Keep) -> None:
        self._router.add(pattern, keep)
        self._cache.clear()

    def __bool__(self) -> bool:
        return bool(self._router.routes())

    def match(self, topic: str) -> Keep | None:
        cache = self._cache
        try:
            return cache[topic]
        except KeyError:
            pass
        found = self._router.match(topic)
        if len(cache) >= 65_536:
            cache.clear()  # bounded: topics such as user:<id> are unbounded in number
        cache[topic] = found
        return found
