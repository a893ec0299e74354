"""This node's memory of what a token check needs: revoked token ids and users' current facts.

A token check answered from memory costs a dict lookup or two instead of a database query. It
may answer only while the view is *live*: loaded from the database after this node's PubSub
subscription to :data:`TOPIC` was confirmed, with the subscription unbroken since (same
``pubsub.connections``, still ``connected``). A view that is not live (Redis away, a
reconnection not yet reloaded) answers nothing: the caller asks the database, and a reload
starts in the background.

Every change that can refuse a token (a logout, a user's deletion or role change) is committed,
then announced (:func:`announce`): published on :data:`TOPIC`, and every node that received it applies
it to its view and acknowledges; the change's request is answered only after every ack (or
:data:`ACK_TIMEOUT`, logged). So once a logout is answered, no node accepts the token: a node
either has it in its live view, or is not live and reads the database, where it was committed.

User facts are cached only positively and only when no change was announced while they were
being read (``generation``), so a racing change never leaves a stale entry behind.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
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
ACK_TIMEOUT = 2.0
"""How long an announcement waits for the other nodes' acks (a node that slow is not serving)."""
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
        self.announcing: set[str] = set()
        """Ack topics of this node's own announcements in flight (it does not ack itself)."""
        self._acks: set[asyncio.Task[None]] = set()

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
        while True:
            epoch = self.pubsub.connections
            # Returns once the subscription of the current connection is confirmed.
            await self.pubsub.subscribe(TOPIC, self)
            if self.pubsub.connected and self.pubsub.connections == epoch:
                break  # from here on, every announcement reaches us (until connections changes)
            await asyncio.sleep(0.05)
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
        else:
            return
        ack = payload.get("ack")
        if isinstance(ack, str) and ack not in self.announcing:
            task = asyncio.get_running_loop().create_task(self.pubsub.broadcast(ack, "ack", {}))
            self._acks.add(task)
            task.add_done_callback(self._acks.discard)

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


class _Acks:
    """Counts acks on one announcement's ack topic."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = asyncio.Event()

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        self.count += 1
        self.changed.set()

    async def wait(self, expected: int) -> None:
        while self.count < expected:
            self.changed.clear()
            await self.changed.wait()


async def announce(view: AccessView, event: str, payload: dict[str, Any]) -> None:
    """Publish a committed change on :data:`TOPIC` and return once every other node that received
    it has applied it (waiting at most :data:`ACK_TIMEOUT` for their acks, then logging).

    Raises ``ConnectionError`` (answered ``503``; the change is committed, retrying announces it
    again) when the cluster cannot be reached, rather than answer as if every node knew.
    """
    pubsub = view.pubsub
    ack_topic = f"{TOPIC}:ack:{secrets.token_hex(8)}"
    acks = _Acks()
    view.announcing.add(ack_topic)
    try:
        try:
            async with asyncio.timeout(ACK_TIMEOUT):
                await pubsub.subscribe(ack_topic, acks)
        except TimeoutError:
            raise ConnectionError(f"{event} is saved but the cluster cannot be told now") from None
        others = await pubsub.broadcast_confirmed(TOPIC, event, payload | {"ack": ack_topic})
        try:
            async with asyncio.timeout(ACK_TIMEOUT):
                await acks.wait(others)
        except TimeoutError:
            log.warning(
                "%s: %d of %d nodes acknowledged within %.1fs", event, acks.count, others, ACK_TIMEOUT
            )
    finally:
        view.announcing.discard(ack_topic)
        await pubsub.unsubscribe(ack_topic, acks)
