"""presence.js merge semantics (syncState/syncDiff/list), as pure functions."""

from __future__ import annotations

from typing import Any

from relaygate.client import list_presences, sync_diff, sync_state


def p(*refs: str, **extra: Any) -> dict[str, Any]:
    return {"metas": [{"phx_ref": r, **extra} for r in refs]}


def test_sync_state_joins_new_keys_and_leaves_missing_ones() -> None:
    joined: list[tuple[str, Any, Any]] = []
    left: list[tuple[str, Any, Any]] = []
    state = sync_state({"u1": p("1")}, {"u2": p("2")}, lambda *a: joined.append(a), lambda *a: left.append(a))
    assert state == {"u2": p("2")}
    assert joined == [("u2", None, p("2"))]
    assert left == [("u1", {"metas": []}, p("1"))]


def test_sync_state_diffs_metas_by_phx_ref() -> None:
    current = {"u1": p("1", "2")}
    joined: list[Any] = []
    left: list[Any] = []
    state = sync_state(current, {"u1": p("2", "3")}, lambda *a: joined.append(a), lambda *a: left.append(a))
    assert [m["phx_ref"] for m in state["u1"]["metas"]] == ["2", "3"]
    assert joined == [("u1", p("1", "2"), p("3"))]
    assert left == [("u1", p("2", "3"), p("1"))]
    assert current == {"u1": p("1", "2")}, "inputs are not mutated"


def test_sync_diff_joins_put_existing_metas_first_and_do_not_duplicate() -> None:
    state = sync_diff({"u1": p("1")}, {"joins": {"u1": p("2")}, "leaves": {}})
    assert [m["phx_ref"] for m in state["u1"]["metas"]] == ["1", "2"]
    state = sync_diff(state, {"joins": {"u1": p("2", status="away")}, "leaves": {}})
    assert state["u1"]["metas"] == [{"phx_ref": "1"}, {"phx_ref": "2", "status": "away"}]


def test_update_diff_replaces_the_meta() -> None:
    state = {"u1": p("1", status="online")}
    diff = {
        "joins": {"u1": {"metas": [{"status": "away", "phx_ref": "2", "phx_ref_prev": "1"}]}},
        "leaves": {"u1": p("1", status="online")},
    }
    state = sync_diff(state, diff)
    assert state == {"u1": {"metas": [{"status": "away", "phx_ref": "2", "phx_ref_prev": "1"}]}}


def test_leave_of_the_last_meta_removes_the_key_and_unknown_leaves_are_ignored() -> None:
    state = sync_diff({"u1": p("1", "2")}, {"joins": {}, "leaves": {"u1": p("1"), "ghost": p("9")}})
    assert state == {"u1": p("2")}
    state = sync_diff(state, {"joins": {}, "leaves": {"u1": p("2")}})
    assert state == {}


def test_joined_presence_fields_besides_metas_replace_the_stored_ones() -> None:
    state = sync_diff(
        {"u1": {"metas": [{"phx_ref": "1"}], "user": "old"}},
        {"joins": {"u1": {"metas": [{"phx_ref": "2"}], "user": "new"}}, "leaves": {}},
    )
    assert state == {"u1": {"metas": [{"phx_ref": "1"}, {"phx_ref": "2"}], "user": "new"}}


def test_list_uses_javascript_key_order_and_chooser() -> None:
    state = {"b": p("1"), "10": p("2"), "a": p("3"), "2": p("4"), "__proto__": p("5")}
    assert list_presences(state, lambda key, _pres: key) == ["2", "10", "b", "a", "__proto__"]
    assert list_presences({"x": p("1")}) == [p("1")]
