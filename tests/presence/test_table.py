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
