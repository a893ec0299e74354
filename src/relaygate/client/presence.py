"""Client-side presence merge, behaving like phoenix.js `presence.js` (identity is `phx_ref`).

The static functions are pure: they return a new state and never mutate their arguments.
`PresenceState` binds them to a channel's `presence_state`/`presence_diff` events and buffers
diffs until a `presence_state` has arrived for the channel's current join.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relaygate.client.channel import ClientChannel

State = dict[str, dict[str, Any]]
OnJoin = Callable[[str, dict[str, Any] | None, dict[str, Any]], None]
OnLeave = Callable[[str, dict[str, Any], dict[str, Any]], None]

_MAX_ARRAY_INDEX = 2**32 - 2


def _is_array_index(key: str) -> bool:
    return key.isdigit() and key.isascii() and (key == "0" or key[0] != "0") and int(key) <= _MAX_ARRAY_INDEX


def _keys(obj: Mapping[str, Any]) -> Iterator[str]:
    """Keys in JavaScript property order: array indices ascending, then insertion order."""
    indices = sorted((k for k in obj if _is_array_index(k)), key=int)
    yield from indices
    yield from (k for k in obj if not _is_array_index(k))


def _refs(presence: Mapping[str, Any]) -> list[Any]:
    return [meta.get("phx_ref") for meta in presence["metas"]]


def _noop(*_args: object) -> None:
    return None


def sync_state(
    current: Mapping[str, Any],
    new: Mapping[str, Any],
    on_join: OnJoin | None = None,
    on_leave: OnLeave | None = None,
) -> State:
    """Turn a full server state into a diff against `current` and apply it."""
    state: State = copy.deepcopy(dict(current))
    joins: State = {}
    leaves: State = {}
    for key in _keys(state):
        if key not in new:
            leaves[key] = state[key]
    for key in _keys(new):
        new_presence = new[key]
        current_presence = state.get(key)
        if current_presence is None:
            joins[key] = new_presence
            continue
        new_refs, cur_refs = _refs(new_presence), _refs(current_presence)
        joined = [m for m in new_presence["metas"] if m.get("phx_ref") not in cur_refs]
        left = [m for m in current_presence["metas"] if m.get("phx_ref") not in new_refs]
        if joined:
            joins[key] = {**new_presence, "metas": joined}
        if left:
            leaves[key] = {**copy.deepcopy(current_presence), "metas": left}
    return sync_diff(state, {"joins": joins, "leaves": leaves}, on_join, on_leave)


def sync_diff(
    state: Mapping[str, Any],
    diff: Mapping[str, Any],
    on_join: OnJoin | None = None,
    on_leave: OnLeave | None = None,
) -> State:
    """Apply a `{joins, leaves}` diff: joins first (replacing metas by phx_ref), then leaves."""
    result: State = copy.deepcopy(dict(state))
    diff = copy.deepcopy(dict(diff))
    joins: Mapping[str, Any] = diff.get("joins") or {}
    leaves: Mapping[str, Any] = diff.get("leaves") or {}
    join_cb = on_join or _noop
    leave_cb = on_leave or _noop
    for key in _keys(joins):
        new_presence = joins[key]
        current_presence = result.get(key)
        result[key] = copy.deepcopy(new_presence)
        if current_presence is not None:
            joined_refs = _refs(result[key])
            kept = [m for m in current_presence["metas"] if m.get("phx_ref") not in joined_refs]
            result[key]["metas"][:0] = kept
        join_cb(key, current_presence, new_presence)
    for key in _keys(leaves):
        left_presence = leaves[key]
        current = result.get(key)
        if current is None:
            continue
        to_remove = _refs(left_presence)
        current["metas"] = [m for m in current["metas"] if m.get("phx_ref") not in to_remove]
        leave_cb(key, current, left_presence)
        if not current["metas"]:
            del result[key]
    return result


def list_presences(
    presences: Mapping[str, Any], chooser: Callable[[str, Any], Any] | None = None
) -> list[Any]:
    """`chooser(key, presence)` for every key (the presences themselves by default)."""
    if chooser is None:
        return [presences[key] for key in _keys(presences)]
    return [chooser(key, presences[key]) for key in _keys(presences)]


class PresenceState:
    """Presence of one channel, kept in sync from its `presence_state`/`presence_diff` events."""

    sync_state = staticmethod(sync_state)
    sync_diff = staticmethod(sync_diff)

    def __init__(
        self, channel: ClientChannel, state_event: str = "presence_state", diff_event: str = "presence_diff"
    ) -> None:
        self.state: State = {}
        self.pending_diffs: list[Mapping[str, Any]] = []
        self.join_ref: str | None = None
        self._channel = channel
        self._on_join: OnJoin = _noop
        self._on_leave: OnLeave = _noop
        self._on_sync: Callable[[], None] = _noop
        channel.on(state_event, self._handle_state)
        channel.on(diff_event, self._handle_diff)

    def on_join(self, callback: OnJoin) -> None:
        self._on_join = callback

    def on_leave(self, callback: OnLeave) -> None:
        self._on_leave = callback

    def on_sync(self, callback: Callable[[], None]) -> None:
        self._on_sync = callback

    def list(self, chooser: Callable[[str, Any], Any] | None = None) -> list[Any]:
        return list_presences(self.state, chooser)

    def in_pending_sync_state(self) -> bool:
        return self.join_ref is None or self.join_ref != self._channel.join_ref

    def _handle_state(self, payload: Any) -> None:
        self.join_ref = self._channel.join_ref
        self.state = sync_state(self.state, payload, self._on_join, self._on_leave)
        for diff in self.pending_diffs:
            self.state = sync_diff(self.state, diff, self._on_join, self._on_leave)
        self.pending_diffs = []
        self._on_sync()

    def _handle_diff(self, payload: Any) -> None:
        if self.in_pending_sync_state():
            self.pending_diffs.append(payload)
            return
        self.state = sync_diff(self.state, payload, self._on_join, self._on_leave)
        self._on_sync()
