"""Multi-device presence through the official phoenix.js `Presence` (scenarios 41, 42, 44, 45).

Shared by the single-node test (MemoryPresence) and the two-node test (RedisPresence), which
puts the second device on the other node. Device "a" (socket main) and device "b" (socket b) both
track key "u1"; "a" watches with `new Presence(channel)`. Then "a" crashes and rejoins (a new
`presence_state` must end the pending-diff state and fire onSync), and "b" disconnects (a leave of
only b's meta; the key stays).
"""

from __future__ import annotations

from typing import Any

from tests.conformance.node import Observation, frames, select

OPTIONS = {"rejoinAfterMs": [50], "reconnectAfterMs": [60000]}


def steps(topic: str, url_b: str | None = None) -> list[dict[str, Any]]:
    def device(name: str) -> dict[str, Any]:
        return {"track": "u1", "meta": {"device": name}}

    second: dict[str, Any] = {"op": "socket", "socket": "b", "opts": OPTIONS}
    if url_b is not None:
        second["url"] = url_b
    return [
        {"op": "connect"},
        second,
        {"op": "connect", "socket": "b"},
        {"op": "channel", "chan": "a", "topic": topic, "params": device("a"), "presence": True},
        {"op": "join", "chan": "a"},
        {"op": "until", "match": {"type": "presence_sync", "chan": "a"}},
        {"op": "channel", "chan": "b", "topic": topic, "params": device("b"), "socket": "b"},
        {"op": "join", "chan": "b"},
        # onJoin fires for a's meta from the state and again from a's own diff, then for b's
        {"op": "until", "match": {"type": "presence_join", "chan": "a", "key": "u1"}, "count": 3},
        {"op": "presence_list", "chan": "a"},
        # crash -> phx_error -> rejoin (new join_ref) -> a new presence_state
        {"op": "push", "chan": "a", "event": "crash"},
        {"op": "until", "match": {"type": "chan_error", "chan": "a"}},
        {"op": "until", "match": {"type": "frame", "socket": "main", "event": "presence_state"}, "count": 2},
        {"op": "sleep", "ms": 100},
        {"op": "presence_list", "chan": "a"},
        {"op": "disconnect", "socket": "b"},
        {"op": "until", "match": {"type": "presence_leave", "chan": "a", "key": "u1"}, "count": 2},
        {"op": "presence_list", "chan": "a"},
    ]


def devices(presence: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["device"], m["phx_ref"]) for m in presence["metas"]]


def check(observations: list[Observation]) -> None:
    """Assert what phoenix.js Presence reported along the scenario."""
    joined = select(observations, type="join", chan="a", status="ok")
    assert len(joined) == 2  # the first join and the rejoin after the crash
    # one presence_state per join, carrying that join's JR (the "event" observation is taken
    # before presence.js reads the payload: syncState consumes the object it is given)
    assert [f["join_ref"] for f in frames(observations, socket="main", event="presence_state")] == [
        o["join_ref"] for o in select(observations, type="sent", socket="main", event="phx_join")
    ]
    states = select(observations, type="event", chan="a", event="presence_state")
    [(_, ref_a1)] = devices(states[0]["payload"]["u1"])

    # b's join: onJoin for the existing key, with a's meta as current; one key, two metas
    joins = select(observations, type="presence_join", chan="a", key="u1")
    assert joins[0]["current"] is None and devices(joins[0]["joined"]) == [("a", ref_a1)]
    [join_b] = [j for j in joins if devices(j["joined"])[0][0] == "b"]
    [(_, ref_b)] = devices(join_b["joined"])
    assert ref_b != ref_a1 and devices(join_b["current"]) == [("a", ref_a1)]
    lists = select(observations, type="presence_list", chan="a")
    assert [entry["key"] for entry in lists[0]["list"]] == ["u1"]
    assert devices(lists[0]["list"][0]) == [("a", ref_a1), ("b", ref_b)]

    # after the crash and rejoin: a new presence_state (a tracked again under a new ref), onSync
    after = states[1]
    metas = devices(after["payload"]["u1"])
    assert ("b", ref_b) in metas and len(metas) == 2
    [ref_a2] = [ref for device, ref in metas if device == "a"]
    assert select(observations, type="chan_error", chan="a")[0]["seq"] < after["seq"]
    assert ref_a2 != ref_a1
    rejoin_reply = joined[1]["seq"]
    assert select(observations, type="presence_sync", chan="a") and any(
        o["seq"] > rejoin_reply for o in select(observations, type="presence_sync", chan="a")
    )
    assert sorted(devices(lists[1]["list"][0])) == sorted([("a", ref_a2), ("b", ref_b)])
    leaves = select(observations, type="presence_leave", chan="a", key="u1")
    assert devices(leaves[0]["left"]) == [("a", ref_a1)]  # the crashed meta, from the new state

    # b disconnects: a leave of only b's meta, and the key stays with a's
    assert devices(leaves[1]["left"]) == [("b", ref_b)]
    assert devices(leaves[1]["current"]) == [("a", ref_a2)]
    assert [entry["key"] for entry in lists[2]["list"]] == ["u1"]
    assert devices(lists[2]["list"][0]) == [("a", ref_a2)]
