from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from company_api.contexts.chat import MemoryRateLimiter, RedisRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_limiter_slides_its_window() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(limit=3, window=10.0, clock=clock)
    for offset in (0.0, 1.0, 2.0):
        clock.now = 1000.0 + offset
        assert await limiter.hit("u1") is None
    clock.now = 1004.0
    assert await limiter.hit("u1") == pytest.approx(6.0)
    assert await limiter.hit("u2") is None
    clock.now = 1010.0  # the first hit left the window; refused hits were not counted
    assert await limiter.hit("u1") is None
    assert await limiter.hit("u1") == pytest.approx(1.0)


async def test_memory_limiter_forgets_idle_keys() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(limit=1, window=1.0, clock=clock)
    for i in range(MemoryRateLimiter.SWEEP_EVERY - 1):
        await limiter.hit(f"user{i}")
    clock.now += 2.0
    await limiter.hit("last")
    assert len(limiter) == 1


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError):
        MemoryRateLimiter(limit=0)
    with pytest.raises(ValueError):
        MemoryRateLimiter(window=0)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


async def test_redis_limiter_counts_across_nodes(redis: aioredis.Redis) -> None:
    node_a = RedisRateLimiter(redis, limit=3, window=10.0)
    node_b = RedisRateLimiter(redis, limit=3, window=10.0)
    assert await node_a.hit("7") is None
    assert await node_b.hit("7") is None
    assert await node_a.hit("7") is None
    retry_after = await node_b.hit("7")
    assert retry_after is not None and 0 < retry_after <= 10.0
    assert await node_a.hit("8") is None
    assert 0 < await redis.pttl("relaygate:ratelimit:chat:7") <= 10_000


async def test_redis_limiter_lets_in_again_once_the_window_passed(redis: aioredis.Redis) -> None:
    limiter = RedisRateLimiter(redis, limit=2, window=0.3)
    assert await limiter.hit("9") is None
    assert await limiter.hit("9") is None
    retry_after = await limiter.hit("9")
    assert retry_after is not None
    await asyncio.sleep(retry_after + 0.05)
    assert await limiter.hit("9") is None
