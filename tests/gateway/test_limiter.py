"""Window stores: in memory (sliding windows, memory that follows only the active keys) and the
leased Redis budgets of cluster mode."""

from __future__ import annotations

from redis.asyncio import Redis

from relaygate.gateway import LeasingWindowStore, MemoryWindowStore, Window
from relaygate.protocol.gateway.wire import RATE_PREFIX


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


async def test_leased_budgets_share_one_limit_across_gateways_without_a_round_trip_per_request(
    redis: Redis,
) -> None:
    """Two gateways spend one 100/min window in blocks of 5: exactly 100 admitted in all, both
    refuse once it is spent, a check that must not count takes nothing, and ~1 script call per block."""
    first, second = LeasingWindowStore(redis), LeasingWindowStore(redis)
    window = [Window("g|user_id|60000|u1", 100, 60_000)]
    assert first.block(window[0]) == 5
    admitted = 0
    for _ in range(80):
        for store in (first, second):
            if await store.hit(window) == 0:
                admitted += 1
    assert admitted == 100
    assert await first.hit(window) > 0 and await second.hit(window) > 0
    assert await first.hit(window, count=False) > 0
    assert first.round_trips + second.round_trips <= 100 // 5 + 6
    assert await redis.zcard(RATE_PREFIX + window[0].key) == 100


async def test_leases_are_all_or_nothing_across_windows(redis: Redis) -> None:
    """A request refused by one window takes no slot of the others (small limits: exact)."""
    store = LeasingWindowStore(redis)
    roomy, full = Window("g|user_id|60000|u2", 10, 60_000), Window("g|device_id|60000|d2", 1, 60_000)
    assert await store.hit([full]) == 0
    assert await store.hit([roomy, full]) > 0
    assert await redis.zcard(RATE_PREFIX + roomy.key) == 0
    assert await store.hit([roomy]) == 0
