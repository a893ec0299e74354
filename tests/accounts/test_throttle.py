"""Login throttle counters: memory and Redis behave the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from relaygate.accounts import LoginThrottle, MemoryThrottle, RedisThrottle
from relaygate.accounts.throttle import throttle_keys


@pytest.fixture(params=["memory", "redis"])
async def throttle(request: pytest.FixtureRequest) -> AsyncIterator[LoginThrottle]:
    if request.param == "memory":
        yield MemoryThrottle(limit=3, window=60)
        return
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    prefix = f"test:{id(request)}:"
    yield RedisThrottle(client, limit=3, window=60, prefix=prefix)
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_the_attempt_after_the_limit_is_refused_with_a_wait(throttle: LoginThrottle) -> None:
    keys = throttle_keys("A@example.com", "10.0.0.1")
    assert [await throttle.reserve(keys) for _ in range(3)] == [None, None, None]
    wait = await throttle.reserve(keys)
    assert wait is not None and 1 <= wait <= 60
    assert await throttle.reserve(throttle_keys("a@EXAMPLE.com ", "10.0.0.2")) is not None  # same email
    assert await throttle.reserve(throttle_keys("b@example.com", "10.0.0.2")) is None


async def test_released_attempts_do_not_count(throttle: LoginThrottle) -> None:
    keys = throttle_keys("c@example.com", None)
    for _ in range(10):
        assert await throttle.reserve(keys) is None
        await throttle.release(keys)


async def test_concurrent_attempts_never_exceed_the_limit(throttle: LoginThrottle) -> None:
    keys = throttle_keys("d@example.com", "10.0.0.3")
    results = await asyncio.gather(*(throttle.reserve(keys) for _ in range(20)))
    assert sum(result is None for result in results) == 3


async def test_the_window_expires(throttle: LoginThrottle) -> None:
    throttle.window = 1
    keys = throttle_keys("e@example.com", None)
    for _ in range(3):
        await throttle.reserve(keys)
    assert await throttle.reserve(keys) is not None
    for _ in range(40):  # bounded wait for the 1 s window to pass
        await asyncio.sleep(0.1)
        if await throttle.reserve(keys) is None:
            return
        await throttle.release(keys)
    raise AssertionError("the window never expired")


def test_emails_are_not_stored_in_clear() -> None:
    assert all("example" not in key for key in throttle_keys("someone@example.com", "1.2.3.4"))
