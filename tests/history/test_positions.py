from __future__ import annotations

import pytest

from relaygate.history import Keep, Position, Retention, parse


def test_a_position_round_trips_and_always_has_a_non_digit() -> None:
    position = Position("a1b2.3", 42)
    assert str(position) == "a1b2.3:42"
    assert parse(str(position)) == position
    assert not str(Position("123", 4)).isdigit()


@pytest.mark.parametrize(
    "value",
    [
        None,
        12,
        "12",
        "",
        ":3",
        "e:",
        "e:-1",
        "e:01",
        "e:1.5",
        "e:٣",
        "a:b:3",
        "e" * 70 + ":1",
        ["e:1"],
        "e:1 ",
    ],
)
def test_garbage_is_not_a_position(value: object) -> None:
    assert parse(value) is None


def test_keep_is_validated() -> None:
    assert Keep(100, 300).ttl_ms == 300_000
    for size, ttl in [(0, 1.0), (True, 1.0), (10, 0), (10, -1), (10, 10**9)]:
        with pytest.raises(ValueError):
            Keep(size, ttl)  # type: ignore[arg-type]


def test_retention_matches_exact_and_prefix_patterns_first_declared_wins() -> None:
    retention = Retention()
    assert not retention
    rooms, lobby = Keep(100, 300), Keep(5, 10)
    retention.keep("room:lobby", lobby)
    retention.keep("room:*", rooms)
    assert retention
    assert retention.match("room:lobby") is lobby
    assert retention.match("room:1") is rooms
    assert retention.match("user:1") is None
    assert retention.match("phoenix") is None
