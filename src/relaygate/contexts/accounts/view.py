"""This node's memory of what a token check needs: revoked token ids and users' current facts.

A token check answered from memory costs a dict lookup or two instead of a database query. It
may answer only while the view is *live*: loaded from the database after this node's PubSub
subscription to :data:`TOPIC` was confirmed, with the subscription unbroken since (same
``pubsub.connections``, still ``connected``). Every change that can refuse a token is published
on :data:`TOPIC` with :meth:`PubSub.broadcast_confirmed` after it is committed and before its
request is answered, so once a logout (or a user's deletion, or a role change) is acknowledged,
every live view has it. A view that is not live (Redis away, a reconnection not yet reloaded)
answers nothing: the caller asks the database, and a reload starts in the background.

User facts are cached only positively and only when no change was announced while they were
being read (``generation``), so a racing change never leaves a stale entry behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from relaygate.pubsub import Broadcast, PubSub

log = logging.getLogger("relaygate.accounts")

TOPIC = "relaygate:accounts"
"""PubSub topic of account changes (not a channel topic: no socket can join it)."""
REVOKED = "revoked"
USER_CHANGED = "user_changed"
MAX_USERS = 100_000
"""Cached users; beyond it the cache starts over (it refills from the database on demand)."""


@dataclass(frozen=True, slots=True)
class UserFacts:
    """What a token check needs of a user row."""

    role: str
    created_us: int
    name: str


class AccessView:
    """Revoked ``jti`` → expiry (unix s), and user id → :class:`UserFacts`; a PubSub subscriber."""

    def __init__(
        self, pubsub: PubSub, load_revoked: Callable[[], Awaitable[Iterable[tuple[str, int]]]]
    ) -> None:
        self.pubsub = pubsub
        self._load_revoked = load_revoked
        self.revoked: dict[str, int] = {}
        self.users: dict[int, UserFacts] = {}
        self.generation = 0
        """Bumped by every announced user change (see :meth:`remember`)."""
        self._epoch: int | None = None
        self._loading: asyncio.Task[None] | None = None
        self._stopped = True

    @property
    def live(self) -> bool:
        """Whether this view may answer (see the module docstring)."""
        pubsub = self.pubsub
        return self._epoch is not None and pubsub.connected and pubsub.connections == self._epoch

    def start(self) -> None:
        """Begin loading (in the background: Redis may be away at startup)."""
        self._stopped = False
        self.ensure_loading()

    def ensure_loading(self) -> None:
        """Called when a check found the view not live: reload once the subscription is back."""
        if self._stopped or (self._loading is not None and not self._loading.done()):
            return
        self._loading = asyncio.get_running_loop().create_task(self._reload(), name="relaygate-access-view")

    async def _reload(self) -> None:
        self._epoch = None
        epoch = self.pubsub.connections
        # Returns once the subscription is confirmed: announcements from here on reach us.
        await self.pubsub.subscribe(TOPIC, self)
        try:
            revoked = await self._load_revoked()
        except Exception:
            log.warning("cannot load token revocations; tokens are checked in the database", exc_info=True)
            return
        self.users.clear()
        self.generation += 1
        self.revoked.update(revoked)
        self._epoch = epoch

    async def stop(self) -> None:
        self._stopped = True
        self._epoch = None
        if self._loading is not None:
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
        await self.pubsub.unsubscribe(TOPIC, self)

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        payload = message.payload
        if message.event == REVOKED:
            self.revoked[str(payload["jti"])] = int(payload["exp"])
        elif message.event == USER_CHANGED:
            self.generation += 1
            self.users.pop(int(payload["id"]), None)

    def remember(self, user_id: int, facts: UserFacts, generation: int) -> None:
        """Cache ``facts`` read from the database while ``generation`` was current."""
        if generation != self.generation or not self.live:
            return
        if len(self.users) >= MAX_USERS:
            self.users.clear()
        self.users[user_id] = facts

    def forget_expired(self, now: float | None = None) -> int:
        """Drop revocations of tokens that have expired anyway; returns how many."""
        moment = time.time() if now is None else now
        expired = [jti for jti, exp in self.revoked.items() if exp <= moment]
        for jti in expired:
            del self.revoked[jti]
        return len(expired)
