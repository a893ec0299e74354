"""PresenceState on a live channel: pending diffs, multi-device and rejoin (scripted server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from relaygate.client import Client, PresenceState
from tests.client.scripted import Conn, ScriptedServer, eventually

WAIT = 5.0


def meta(ref: str, device: str) -> dict[str, Any]:
    return {"phx_ref": ref, "device": device}


@pytest.fixture
async def client(server: ScriptedServer) -> AsyncIterator[Client]:
    client = Client(server.url, rejoin_after=lambda _tries: 0.05, reconnect_after=lambda _tries: 0.01)
    yield client
    await client.close()


async def join_with_presence(server: ScriptedServer, client: Client) -> tuple[Conn, Any, PresenceState]:
    await client.connect()
    conn = await server.next_connection()
    chan = client.channel("room:1")
    presence = PresenceState(chan)
    join = asyncio.create_task(chan.join())
    await conn.accept_join("room:1")
    await asyncio.wait_for(join, WAIT)
    return conn, chan, presence


async def test_diffs_wait_for_the_state_of_the_current_join(server: ScriptedServer, client: Client) -> None:
    conn, chan, presence = await join_with_presence(server, client)
    syncs: list[list[str]] = []
    presence.on_sync(lambda: syncs.append(presence.list(lambda key, _p: key)))
    await conn.send(
        [None, None, "room:1", "presence_diff", {"joins": {"u2": {"metas": [meta("2", "d")]}}, "leaves": {}}]
    )
    await chan.next_event("presence_diff", timeout=WAIT)
    assert presence.in_pending_sync_state() and presence.state == {} and syncs == []
    await conn.send([chan.join_ref, None, "room:1", "presence_state", {"u1": {"metas": [meta("1", "a")]}}])
    await eventually(lambda: len(syncs) == 1)
    assert syncs == [["u1", "u2"]], "the buffered diff is applied after the state, one sync"


async def test_multi_device_presence(server: ScriptedServer, client: Client) -> None:
    conn, chan, presence = await join_with_presence(server, client)
    left: list[Any] = []
    presence.on_leave(lambda key, current, leaving: left.append((key, current, leaving)))
    state = {"u1": {"metas": [meta("1", "phone"), meta("2", "laptop")]}}
    await conn.send([chan.join_ref, None, "room:1", "presence_state", state])
    await chan.next_event("presence_state", timeout=WAIT)
    await conn.send(
        [
            None,
            None,
            "room:1",
            "presence_diff",
            {"joins": {}, "leaves": {"u1": {"metas": [meta("1", "phone")]}}},
        ]
    )
    await chan.next_event("presence_diff", timeout=WAIT)
    assert presence.list() == [{"metas": [meta("2", "laptop")]}]
    assert left == [("u1", {"metas": [meta("2", "laptop")]}, {"metas": [meta("1", "phone")]})]


async def test_rejoin_buffers_diffs_until_the_new_state(server: ScriptedServer, client: Client) -> None:
    conn, chan, presence = await join_with_presence(server, client)
    syncs: list[list[str]] = []
    presence.on_sync(lambda: syncs.append(presence.list(lambda key, _p: key)))
    await conn.send([chan.join_ref, None, "room:1", "presence_state", {"u1": {"metas": [meta("1", "a")]}}])
    await eventually(lambda: len(syncs) == 1)
    old_ref = chan.join_ref
    await conn.send([old_ref, old_ref, "room:1", "phx_error", {"reason": "channel_crash"}])
    rejoin = await conn.accept_join("room:1")
    await eventually(lambda: chan.join_ref == rejoin[0])
    assert presence.in_pending_sync_state()
    await conn.send(
        [None, None, "room:1", "presence_diff", {"joins": {"u3": {"metas": [meta("3", "c")]}}, "leaves": {}}]
    )
    await chan.next_event("presence_diff", timeout=WAIT)
    assert len(syncs) == 1
    await conn.send([old_ref, None, "room:1", "presence_state", {"u9": {"metas": [meta("9", "old")]}}])
    await conn.send([rejoin[0], None, "room:1", "presence_state", {"u1": {"metas": [meta("4", "a")]}}])
    await eventually(lambda: len(syncs) == 2)
    assert syncs[1] == ["u1", "u3"], "the stale state is dropped; the new one replaces u1's meta"
    assert presence.state["u1"]["metas"] == [meta("4", "a")]
