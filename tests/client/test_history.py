"""The client's side of history: positions tracked, since on rejoin, recovered, gaps refilled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from relaygate.client import Client
from relaygate.client.positions import Seen, Tracker
from tests.client.scripted import ScriptedServer, eventually

WAIT = 5.0


def test_without_refill_skipped_offsets_are_not_gaps_but_a_new_epoch_is() -> None:
    """A socket never gets its own broadcast_from: its offsets are skipped without any loss."""
    tracker = Tracker()
    tracker.joined("e:0", None)
    assert tracker.seen("e:1") is Seen.NEW
    assert tracker.seen("e:4") is Seen.NEW
    assert not tracker.gap and tracker.position == "e:4"
    assert tracker.seen("e:3") is Seen.DUPLICATE
    assert tracker.seen("f:1") is Seen.GAP and tracker.gap


def test_the_tracker_tells_new_duplicate_and_gap() -> None:
    tracker = Tracker(refill=True)
    assert tracker.position is None
    assert tracker.seen("7") is Seen.PLAIN and tracker.seen(None) is Seen.PLAIN
    tracker.joined("e:2", None)
    assert tracker.seen("e:3") is Seen.NEW
    assert tracker.seen("e:6") is Seen.GAP
    assert tracker.gap and tracker.position == "e:3"  # resume before the first missing one
    assert tracker.seen("e:4") is Seen.NEW  # a late one fills part of the gap
    assert tracker.seen("e:3") is Seen.DUPLICATE
    assert tracker.seen("e:5") is Seen.NEW
    assert not tracker.gap and tracker.position == "e:6"
    tracker.joined("e:9", True)  # recovered: the replay of 7..9 follows
    assert tracker.seen("e:6") is Seen.DUPLICATE
    assert tracker.seen("e:7") is Seen.NEW
    assert tracker.seen("other:1") is Seen.GAP and tracker.gap
    tracker.joined("other:4", False)
    assert not tracker.gap and tracker.position == "other:4"


async def test_a_gap_while_connected_rejoins_with_since_and_drops_replayed_duplicates(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(gap_grace=0.05, refill_gaps=True)
    await client.connect()
    conn = await server.next_connection()
    chan = client.channel("room:1", {"device": "d"})
    got: list[tuple[Any, str | None]] = []
    chan.on("m", lambda payload: got.append((payload["n"], chan.position)))
    join = asyncio.create_task(chan.join())
    first = await conn.accept_join("room:1", {"position": "e:0"})
    await asyncio.wait_for(join, WAIT)
    assert first[4] == {"device": "d"}  # no since on the first join
    await conn.send([None, "e:1", "room:1", "m", {"n": 1}])
    await conn.send([None, "e:3", "room:1", "m", {"n": 3}])  # 2 went missing
    rejoin = await conn.recv()
    assert rejoin[3] == "phx_join" and rejoin[4] == {"device": "d", "since": "e:1"}
    await conn.reply(rejoin, "ok", {"position": "e:3", "recovered": True})
    await conn.send([None, "e:2", "room:1", "m", {"n": 2}])  # the replay
    await conn.send([None, "e:3", "room:1", "m", {"n": 3}])  # replayed again: dropped
    await conn.send([None, "e:4", "room:1", "m", {"n": 4}])
    await eventually(lambda: len(got) == 4)
    assert [n for n, _ in got] == [1, 3, 2, 4]
    assert chan.position == "e:4" and chan.recovered is True


async def test_a_failed_recovery_calls_the_app_back(
    server: ScriptedServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(gap_grace=0.05)
    await client.connect()
    conn = await server.next_connection()
    chan = client.channel("room:1")
    failed: list[Any] = []
    chan.on_unrecovered(failed.append)
    join = asyncio.create_task(chan.join())
    await conn.accept_join("room:1", {"position": "e:5"})
    await asyncio.wait_for(join, WAIT)
    await conn.send([None, "f:1", "room:1", "m", {}])  # a new epoch while connected
    rejoin = await conn.recv()
    assert rejoin[4] == {"since": "e:5"}
    await conn.reply(rejoin, "ok", {"position": "f:1", "recovered": False})
    await eventually(lambda: failed == [{"position": "f:1", "recovered": False}])
    assert chan.recovered is False and chan.position == "f:1"
