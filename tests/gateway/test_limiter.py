"""The in-memory window store: sliding windows, and memory that follows only the active keys."""

from __future__ import annotations

from relaygate.gateway import MemoryWindowStore, Window


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_window_limits_then_slides() -> None:
    clock = Clock()
    store = MemoryWindowStore(clock)
    window = [Window("k", 2, 1000)]
    assert await store.hit(window) == 0
    assert await store.hit(window) == 0
    assert await store.hit(window) == 1000
    clock.now += 1.0
    assert await store.hit(window) == 0


async def test_keys_from_client_values_are_forgotten_after_their_window() -> None:
    """One short-window key per distinct argument value must not be kept for a day."""
    clock = Clock()
    store = MemoryWindowStore(clock)
    for i in range(MemoryWindowStore.SWEEP_EVERY):
        await store.hit([Window(f"svc|fn||arg:q|1000|value-{i}", 5, 1000)])
    clock.now += 2.0  # every one of those windows has passed
    for i in range(MemoryWindowStore.SWEEP_EVERY):
        await store.hit([Window(f"svc|fn||arg:q|1000|other-{i}", 5, 1000)])
    assert len(store) <= MemoryWindowStore.SWEEP_EVERY
