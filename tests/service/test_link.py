"""The gateway's Redis link and outbox against a real Redis: pipelined replies in order, Pub/Sub
messages on the same connection, error replies as values, and a lost connection failing what
waits instead of hanging it."""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
import pytest
from redis.asyncio import Redis

from relaygate.service.link import LinkLost, RedisLink, pack
from relaygate.service.outbox import Outbox, Publishes, Pushes


async def test_pipelined_commands_and_messages_share_one_connection(redis: Redis) -> None:
    messages: list[tuple[bytes, bytes]] = []
    link = RedisLink(redis, on_message=lambda channel, data: messages.append((channel, data)))
    await link.connect()
    try:
        await link.subscribe("ch:a", "ch:b")
        batch = (
            pack("RPUSH", "l", "x", "y")
            + pack("LPOP", "l")
            + pack("GET", "l")
            + pack("PUBLISH", "ch:b", "hi")
        )
        first, second = link.send(batch, 4), link.send(pack("LLEN", "l"), 1)
        replies = await first
        assert replies[:2] == [2, b"x"]
        assert isinstance(replies[2], hiredis.ReplyError)  # WRONGTYPE: a value, the link goes on
        assert replies[3] == 1  # one subscriber: this very connection
        assert await second == [1]
        assert await link.command("BLMPOP", 1, 1, "l", "RIGHT", "COUNT", 5) == [b"l", [b"y"]]
        assert await link.command("BLMPOP", 1, 1, "l", "RIGHT", "COUNT", 5) is None  # timed out
        await redis.publish("ch:a", b"from elsewhere")
        async with asyncio.timeout(10):
            while len(messages) < 2:
                await asyncio.sleep(0.01)
        assert messages == [(b"ch:b", b"hi"), (b"ch:a", b"from elsewhere")]
        with pytest.raises(hiredis.ReplyError):
            await link.command("NOSUCHCOMMAND")
    finally:
        await link.aclose()


async def test_a_killed_connection_fails_what_waits_and_a_new_one_works(redis: Redis) -> None:
    link = RedisLink(redis)
    await link.connect()
    client_id = await link.command("CLIENT", "ID")
    waiting = link.send(pack("BLPOP", "never", 0), 1)
    await redis.client_kill_filter(_id=client_id)
    with pytest.raises(LinkLost):
        await asyncio.wait_for(waiting, 10)
    assert await link.wait_closed()
    assert not link.connected
    with pytest.raises(LinkLost):
        await link.send(pack("PING"), 1)
    await link.connect()
    assert await link.command("PING") == b"PONG"
    await link.aclose()


async def test_outbox_batches_one_turn_and_holds_the_next_until_answered(redis: Redis) -> None:
    link = RedisLink(redis)
    await link.connect()
    sent: list[tuple[Pushes, Publishes, list[Any]]] = []

    def send(pushes: Pushes, publishes: Publishes, tags: list[Any]) -> asyncio.Future[Any]:
        sent.append((pushes, publishes, tags))
        commands = [pack("RPUSH", queue, *items) for queue, items in pushes.items()]
        return link.send(b"".join(commands), len(commands))

    outbox = Outbox(send)
    for i in range(3):
        outbox.push("q1", b"%d" % i, tag=i)
    outbox.push("q2", b"z")
    assert outbox.pending() == 4 and not sent  # nothing leaves before the loop turns
    async with asyncio.timeout(10):
        while not sent:
            await asyncio.sleep(0)
    assert sent == [({"q1": [b"0", b"1", b"2"], "q2": [b"z"]}, {}, [0, 1, 2])]
    outbox.push("q1", b"3")
    outbox.push("q1", b"4")
    await outbox.close()
    assert len(sent) == 2 and sent[1][0] == {"q1": [b"3", b"4"]}
    assert await redis.lrange("q1", 0, -1) == [b"0", b"1", b"2", b"3", b"4"]
    outbox.push("q1", b"late")  # closed: dropped
    await asyncio.sleep(0.01)
    assert len(sent) == 2
    await link.aclose()
