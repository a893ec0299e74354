"""Single-node Presence: the table is the only copy, changes are visible at once."""

from __future__ import annotations

import itertools

from relaygate.presence.base import Changes, Presence
from relaygate.presence.table import Diffs, Entry
from relaygate.pubsub import PubSub


class MemoryPresence(Presence):
    def __init__(self, pubsub: PubSub) -> None:
        super().__init__(pubsub)
        self._seq = itertools.count(1)

    async def _commit(self, changes: Changes) -> None:
        self._commit_later(changes)

    def _commit_later(self, changes: Changes) -> None:
        """Applied at once: the table is the only copy."""
        diffs = Diffs()
        for entry_id, tracked in changes.items():
            if tracked is None:
                self._table.remove(entry_id, diffs)
                continue
            old = self._table.get(entry_id)
            seq = next(self._seq) if old is None else old.seq
            self._table.put(entry_id, Entry(tracked.topic, tracked.key, tracked.meta, seq), diffs)
        self._emit(diffs)
