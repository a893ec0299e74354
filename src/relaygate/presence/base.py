"""The Presence contract: per-owner bookkeeping and validation shared by every adapter.

An adapter only decides how this node's changes become visible (``_commit``): the memory adapter
applies them to its table at once, the Redis adapter replicates them through Redis first.
"""

from __future__ import annotations

import abc
import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

import orjson

from relaygate.presence.table import Diffs, Entry, Meta, PresenceTable, new_ref
from relaygate.pubsub import PubSub
from relaygate.telemetry.metrics import PRESENCE_ENTRIES

DIFF_BUDGET = 1000
"""Default ``presence_diff`` frames per second a busy topic may cost (one write per member each).
A frame costs ~15 µs of server CPU (mostly the kernel's send), so this caps a topic's diffs at
about 1.5 % of a core; a 100-member room gets a 100 ms window, 20 members or fewer 20 ms."""


class PresenceError(Exception):
    """Base of the errors ``track``/``update`` report to the caller."""

    def __init__(self, message: str, topic: str, key: str) -> None:
        super().__init__(message)
        self.topic = topic
        self.key = key


class AlreadyTracked(PresenceError):
    """The owner already tracks this (topic, key) (Phoenix's ``{:error, {:already_tracked, ...}}``)."""

    def __init__(self, topic: str, key: str) -> None:
        super().__init__(f"already tracked: topic {topic!r}, key {key!r}", topic, key)


class NoPresence(PresenceError):
    """``update`` of a (topic, key) the owner does not track (Phoenix's ``{:error, :nopresence}``)."""

    def __init__(self, topic: str, key: str) -> None:
        super().__init__(f"no presence: topic {topic!r}, key {key!r}", topic, key)


@dataclass(slots=True)
class Tracked:
    """One of this node's own entries as the node wants it to be (meta includes phx_ref); never
    changed once made (not frozen for the cost of creating one, as ``Entry``)."""

    topic: str
    key: str
    meta: Meta


Changes = dict[str, Tracked | None]
"""Entry id -> its new state, or None for a removal; applied in insertion order."""


@dataclass(slots=True)
class _Owner:
    obj: object  # held so that id(obj) cannot be reused while the owner still tracks something
    entries: dict[tuple[str, str], str]


class Presence(abc.ABC):
    """One per node. Diffs go to this node's subscribers with ``pubsub.local_broadcast``.

    Diffs are coalesced per topic: the changes of a window go out as one ``presence_diff`` that
    presence.js merges into the same state as the changes one by one. The window opens with the
    first change after a quiet spell and lasts ``diff_window`` seconds, longer for larger rooms so
    that a topic's diffs cost at most about ``diff_budget`` frames per second (one frame per
    member per diff), up to ``max_diff_window``. The room's size is the larger of this node's
    subscribers and the keys listed on the topic (every node's), so a room spread over a cluster
    costs about the budget in all, not the budget on every node. A room of 5,000 filling up thus
    gets a diff per second instead of 5,000 diffs to each member. ``diff_window=0`` sends every
    change at once.
    """

    def __init__(
        self,
        pubsub: PubSub,
        *,
        diff_window: float = 0.02,
        diff_budget: int = DIFF_BUDGET,
        max_diff_window: float = 1.0,
    ) -> None:
        if diff_window < 0 or max_diff_window < diff_window or diff_budget < 1:
            raise ValueError("need 0 <= diff_window <= max_diff_window and diff_budget >= 1")
        self.pubsub = pubsub
        self._table = PresenceTable()
        self._owners: dict[int, _Owner] = {}
        self._local: dict[str, Tracked] = {}
        self._entry_ids = itertools.count(1)
        self._window = diff_window
        self._budget = diff_budget
        self._max_window = max_diff_window
        self._pending = Diffs()
        self._timers: dict[str, asyncio.TimerHandle] = {}

    async def start(self) -> None:
        """Open what the adapter needs."""
        return None

    async def stop(self) -> None:
        """Release what the adapter holds; pending diffs go out now."""
        self._flush_all()

    def list(self, topic: str) -> dict[str, dict[str, Any]]:
        """``{"key": {"metas": [meta, ...]}}``, metas per key in tracking order."""
        return self._table.list(topic)

    def state(self, topic: str) -> orjson.Fragment:
        """``list(topic)`` encoded, for a ``presence_state`` push: ``socket.push("presence_state",
        presence.state(topic))``. Cheaper than ``list`` in large rooms: only the keys that changed
        since the last call are encoded again (``list`` builds a fresh dict per key)."""
        return orjson.Fragment(self._table.state(topic))

    def get_by_key(self, topic: str, key: str) -> dict[str, Any] | None:
        """``{"metas": [...]}`` for one key, or None when nobody is tracked under it."""
        return self._table.get_by_key(topic, key)

    @property
    def local_entries(self) -> int:
        """How many entries this node tracks itself (for metrics)."""
        return len(self._local)

    async def track(self, owner: object, topic: str, key: str, meta: dict[str, Any]) -> str:
        """Add one meta for (owner, topic, key) and return its phx_ref."""
        return self.track_now(owner, topic, key, meta)

    def track_now(self, owner: object, topic: str, key: str, meta: dict[str, Any]) -> str:
        """:meth:`track` from a plain function: no change ever waits on the cluster."""
        key = _checked(topic, key, meta)
        holder = self._owners.get(id(owner))
        if holder is None:
            holder = self._owners[id(owner)] = _Owner(owner, {})
        elif (topic, key) in holder.entries:
            raise AlreadyTracked(topic, key)
        ref = new_ref()
        entry_id = self._new_entry_id()
        tracked = Tracked(topic, key, {**meta, "phx_ref": ref})
        holder.entries[(topic, key)] = entry_id
        self._local[entry_id] = tracked
        PRESENCE_ENTRIES.set(len(self._local))
        self._commit({entry_id: tracked})
        return ref

    async def update(self, owner: object, topic: str, key: str, meta: dict[str, Any]) -> str:
        """Replace the meta with a new phx_ref (``phx_ref_prev`` = the old one); returns the new ref."""
        return self.update_now(owner, topic, key, meta)

    def update_now(self, owner: object, topic: str, key: str, meta: dict[str, Any]) -> str:
        """:meth:`update` from a plain function."""
        key = _checked(topic, key, meta)
        holder = self._owners.get(id(owner))
        entry_id = None if holder is None else holder.entries.get((topic, key))
        if entry_id is None:
            raise NoPresence(topic, key)
        ref = new_ref()
        previous = self._local[entry_id].meta["phx_ref"]
        tracked = Tracked(topic, key, {**meta, "phx_ref": ref, "phx_ref_prev": previous})
        self._local[entry_id] = tracked
        self._commit({entry_id: tracked})
        return ref

    async def untrack(self, owner: object, topic: str, key: str) -> None:
        """Remove the owner's meta for (topic, key); untracking something untracked is a no-op."""
        self.untrack_now(owner, topic, key)

    def untrack_now(self, owner: object, topic: str, key: str) -> None:
        """:meth:`untrack` from a plain function."""
        holder = self._owners.get(id(owner))
        if holder is None:
            return
        entry_id = holder.entries.pop((topic, str(key)), None)
        if not holder.entries:
            del self._owners[id(owner)]
        if entry_id is None:
            return
        del self._local[entry_id]
        PRESENCE_ENTRIES.set(len(self._local))
        self._commit({entry_id: None})

    async def untrack_all(self, owner: object) -> None:
        """Remove everything the owner tracks."""
        self.release(owner)

    def release(self, owner: object) -> None:
        """Remove everything the owner tracks (the runtime calls this when a channel ends)."""
        changes = self._drop_owner(owner)
        if changes:
            self._commit(changes)

    def _drop_owner(self, owner: object) -> Changes:
        holder = self._owners.pop(id(owner), None)
        if holder is None:
            return {}
        changes: Changes = {}
        for entry_id in holder.entries.values():
            del self._local[entry_id]
            changes[entry_id] = None
        PRESENCE_ENTRIES.set(len(self._local))
        return changes

    def _new_entry_id(self) -> str:
        return str(next(self._entry_ids))

    def _forget_local(self) -> None:
        self._owners.clear()
        self._local.clear()
        PRESENCE_ENTRIES.set(0)

    def _diffs(self) -> Diffs:
        """Where changes record their joins and leaves: straight into the pending window, or a
        fresh collection that :meth:`_emit` sends at once (``diff_window=0``)."""
        return self._pending if self._window else Diffs()

    def _emit(self, diffs: Diffs) -> None:
        """Send changes recorded in ``diffs`` (from :meth:`_diffs`): now, or with their topic's window."""
        if not self._window:
            for topic, payload in diffs.payloads():
                self.pubsub.local_broadcast(topic, "presence_diff", payload)
            return
        if diffs is not self._pending:
            self._pending.merge(diffs)
        timers = self._timers
        for topic in self._pending.fresh():
            if topic not in timers:
                timers[topic] = asyncio.get_running_loop().call_later(
                    self._window_of(topic), self._flush, topic
                )

    def _window_of(self, topic: str) -> float:
        members = max(self.pubsub.subscriber_count(topic), self._table.keys_on(topic))
        return min(self._max_window, max(self._window, members / self._budget))

    def _flush(self, topic: str) -> None:
        self._timers.pop(topic, None)
        payload = self._pending.pop(topic)
        if payload is not None:
            self.pubsub.local_broadcast(topic, "presence_diff", payload)

    def _flush_all(self) -> None:
        """Send every pending diff now (stopping)."""
        for topic in list(self._timers):
            self._timers.pop(topic).cancel()
            self._flush(topic)

    def _apply(self, changes: Changes) -> None:
        """Apply this node's own changes to its table and diff them; ``list`` reflects them at once."""
        diffs = self._diffs()
        table = self._table
        for entry_id, tracked in changes.items():
            if tracked is None:
                table.remove(entry_id, diffs)
                continue
            old = table.get(entry_id)
            seq = self._next_seq() if old is None else old.seq
            table.put(entry_id, Entry(tracked.topic, tracked.key, tracked.meta, seq), diffs)
        self._emit(diffs)

    @abc.abstractmethod
    def _next_seq(self) -> int:
        """The ordering number of a new entry of this node (metas of a key list in seq order)."""

    @abc.abstractmethod
    def _commit(self, changes: Changes) -> None:
        """Make this node's changes visible here at once and to the cluster, in order, without
        waiting: a join or a channel's end never waits on the cluster (Redis may be away)."""


def _checked(topic: str, key: str, meta: dict[str, Any]) -> str:
    """Validate the arguments and return the key as a string (Phoenix turns keys into strings)."""
    if not isinstance(topic, str) or not topic:
        raise TypeError(f"presence topic must be a non-empty string, got {topic!r}")
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise TypeError(f"presence key must be a string, got {type(key).__name__}")
    if not isinstance(meta, dict):
        raise TypeError(f"presence meta must be a dict, got {type(meta).__name__}")
    try:
        orjson.dumps(meta)
    except TypeError as exc:
        raise TypeError(f"presence meta must be JSON-serialisable: {exc}") from None
    return str(key)
