from __future__ import annotations

from typing import Any

import pytest

from relaygate.channels.testing import JoinRefused, TestChannel
from tests.company_api.channels.conftest import Connect


async def _diff_about(channel: TestChannel, user_id: int, side: str) -> dict[str, Any]:
    """The next presence_diff whose ``side`` (joins/leaves) names the user, skipping others."""
    for _ in range(10):
        diff: dict[str, Any] = await channel.assert_push("presence_diff")
        if str(user_id) in diff[side]:
            return diff
    raise AssertionError(f"no presence_diff {side} for {user_id}")


def _devices(state: dict[str, Any], user_id: int) -> list[Any]:
    return [meta["device"] for meta in state[str(user_id)]["metas"]]


async def test_presence_tracks_every_device_of_every_user(connect: Connect, users: list[int]) -> None:
    alice, bob, _ = users
    alice_phone = await (await connect(alice)).join("room:lobby", {"device": "phone"})
    state = await alice_phone.assert_push("presence_state")
    assert list(state) == [str(alice)]
    [meta] = state[str(alice)]["metas"]
    assert meta["name"] == f"N{alice}" and meta["device"] == "phone"
    assert isinstance(meta["online_at"], int) and meta["phx_ref"]

    bob_laptop = await (await connect(bob)).join("room:lobby")
    state = await bob_laptop.assert_push("presence_state")
    assert _devices(state, alice) == ["phone"] and _devices(state, bob) == [None]
    await _diff_about(alice_phone, bob, "joins")

    alice_tablet = await (await connect(alice)).join("room:lobby", {"device": "tablet"})
    state = await alice_tablet.assert_push("presence_state")
    assert sorted(_devices(state, alice)) == ["phone", "tablet"]

    await bob_laptop.leave()
    diff = await _diff_about(alice_phone, bob, "leaves")
    assert str(bob) not in diff["joins"]  # the diff may also carry the tablet's join (coalesced)


async def test_room_messages_reach_everyone_including_the_sender(connect: Connect, users: list[int]) -> None:
    alice, bob, _ = users
    alice_room = await (await connect(alice)).join("room:general")
    bob_room = await (await connect(bob)).join("room:general")
    elsewhere = await (await connect(bob)).join("room:other")
    ref = await alice_room.push("message:new", {"body": "hello room"})
    assert await alice_room.assert_reply(ref) == {}
    for channel in (alice_room, bob_room):
        payload = await channel.assert_push("message:new")
        assert {k: payload[k] for k in ("user_id", "name", "body")} == {
            "user_id": alice,
            "name": f"N{alice}",
            "body": "hello room",
        }
        assert payload["inserted_at"].endswith("Z")
    await elsewhere.refute_push("message:new")


async def test_typing_reaches_only_the_others(connect: Connect, users: list[int]) -> None:
    alice, bob, _ = users
    alice_room = await (await connect(alice)).join("room:general")
    bob_room = await (await connect(bob)).join("room:general")
    await alice_room.assert_reply(await alice_room.push("typing", {}))
    assert await bob_room.assert_push("typing") == {"user_id": alice}
    await alice_room.refute_push("typing")


async def test_presence_update_changes_the_status(connect: Connect, users: list[int]) -> None:
    alice, bob, _ = users
    alice_room = await (await connect(alice)).join("room:general", {"device": "phone"})
    bob_room = await (await connect(bob)).join("room:general")
    await bob_room.assert_push("presence_state")
    ref = await alice_room.push("presence:update", {"status": "away"})
    assert await alice_room.assert_reply(ref) == {}
    diff = await _diff_about(bob_room, alice, "joins")
    [meta] = diff["joins"][str(alice)]["metas"]
    assert (meta["status"], meta["device"]) == ("away", "phone")
    for payload, errors in [
        ({"status": "x" * 33}, ["should be at most 32 character(s)"]),
        ({"status": 3}, ["must be a string"]),
        ({}, ["can't be blank"]),
    ]:
        reply = await alice_room.assert_reply(await alice_room.push("presence:update", payload), "error")
        assert reply == {"reason": "invalid", "errors": {"status": errors}}


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({}, {"body": ["must be a string"]}),
        ({"body": ""}, {"body": ["can't be blank"]}),
        ({"body": "x" * 4001}, {"body": ["should be at most 4000 character(s)"]}),
        ("hi", {"body": ["must be a string"]}),
    ],
)
async def test_bad_messages_are_invalid(
    connect: Connect, users: list[int], payload: Any, errors: Any
) -> None:
    room = await (await connect(users[0])).join("room:general")
    reply = await room.assert_reply(await room.push("message:new", payload), "error")
    assert reply == {"reason": "invalid", "errors": errors}
    await room.refute_push("message:new")
    assert await room.assert_reply(await room.push("message:new", {"body": "ok"})) == {}


@pytest.mark.parametrize("topic", ["room:", "room:" + "a" * 65, "room:a b", "room:é", "room:a:b"])
async def test_bad_room_names_are_refused(connect: Connect, users: list[int], topic: str) -> None:
    client = await connect(users[0])
    with pytest.raises(JoinRefused) as refused:
        await client.join(topic)
    assert refused.value.response["reason"] == "invalid"
    await client.join("room:" + "a" * 64)


async def test_a_bad_device_is_refused(connect: Connect, users: list[int]) -> None:
    client = await connect(users[0])
    for device in (42, "d" * 101):
        with pytest.raises(JoinRefused) as refused:
            await client.join("room:x", {"device": device})
        assert list(refused.value.response["errors"]) == ["device"]
