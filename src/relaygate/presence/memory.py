"""Single-node Presence: the table is the only copy, changes are visible at once."""

from __future__ import annotations

import itertools
from typing import Any

from relaygate.presence.base import Changes, Presence
from relaygate.pubsub import PubSub


class MemoryPresence(Presence):
    def __init__(self, pubsub: PubSub, **options: Any) -> None:
        """``options``: the diff coalescing of :class:`Presence`."""
        super().__init__(pubsub, **options)
        self._seq = itertools.count(1)

    def _next_seq(self) -> int:
        return next(self._seq)

    def _commit(self, changes: Changes) -> None:
        self._apply(changes)
