"""PresenceTable diffs when a snapshot replaces the mirror (the Redis adapter after a reload)."""

from __future__ import annotations

from relaygate.presence.table import Diffs, Entry, PresenceTable


def test_same_meta_under_a_new_seq_is_no_diff() -> None:
    """After a Redis restart a node re-asserts its entries with new seqs: clients must see nothing.

    A diff with the same phx_ref in joins and leaves would drop the meta on every client
    (presence.js applies joins, then leaves).
    """
    table = PresenceTable()
    table.replace_all({"n2:1": Entry("room:1", "u2", {"phx_ref": "r2"}, 7)}, Diffs())
    diffs = Diffs()
    table.replace_all({"n2:1": Entry("room:1", "u2", {"phx_ref": "r2"}, 1)}, diffs)
    assert not diffs
    assert table.list("room:1") == {"u2": {"metas": [{"phx_ref": "r2"}]}}
    assert table.get("n2:1") == Entry("room:1", "u2", {"phx_ref": "r2"}, 1)


def test_changed_meta_is_a_leave_and_a_join_and_removals_leave() -> None:
    table = PresenceTable()
    table.replace_all(
        {
            "a": Entry("room:1", "u1", {"phx_ref": "r1"}, 1),
            "b": Entry("room:1", "u2", {"phx_ref": "r2"}, 2),
        },
        Diffs(),
    )
    diffs = Diffs()
    table.replace_all({"b": Entry("room:1", "u2", {"phx_ref": "r3", "phx_ref_prev": "r2"}, 3)}, diffs)
    assert dict(diffs.payloads()) == {
        "room:1": {
            "joins": {"u2": {"metas": [{"phx_ref": "r3", "phx_ref_prev": "r2"}]}},
            "leaves": {"u1": {"metas": [{"phx_ref": "r1"}]}, "u2": {"metas": [{"phx_ref": "r2"}]}},
        }
    }


def test_state_stays_equal_to_the_list_through_any_changes() -> None:
    """The encoded state is rebuilt from cached per-key fragments; it must always decode to list()."""
    import random

    import orjson

    from relaygate.presence.table import Diffs, Entry, PresenceTable

    rng = random.Random(7)
    table = PresenceTable()
    live: list[str] = []
    for step in range(3000):
        action = rng.random()
        if live and action < 0.35:
            entry_id = live.pop(rng.randrange(len(live)))
            table.remove(entry_id, Diffs())
        else:
            entry_id = str(step) if action < 0.8 or not live else rng.choice(live)
            key = str(rng.randrange(40))
            if entry_id not in live:
                live.append(entry_id)
            old = table.get(entry_id)
            table.put(entry_id, Entry("t", old.key if old else key, {"phx_ref": str(step)}, step), Diffs())
        if rng.random() < 0.5:
            assert orjson.loads(table.state("t")) == table.list("t")
    assert orjson.loads(table.state("t")) == table.list("t")
    for entry_id in live:
        table.remove(entry_id, Diffs())
    assert table.state("t") == b"{}"


def test_state_of_a_churning_room_stays_small_and_equal_to_the_list() -> None:
    """Changed keys leave blanks in the encoded state (valid JSON) until a rebuild: at most a
    quarter of it is blank, and it always decodes to the list."""
    import orjson

    table = PresenceTable()
    for i in range(200):
        table.put(f"e{i}", Entry("t", f"k{i}", {"i": i}, i), Diffs())
    for step in range(2000):  # the oldest leaves, a new one joins: the room keeps its size
        table.remove(f"e{step}", Diffs())
        table.put(f"e{step + 200}", Entry("t", f"k{step + 200}", {"i": step}, step + 200), Diffs())
        state = table.state("t")
        assert orjson.loads(state) == table.list("t")
        assert len(state) <= len(orjson.dumps(table.list("t"))) * 4 / 3 + 2
    assert table.state("t") is table.state("t")  # encoded once per change of the topic
