"""The merge of a recovery read with live broadcasts: no gap, no duplicate, replays first."""

from __future__ import annotations

import pytest

from relaygate.history import Merge, Position


def p(offset: int, epoch: str = "e") -> Position:
    return Position(epoch, offset)


def test_live_items_wait_while_reading_then_follow_the_replay_without_duplicates() -> None:
    merge: Merge[str] = Merge()
    assert not merge.live(p(5), "m5")  # published while the stream was being read: also in the read
    assert not merge.live(p(6), "m6")  # published after the read
    out = merge.recovered(p(5), [(p(3), "m3"), (p(4), "m4"), (p(5), "r5")])
    assert out == ["m3", "m4", "r5", "m6"]
    assert merge.reading
    assert merge.more() == []
    assert not merge.reading
    assert not merge.live(p(6), "late duplicate")
    assert merge.live(p(7), "m7")


def test_items_arriving_while_the_replay_is_delivered_still_wait_their_turn() -> None:
    merge: Merge[str] = Merge()
    assert merge.recovered(p(2), [(p(2), "m2")]) == ["m2"]
    assert not merge.live(p(3), "m3")  # arrived while m2 went through handle_out
    assert merge.more() == ["m3"]
    assert merge.reading
    assert merge.more() == []
    assert merge.live(p(4), "m4")


def test_a_fresh_join_announces_the_position_before_what_it_gets_live() -> None:
    merge: Merge[str] = Merge()
    merge.live(p(8), "m8")
    merge.live(p(9), "m9")
    position, out = merge.fresh(p(8))  # m8 was in the stream when read, yet arrived after subscribing
    assert position == p(7)
    assert out == ["m8", "m9"]


def test_a_fresh_join_on_an_unreadable_stream_passes_everything() -> None:
    merge: Merge[str] = Merge()
    merge.live(p(1), "m1")
    merge.live(None, "plain")
    assert merge.fresh(None) == (None, ["m1", "plain"])
    assert merge.more() == []
    assert not merge.live(p(1), "again")  # delivered already
    assert merge.live(p(2), "m2")


def test_other_epochs_are_never_taken_for_duplicates() -> None:
    merge: Merge[str] = Merge()
    merge.live(p(1, "new"), "n1")
    assert merge.recovered(p(9), [(p(9), "m9")]) == ["m9", "n1"]


@pytest.mark.parametrize("buffered", [0, 1, 3])
def test_every_offset_goes_out_exactly_once_in_order(buffered: int) -> None:
    """Publishes 1..10; the read sees up to 6; 5..(5+buffered) also arrive live."""
    merge: Merge[int] = Merge()
    for offset in range(5, 5 + buffered):
        merge.live(p(offset), offset)
    out = merge.recovered(p(6), [(p(o), o) for o in range(3, 7)])
    for offset in range(7, 11):
        merge.live(p(offset), offset)
    while more := merge.more():
        out += more
    assert out == list(range(3, 11))
