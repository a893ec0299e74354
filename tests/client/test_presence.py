"""presence.js merge semantics (syncState/syncDiff/list), as pure functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from relaygate.client import list_presences, sync_diff, sync_state
from tests.conformance.node import run_driver


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


SEQUENCE: list[tuple[str, dict[str, Any]]] = [
    ("diff", {"joins": {"u1": p("1", d="a")}, "leaves": {}}),
    ("state", {"u1": p("1", "2"), "10": p("3"), "b": p("4")}),
    ("diff", {"joins": {"u1": {"metas": [{"phx_ref": "5", "phx_ref_prev": "1"}]}}, "leaves": {"u1": p("1")}}),
    ("diff", {"joins": {"2": p("6")}, "leaves": {"b": p("4"), "ghost": p("9")}}),
    ("state", {"u1": p("5"), "2": p("6", x=1)}),
    ("diff", {"joins": {}, "leaves": {"u1": p("5"), "2": p("6")}}),
]


def recorder(calls: list[Any]) -> Callable[..., None]:
    return lambda *args: calls.append(list(args))


@pytest.mark.node
async def test_merge_matches_phoenix_js_presence() -> None:
    """The same state/diff sequence through phoenix.js Presence and ours gives identical results."""
    observed = await run_driver("ws://127.0.0.1:1/socket", [{"op": "presence_static", "ops": SEQUENCE}])
    expected = [o for o in observed if o["type"] == "presence_static"]
    state: dict[str, Any] = {}
    for (kind, arg), js in zip(SEQUENCE, expected, strict=True):
        joins: list[Any] = []
        leaves: list[Any] = []
        merge = sync_state if kind == "state" else sync_diff
        state = merge(state, arg, recorder(joins), recorder(leaves))
        assert state == js["state"]
        assert list_presences(state, lambda key, _p: key) == js["keys"]
        assert joins == js["joins"]
        assert leaves == js["leaves"]
