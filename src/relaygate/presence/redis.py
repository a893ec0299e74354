"""Cluster Presence through Redis: one shared store, a versioned diff stream, a mirror per node.

Every node writes only its own entries, through one writer task (so its changes reach Redis in
the order they were made, batched into one Lua call per round trip), with Lua scripts that
change the store, bump a version and publish the change atomically. Every node keeps a mirror of
the whole store, loaded from a snapshot and then advanced message by message in version order; a
version gap or a new epoch means messages were lost, and the mirror reloads. The node's own
entries are the exception: the mirror shows them as the node holds them, at once (a track
never waits on Redis, and works while Redis is away), and takes only their ordering from the
store. ``list`` reads the mirror; the mirror's changes are this node's ``presence_diff``
broadcasts. Liveness: heartbeat keys with a TTL, and a reaper on every node
that drops the entries of replicas whose key expired. The correctness argument is in
docs/reference/cluster-internals.md.

Everything goes over one lean connection per node (``relaygate.service.link.RedisLink``: hiredis,
RESP3, pipelined): scripts, snapshots, and the change messages, which arrive as pushes and are
applied as they are parsed. redis-py costs ~4x the CPU per command and per message, and a busy
node writes and hears a change message every write window.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import math
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import hiredis
import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from relaygate.presence import scripts
from relaygate.presence.base import Changes, Presence, Tracked
from relaygate.presence.table import Diffs, Entry
from relaygate.pubsub import PubSub
from relaygate.pubsub.backoff import Backoff
from relaygate.pubsub.redis import FAILURES, connect
from relaygate.service.link import RedisLink, pack

log = logging.getLogger(__name__)

_PROVISIONAL = 1 << 62
"""Seqs of own entries not yet stored start here, so they list after every stored entry."""

WRITE_WINDOW = 0.1
"""Default least time between two writes of one node's changes (see ``RedisPresence``)."""

Version = tuple[str, int]
"""(epoch, version) of a change in the store."""

_Script = tuple[str, str]
"""(SHA1, source) of a Lua script: sent as EVALSHA, loaded again when Redis lost it."""

_Call = tuple[_Script, int, list[Any]]
"""A script, how many of its arguments are keys, and the arguments (keys first)."""


def _script(source: str) -> _Script:
    return hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest(), source


_APPLY, _ASSERT, _DROP, _HEARTBEAT = (
    _script(scripts.APPLY),
    _script(scripts.ASSERT),
    _script(scripts.DROP),
    _script(scripts.HEARTBEAT),
)


@dataclass(slots=True)
class _Op:
    kind: Literal["apply", "assert", "retire"]
    done: asyncio.Future[Version | None]
    changes: Changes = field(default_factory=dict)


class RedisPresence(Presence):
    def __init__(
        self,
        pubsub: PubSub,
        redis: Redis | str,
        node_name: str,
        *,
        prefix: str = "relaygate:{presence}:",
        heartbeat_interval: float = 1.0,
        ttl: float = 5.0,
        reap_interval: float = 1.0,
        start_timeout: float = 10.0,
        write_window: float | None = None,
        **options: Any,
    ) -> None:
        """Node death shows as leaves within about ``ttl + reap_interval`` (6 s by default).
        The node's changes reach Redis in at most one script call per ``write_window`` (default
        100 ms, or none with ``diff_window=0``): a change after a quiet spell goes at once, the
        changes of a busy spell ride one call, one publish and one message per node together.
        ``options``: the diff coalescing of :class:`Presence`."""
        super().__init__(pubsub, **options)
        if write_window is None:
            write_window = WRITE_WINDOW if self._window else 0.0
        if write_window < 0:
            raise ValueError("write_window must be >= 0")
        self._write_window = write_window
        if not node_name:
            raise ValueError("node_name must not be empty")
        if not ttl > heartbeat_interval > 0 or reap_interval <= 0:
            raise ValueError("need 0 < heartbeat_interval < ttl and reap_interval > 0")
        self._redis_arg = redis
        self.node_name = node_name
        self._prefix = prefix
        self._channel = f"{prefix}diff"
        self._keys = [f"{prefix}entries", f"{prefix}version", f"{prefix}epoch", f"{prefix}replicas"]
        self._heartbeat = heartbeat_interval
        self._ttl_ms = str(int(ttl * 1000))
        self._reap = reap_interval
        self._start_timeout = start_timeout
        self.replica = ""
        self._client: Redis | None = None
        self._link: RedisLink | None = None
        self._loading: list[bytes] | None = None
        """Change messages that arrived while a snapshot loads (applied after it), else None."""
        self._catching_up: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ops: asyncio.Queue[_Op] = asyncio.Queue()
        self._open: _Op | None = None
        """The apply op queued last, while the writer has not taken it."""
        self._ready = asyncio.Event()
        self._fresh = True
        self._stopping = False
        self._epoch = ""
        self._applied = 0
        self._provisional = itertools.count(_PROVISIONAL)
        self._alive_at = -math.inf
        """When a write last refreshed this replica's alive key (``APPLY`` does, as a heartbeat)."""

    @property
    def ready(self) -> bool:
        """True while the mirror follows the store (False before start and while Redis is away)."""
        return self._ready.is_set()

    async def start(self) -> None:
        """Register, load the cluster state and follow it; waits up to ``start_timeout`` for that."""
        if self._tasks:
            return
        self._client = connect(self._redis_arg) if isinstance(self._redis_arg, str) else self._redis_arg
        self._link = RedisLink(self._client, on_message=self._on_message)
        self.replica = f"{self.node_name}:{secrets.token_hex(6)}"
        self._stopping = False
        self._fresh = True
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="relaygate-presence-writer"),
            asyncio.create_task(self._link_loop(), name="relaygate-presence-link"),
            asyncio.create_task(self._heartbeat_loop(), name="relaygate-presence-heartbeat"),
            asyncio.create_task(self._reap_loop(), name="relaygate-presence-reaper"),
        ]
        try:
            async with asyncio.timeout(self._start_timeout):
                await self._ready.wait()
        except TimeoutError:
            log.warning("presence could not sync with Redis yet; it keeps trying in the background")

    async def stop(self) -> None:
        """Untrack everything at once (peers see the leaves now, not after the TTL), then disconnect."""
        if not self._tasks:
            return
        self._stopping = True
        self._forget_local()
        retired = self._submit("retire")
        with contextlib.suppress(TimeoutError, *FAILURES):
            async with asyncio.timeout(5.0):
                await retired
        await self._halt()

    async def _halt(self) -> None:
        """Stop every task without telling anyone (what a crash looks like to the other nodes)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        _, stuck = await asyncio.wait(tasks, timeout=5.0)
        if stuck:
            log.warning("presence tasks did not stop: %s", sorted(t.get_name() for t in stuck))
        self._flush_all()
        self._open = None
        while not self._ops.empty():
            op = self._ops.get_nowait()
            if not op.done.done():
                op.done.set_result(None)
        self._ready.clear()
        self._forget_local()
        self._table.replace_all({}, Diffs())
        self._epoch, self._applied = "", 0
        if self._catching_up is not None:
            self._catching_up.cancel()
            self._catching_up = None
        self._loading = None
        if self._link is not None:
            await self._link.aclose()
            self._link = None
        if isinstance(self._redis_arg, str) and self._client is not None:
            with contextlib.suppress(TimeoutError, *FAILURES):
                async with asyncio.timeout(5.0):
                    await self._client.aclose()
        self._client = None

    def _new_entry_id(self) -> str:
        return f"{self.replica}:{super()._new_entry_id()}"

    def _next_seq(self) -> int:
        """Until the store's echo gives an entry its seq, it sorts after every stored one."""
        return next(self._provisional)

    def _commit(self, changes: Changes) -> None:
        """Show the change here and queue it for the writer: while Redis is away the writer keeps
        retrying (re-asserting this node's entries, which then hold this change)."""
        if not self._tasks:
            raise RuntimeError("RedisPresence is not started")
        self._apply(changes)
        self._submit("apply", changes)

    async def replicated(self) -> None:
        """Wait until this node's changes made so far are in the store (visible to other nodes
        that follow it); returns at once when stopped."""
        if self._tasks:
            await self._submit("apply")

    def _submit(self, kind: Literal["apply", "assert", "retire"], changes: Changes | None = None) -> Any:
        """Queue an op for the writer; changes join the apply queued last while the writer has
        not taken it (one op and one future per write, not per change)."""
        if kind == "apply" and self._open is not None:
            if changes:
                self._open.changes.update(changes)  # an entry's last state wins; ids are never reused
            return self._open.done
        op = _Op(kind, asyncio.get_running_loop().create_future(), changes or {})
        self._ops.put_nowait(op)
        self._open = op if kind == "apply" else None
        return op.done

    # -- writer: this node's changes, in order --------------------------------------------------

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = -math.inf
        while True:
            ops = [await self._ops.get()]
            wait = last + self._write_window - loop.time()
            if wait > 0:  # at most one write per window: the changes made meanwhile join it
                await asyncio.sleep(wait)
            last = loop.time()
            while len(ops) < 256 and not self._ops.empty():
                ops.append(self._ops.get_nowait())
            if ops[-1] is self._open:
                self._open = None  # taken: later changes go into a new op
            try:
                results: Sequence[Version | None] = await self._run(ops)
            except FAILURES as exc:
                log.warning("presence write failed, re-asserting this node's entries: %s", exc)
                results = [None] * len(ops)
            if any(r is None for r, op in zip(results, ops, strict=True) if op.kind != "retire"):
                recovered = await self._assert_until_done()
                results = [
                    recovered if r is None and op.kind != "retire" else r
                    for r, op in zip(results, ops, strict=True)
                ]
            if all(r is not None for r in results):
                self._alive_at = last
            for op, result in zip(ops, results, strict=True):
                if not op.done.done():
                    op.done.set_result(result)

    async def _run(self, ops: list[_Op]) -> list[Version | None]:
        """One pipeline for the whole batch, consecutive applies merged into one script call;
        None marks an op whose replica was not registered."""
        assert self._client is not None
        calls: list[tuple[Literal["apply", "assert", "retire"], Changes]] = []
        call_of: list[int] = []  # op index -> the script call that carries it
        for op in ops:
            if op.kind == "apply" and calls and calls[-1][0] == "apply":
                calls[-1][1].update(op.changes)  # an entry's last state wins; ids are never reused
            else:
                calls.append((op.kind, dict(op.changes)))
            call_of.append(len(calls) - 1)
        commands: list[_Call] = []
        keys = len(self._keys)
        for kind, changes in calls:
            if kind == "apply":
                puts = [(i, t) for i, t in changes.items() if t is not None]
                deletes = [i for i, t in changes.items() if t is None]
                args = [self.replica, self._ttl_ms, len(puts), *_pairs(puts), *deletes]
                commands.append((_APPLY, keys, [*self._keys, *self._common_args(), *args]))
            elif kind == "assert":
                commands.append((_ASSERT, keys, [*self._keys, *self._assert_args()]))
            else:
                commands.append((_DROP, keys, [*self._keys, *self._common_args(), "self", self.replica]))
        replies = await self._evalsha(commands)
        results: list[Version | None] = []
        for (kind, _), (epoch, version) in zip(calls, replies, strict=True):
            if kind == "assert":
                self._fresh = False
            results.append(
                None if version < 0 or (kind != "retire" and self._stopping) else (_text(epoch), int(version))
            )
        return [results[i] for i in call_of]

    async def _evalsha(self, commands: list[_Call]) -> list[Any]:
        """One round trip of EVALSHAs.
        Unlike a redis-py pipeline of scripts, no SCRIPT EXISTS round trip first: when Redis
        lost the scripts (a restart), they are loaded and the batch runs again, which every
        script allows (a put of the value already stored, a delete of an absent entry and a
        second assert change nothing). A Redis error is raised as ``ResponseError``."""
        link = self._link
        if link is None:
            raise ConnectionError("presence is stopped")
        for attempt in (1, 2):
            packed = b"".join(pack("EVALSHA", sha, keys, *args) for (sha, _), keys, args in commands)
            replies = await link.send(packed, len(commands))
            errors = [r for r in replies if isinstance(r, hiredis.ReplyError)]
            if not errors:
                return replies
            if attempt == 2 or not all(str(e).startswith("NOSCRIPT") for e in errors):
                raise ResponseError(str(errors[0]))
            loads = {script for script, _, _ in commands}
            await link.send(b"".join(pack("SCRIPT", "LOAD", source) for _, source in loads), len(loads))
        raise AssertionError("unreachable")

    async def _assert_until_done(self) -> Version | None:
        backoff = Backoff()
        while not self._stopping:
            try:
                ((epoch, version),) = await self._evalsha(
                    [(_ASSERT, len(self._keys), [*self._keys, *self._assert_args()])]
                )
            except FAILURES:
                await asyncio.sleep(backoff.next_delay())
                continue
            self._fresh = False
            return _text(epoch), int(version)
        return None

    def _common_args(self) -> list[str]:
        return [self._prefix, self._channel, secrets.token_hex(8)]

    def _assert_args(self) -> list[Any]:
        entries = list(self._local.items())
        return [
            *self._common_args(),
            self.replica,
            self._ttl_ms,
            self.node_name,
            "1" if self._fresh else "0",
            len(entries),
            *_pairs(entries),
        ]

    # -- the link and the mirror ------------------------------------------------------------------

    async def _link_loop(self) -> None:
        """Connect, subscribe, re-assert this node's entries and load the mirror; then wait for
        the connection to end, and do it all again (backing off while Redis is away)."""
        link = self._link
        assert link is not None
        backoff = Backoff()
        failed = False
        while True:
            try:
                self._loading = []  # from the subscription on, messages wait for the snapshot
                await link.connect()
                await link.subscribe(self._channel)
                await self._submit("assert")  # our entries are in the store (Redis may have restarted)
                await self._catch_up()
                self._ready.set()
                if failed:
                    log.info("presence is in sync with Redis again")
                failed = False
                backoff.reset()
                reason = await link.wait_closed()
                log.warning("presence lost Redis: %s", reason)
            except FAILURES as exc:
                if not failed:
                    log.warning("presence lost Redis: %s", exc)
            failed = True
            self._ready.clear()
            link.close()
            await asyncio.sleep(backoff.next_delay())

    def _on_message(self, channel: bytes, data: bytes) -> None:
        """A change message, as the link parses it: applied now, or kept while a snapshot loads."""
        loading = self._loading
        if loading is not None:
            loading.append(data)
        elif not self._follow(data):
            self._loading = []
            self._catching_up = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        """Reload the mirror after a gap; if that fails, drop the link (the link loop resyncs)."""
        try:
            await self._catch_up()
        except FAILURES as exc:
            log.warning("presence could not reload the mirror: %s", exc)
            if self._link is not None:
                self._link.close()
        finally:
            self._catching_up = None

    async def _catch_up(self) -> None:
        """Load the snapshot, then apply the messages that arrived meanwhile (those it already
        holds are skipped by version); again while they show a gap."""
        while True:
            self._loading = []
            await self._load_snapshot()
            arrived, self._loading = self._loading, None
            if all(self._follow(data) for data in arrived or ()):
                return

    async def _load_snapshot(self) -> None:
        link = self._link
        if link is None:
            raise ConnectionError("presence is stopped")
        transaction = (
            pack("MULTI")
            + pack("GET", self._keys[2])
            + pack("GET", self._keys[1])
            + pack("HGETALL", self._keys[0])
            + pack("EXEC")
        )
        *_, result = await link.send(transaction, 5)
        if isinstance(result, hiredis.ReplyError) or result is None:
            raise ResponseError(f"presence snapshot failed: {result}")
        epoch, version, raw = result
        mine = f"{self.replica}:"
        entries: dict[str, Entry] = {}
        for raw_id, value in raw.items():
            entry_id = _text(raw_id)
            if not entry_id.startswith(mine):
                entries[entry_id] = _entry(value)
        for entry_id, tracked in self._local.items():  # own entries as this node holds them
            stored = raw.get(entry_id.encode())
            held = self._table.get(entry_id)
            seq = _seq(stored) if stored is not None else held.seq if held is not None else self._next_seq()
            entries[entry_id] = Entry(tracked.topic, tracked.key, tracked.meta, seq)
        diffs = self._diffs()
        self._table.replace_all(entries, diffs)
        self._epoch = _text(epoch) if epoch is not None else ""
        self._applied = int(version or 0)
        self._emit(diffs)

    def _follow(self, data: bytes) -> bool:
        """Apply one change message; False when the mirror must reload (lost messages, new epoch)."""
        try:
            message = orjson.loads(data)
            epoch, version = str(message["e"]), int(message["v"])
            if epoch != self._epoch or version > self._applied + 1:
                return False
            if version <= self._applied:
                return True  # already in the snapshot
            mine = f"{self.replica}:"
            diffs = self._diffs()
            for entry_id in message["del"] or ():
                if not entry_id.startswith(mine):
                    self._table.remove(entry_id, diffs)
            for entry_id, value in message["put"] or ():
                if entry_id.startswith(mine):
                    self._table.reseq(entry_id, _seq(value))  # the echo of our own change
                else:
                    self._table.put(entry_id, _entry(value), diffs)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("presence got a malformed change message, reloading: %s", exc)
            return False
        self._applied = version
        self._emit(diffs)
        return True

    # -- liveness ----------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            if not self._ready.is_set():
                continue  # the reader re-asserts when it reconnects
            if asyncio.get_running_loop().time() - self._alive_at < self._heartbeat:
                continue  # a write refreshed the alive key meanwhile: a busy node needs no heartbeat
            keys = [self._keys[3], f"{self._prefix}alive:{self.replica}"]
            try:
                (alive,) = await self._evalsha([(_HEARTBEAT, len(keys), [*keys, self.replica, self._ttl_ms])])
            except FAILURES:
                continue
            if not alive and not self._stopping:
                log.warning("presence replica %s was reaped while alive; re-asserting", self.replica)
                self._submit("assert")

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self._reap * random.uniform(0.5, 1.0))
            with contextlib.suppress(*FAILURES):
                await self._evalsha(
                    [(_DROP, len(self._keys), [*self._keys, *self._common_args(), "dead", ""])]
                )


def _pairs(entries: Sequence[tuple[str, Tracked | None]]) -> list[Any]:
    flat: list[Any] = []
    for entry_id, tracked in entries:
        assert tracked is not None
        flat += [entry_id, orjson.dumps([tracked.topic, tracked.key, tracked.meta])]
    return flat


def _entry(value: bytes | str) -> Entry:
    raw = value.encode() if isinstance(value, str) else value
    seq, _, body = raw.partition(b"|")
    topic, key, meta = orjson.loads(body)
    return Entry(topic, key, meta, int(seq))


def _seq(value: bytes | str) -> int:
    raw = value.encode() if isinstance(value, str) else value
    return int(raw.partition(b"|")[0])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
