from __future__ import annotations

import re
from typing import Any

import pytest

import relaygate.presence as presence_pkg
from relaygate.presence import AlreadyTracked, MemoryPresence, NoPresence
from relaygate.pubsub import MemoryPubSub
from relaygate.telemetry.metrics import PRESENCE_ENTRIES


class Chan:
    """Stands in for the runtime's per-(connection, topic) channel object."""


@pytest.fixture
def pubsub() -> MemoryPubSub:
    return MemoryPubSub()


@pytest.fixture
def presence(pubsub: MemoryPubSub) -> MemoryPresence:
    return MemoryPresence(pubsub, diff_window=0)  # one diff per change: the unit semantics


def test_exports() -> None:
    assert sorted(presence_pkg.__all__) == [
        "AlreadyTracked",
        "MemoryPresence",
        "NoPresence",
        "Presence",
        "PresenceError",
        "RedisPresence",
    ]
    for name in presence_pkg.__all__:
        assert hasattr(presence_pkg, name)


async def test_track_lists_meta_with_ref_and_broadcasts_join(
    presence: MemoryPresence, pubsub: MemoryPubSub, recorder: Any
) -> None:
    rec = await recorder(pubsub, "room:1")
    ref = await presence.track(Chan(), "room:1", "u1", {"online_at": 1})
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", ref)
    meta = {"online_at": 1, "phx_ref": ref}
    assert presence.list("room:1") == {"u1": {"metas": [meta]}}
    assert presence.get_by_key("room:1", "u1") == {"metas": [meta]}
    assert rec.payloads() == [{"joins": {"u1": {"metas": [meta]}}, "leaves": {}}]
    assert rec.messages[0].topic == "room:1"


async def test_refs_are_unique(presence: MemoryPresence) -> None:
    refs = {await presence.track(Chan(), "room:1", "u1", {}) for _ in range(50)}
    assert len(refs) == 50


async def test_same_owner_topic_key_twice_is_already_tracked(presence: MemoryPresence) -> None:
    chan = Chan()
    await presence.track(chan, "room:1", "u1", {})
    with pytest.raises(AlreadyTracked) as err:
        await presence.track(chan, "room:1", "u1", {"again": True})
    assert (err.value.topic, err.value.key) == ("room:1", "u1")
    # the same owner may track other keys and other topics
    await presence.track(chan, "room:1", "u2", {})
    await presence.track(chan, "room:2", "u1", {})
    assert len(presence.list("room:1")["u1"]["metas"]) == 1
    assert set(presence.list("room:1")) == {"u1", "u2"}
    assert set(presence.list("room:2")) == {"u1"}


async def test_multi_device_metas_in_tracking_order_and_single_leave(
    presence: MemoryPresence, pubsub: MemoryPubSub, recorder: Any
) -> None:
    """Scenario 44 at the data level."""
    rec = await recorder(pubsub, "room:1")
    phone, laptop = Chan(), Chan()
    r1 = await presence.track(phone, "room:1", "u1", {"device": "phone"})
    r2 = await presence.track(laptop, "room:1", "u1", {"device": "laptop"})
    assert r1 != r2
    assert presence.list("room:1") == {
        "u1": {"metas": [{"device": "phone", "phx_ref": r1}, {"device": "laptop", "phx_ref": r2}]}
    }
    await presence.untrack_all(phone)
    assert rec.payloads()[-1] == {
        "joins": {},
        "leaves": {"u1": {"metas": [{"device": "phone", "phx_ref": r1}]}},
    }
    assert presence.list("room:1") == {"u1": {"metas": [{"device": "laptop", "phx_ref": r2}]}}


async def test_update_replaces_meta_with_new_ref_and_diffs_both_sides(
    presence: MemoryPresence, pubsub: MemoryPubSub, recorder: Any
) -> None:
    """Scenario 43 at the data level."""
    rec = await recorder(pubsub, "room:1")
    chan = Chan()
    r1 = await presence.track(chan, "room:1", "u1", {"status": "online"})
    r2 = await presence.update(chan, "room:1", "u1", {"status": "away"})
    assert r2 != r1
    new = {"status": "away", "phx_ref": r2, "phx_ref_prev": r1}
    assert rec.payloads()[-1] == {
        "joins": {"u1": {"metas": [new]}},
        "leaves": {"u1": {"metas": [{"status": "online", "phx_ref": r1}]}},
    }
    assert presence.list("room:1") == {"u1": {"metas": [new]}}
    r3 = await presence.update(chan, "room:1", "u1", {"status": "busy"})
    assert presence.get_by_key("room:1", "u1") == {
        "metas": [{"status": "busy", "phx_ref": r3, "phx_ref_prev": r2}]
    }


async def test_update_keeps_the_meta_position(presence: MemoryPresence) -> None:
    first, second = Chan(), Chan()
    await presence.track(first, "room:1", "u1", {"n": 1})
    await presence.track(second, "room:1", "u1", {"n": 2})
    await presence.update(first, "room:1", "u1", {"n": 3})
    assert [m["n"] for m in presence.list("room:1")["u1"]["metas"]] == [3, 2]


async def test_update_without_presence(presence: MemoryPresence) -> None:
    chan = Chan()
    with pytest.raises(NoPresence):
        await presence.update(chan, "room:1", "u1", {})
    await presence.track(chan, "room:1", "u1", {})
    with pytest.raises(NoPresence):
        await presence.update(Chan(), "room:1", "u1", {})  # another owner
    with pytest.raises(NoPresence):
        await presence.update(chan, "room:1", "u2", {})
    await presence.untrack(chan, "room:1", "u1")
    with pytest.raises(NoPresence):
        await presence.update(chan, "room:1", "u1", {})


async def test_untrack_leaves_and_is_idempotent(
    presence: MemoryPresence, pubsub: MemoryPubSub, recorder: Any
) -> None:
    """Scenario 42 at the data level: the owner's meta leaves, the others stay."""
    rec = await recorder(pubsub, "room:1")
    a, b = Chan(), Chan()
    ra = await presence.track(a, "room:1", "u1", {"x": 1})
    rb = await presence.track(b, "room:1", "u2", {"x": 2})
    await presence.untrack(a, "room:1", "u1")
    assert rec.payloads()[-1] == {"joins": {}, "leaves": {"u1": {"metas": [{"x": 1, "phx_ref": ra}]}}}
    assert presence.list("room:1") == {"u2": {"metas": [{"x": 2, "phx_ref": rb}]}}
    assert presence.get_by_key("room:1", "u1") is None
    count = len(rec.payloads())
    await presence.untrack(a, "room:1", "u1")
    await presence.untrack(Chan(), "room:1", "u2")  # not the owner: nothing happens
    await presence.untrack_all(Chan())
    assert len(rec.payloads()) == count
    assert set(presence.list("room:1")) == {"u2"}
    # untracked keys can be tracked again by the same owner
    await presence.track(a, "room:1", "u1", {})


async def test_untrack_all_sends_one_diff_per_topic(
    presence: MemoryPresence, pubsub: MemoryPubSub, recorder: Any
) -> None:
    rec1 = await recorder(pubsub, "room:1")
    rec2 = await recorder(pubsub, "room:2")
    chan, other = Chan(), Chan()
    r1 = await presence.track(chan, "room:1", "u1", {})
    r2 = await presence.track(chan, "room:1", "u2", {})
    r3 = await presence.track(chan, "room:2", "u1", {})
    r4 = await presence.track(other, "room:2", "u9", {})
    await presence.untrack_all(chan)
    assert rec1.payloads()[-1] == {
        "joins": {},
        "leaves": {"u1": {"metas": [{"phx_ref": r1}]}, "u2": {"metas": [{"phx_ref": r2}]}},
    }
    assert rec2.payloads()[-1] == {"joins": {}, "leaves": {"u1": {"metas": [{"phx_ref": r3}]}}}
    assert len(rec1.payloads()) == 3 and len(rec2.payloads()) == 3
    assert presence.list("room:1") == {}
    assert presence.list("room:2") == {"u9": {"metas": [{"phx_ref": r4}]}}
    assert presence.local_entries == 1
    assert PRESENCE_ENTRIES._value.get() == 1


async def test_presence_state_then_diff_for_own_track(
    presence: MemoryPresence, pubsub: MemoryPubSub, recorder: Any
) -> None:
    """Scenario 41 at the data level: the list after track holds the meta the diff announced."""
    other = await recorder(pubsub, "room:1")
    ref = await presence.track(Chan(), "room:1", "u1", {"online_at": 1})
    state = presence.list("room:1")
    assert state == {"u1": {"metas": [{"online_at": 1, "phx_ref": ref}]}}
    assert other.payloads() == [{"joins": state, "leaves": {}}]
    assert other.messages[0].origin is None


async def test_diffs_only_reach_the_topic(
    presence: MemoryPresence, pubsub: MemoryPubSub, recorder: Any
) -> None:
    rec = await recorder(pubsub, "room:2")
    await presence.track(Chan(), "room:1", "u1", {})
    assert rec.messages == []


async def test_list_returns_copies(presence: MemoryPresence) -> None:
    await presence.track(Chan(), "room:1", "u1", {"a": 1})
    listed = presence.list("room:1")
    listed["u1"]["metas"][0]["a"] = 2
    listed["u2"] = {}
    assert presence.list("room:1")["u1"]["metas"][0]["a"] == 1
    assert "u2" not in presence.list("room:1")
    assert presence.list("nobody") == {}


async def test_meta_is_copied_and_ref_cannot_be_forged(presence: MemoryPresence) -> None:
    meta = {"a": 1, "phx_ref": "forged"}
    ref = await presence.track(Chan(), "room:1", "u1", meta)
    assert ref != "forged"
    meta["a"] = 2
    assert presence.list("room:1")["u1"]["metas"] == [{"a": 1, "phx_ref": ref}]


async def test_integer_key_becomes_a_string(presence: MemoryPresence) -> None:
    chan = Chan()
    await presence.track(chan, "room:1", 42, {})  # type: ignore[arg-type]
    assert set(presence.list("room:1")) == {"42"}
    await presence.untrack(chan, "room:1", 42)  # type: ignore[arg-type]
    assert presence.list("room:1") == {}


@pytest.mark.parametrize(
    ("topic", "key", "meta", "message"),
    [
        ("", "u1", {}, "topic"),
        (None, "u1", {}, "topic"),
        ("room:1", None, {}, "key"),
        ("room:1", True, {}, "key"),
        ("room:1", "u1", [], "meta must be a dict"),
        ("room:1", "u1", {"when": object()}, "JSON"),
        ("room:1", "u1", {1: "non-string key"}, "JSON"),
    ],
)
async def test_bad_input_is_a_clear_error(
    presence: MemoryPresence, topic: Any, key: Any, meta: Any, message: str
) -> None:
    chan = Chan()
    with pytest.raises(TypeError, match=message):
        await presence.track(chan, topic, key, meta)
    assert presence.local_entries == 0
    await presence.track(chan, "room:1", "u1", {})
    with pytest.raises(TypeError):
        await presence.update(chan, "room:1", "u1", meta if not isinstance(meta, dict) else {"x": object()})
    assert presence.list("room:1")["u1"]["metas"][0].keys() == {"phx_ref"}
