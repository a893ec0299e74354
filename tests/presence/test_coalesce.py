"""Coalesced presence diffs: one merged diff per window gives every member the server's list."""

from __future__ import annotations

import asyncio
import random

import orjson

from relaygate.channels.testing import ChannelClient
from relaygate.client.presence import sync_diff
from relaygate.presence import MemoryPresence
from relaygate.presence.table import Diffs, Entry, PresenceTable
from relaygate.pubsub import MemoryPubSub
from tests.presence.tracking import TOPIC, client_view, endpoint_with, normal, presence_frames


def test_one_merged_diff_equals_every_change_from_any_state_in_the_window() -> None:
    """Random tracks, updates (new phx_ref) and leaves on multi-device keys: presence.js applying
    the window's merged diff to the state after any prefix of the changes (a presence_state taken
    mid-window) reaches the state after all of them."""
    rng = random.Random(7)
    for _ in range(200):
        table, merged = PresenceTable(), Diffs()
        seq = 0
        states = [table.list(TOPIC)]
        for _ in range(rng.randint(1, 12)):
            diffs = Diffs()
            ids = list(table.entries())
            roll = rng.random()
            if ids and roll < 0.3:
                table.remove(rng.choice(ids), diffs)
            elif ids and roll < 0.5:
                entry_id = rng.choice(ids)
                old = table.entries()[entry_id]
                meta = {"n": rng.random(), "phx_ref": f"r{seq}", "phx_ref_prev": old.meta["phx_ref"]}
                table.put(entry_id, Entry(TOPIC, old.key, meta, old.seq), diffs)
            else:
                table.put(f"e{seq}", Entry(TOPIC, rng.choice("abc"), {"phx_ref": f"r{seq}"}, seq), diffs)
            seq += 1
            merged.merge(diffs)
            states.append(table.list(TOPIC))
            assert orjson.loads(table.state(TOPIC)) == states[-1]  # the cached encoding follows
        payload = dict(merged.payloads()).get(TOPIC, {"joins": {}, "leaves": {}})
        for seen in states:
            assert normal(sync_diff(seen, payload)) == normal(states[-1])


def test_update_in_a_window_is_a_leave_of_the_old_ref_and_a_join_of_the_new() -> None:
    table, merged = PresenceTable(), Diffs()
    diffs = Diffs()
    table.put("1", Entry(TOPIC, "u1", {"phx_ref": "a"}, 1), diffs)
    table.put("2", Entry(TOPIC, "u1", {"phx_ref": "b"}, 2), diffs)  # a second device
    merged.merge(diffs)
    diffs = Diffs()
    table.put("1", Entry(TOPIC, "u1", {"phx_ref": "c", "phx_ref_prev": "a"}, 1), diffs)
    table.remove("2", diffs)
    merged.merge(diffs)
    assert merged.pop(TOPIC) == {
        "joins": {"u1": {"metas": [{"phx_ref": "c", "phx_ref_prev": "a"}]}},
        "leaves": {"u1": {"metas": [{"phx_ref": "a"}, {"phx_ref": "b"}]}},
    }
    assert not merged


async def test_a_burst_of_500_joins_gives_every_member_the_list_with_few_diffs() -> None:
    presence = MemoryPresence(MemoryPubSub(), diff_window=0.05)
    endpoint = endpoint_with(presence)
    members = 500
    clients = [await ChannelClient.connect(endpoint, endpoint.sockets[0]) for _ in range(members)]
    # 250 users on two devices each: multi-device keys
    await asyncio.gather(
        *(c.join(TOPIC, {"key": f"u{i // 2}", "device": i % 2}, within=30) for i, c in enumerate(clients))
    )
    # and 50 of them leave again inside the burst
    for client in clients[:50]:
        await client.close()
    await asyncio.sleep(presence._max_window + 0.3)  # every pending window has been sent
    expected = presence.list(TOPIC)
    assert sum(len(p["metas"]) for p in expected.values()) == members - 50
    # the client-side merge deep-copies the state per diff: check every 15th member's list
    for client in clients[50::15] + clients[-1:]:
        assert normal(client_view(client)) == normal(expected)
    frames_per_member = [len(presence_frames(c)) for c in clients[50:]]
    # without coalescing each member would get one diff per later join (~250 on average)
    assert max(frames_per_member) <= 20, frames_per_member
    for client in clients[50:]:
        await client.close()
    await presence.stop()
