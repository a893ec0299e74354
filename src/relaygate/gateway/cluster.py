"""Cluster mode through Redis: shared registry, node liveness, calls to service nodes, admin.

Gateways read the registry on change notices and every ``pull_interval`` (only when the
revision counter moved), so a gateway started late sees existing services. Liveness comes from
heartbeats stamped with Redis' clock; a node silent for 3 intervals leaves selection and its
in-flight calls fail with :class:`NodeLost` at once (retried elsewhere when allowed).

Calls and control messages leave through an :class:`Outbox`: everything sent in one event-loop
turn goes out in one write (one ``LPUSH`` per service node) on a :class:`RedisLink`, the same
connection that receives this gateway's replies (in batches) and change notices. The wire format is in :mod:`relaygate.protocol.gateway.wire`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import hiredis
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from relaygate.gateway import metrics
from relaygate.gateway.admin import GatewayAdmin
from relaygate.gateway.gateway import Gateway
from relaygate.gateway.limiter import LimiterConfig, RateLimiter
from relaygate.gateway.limiter_redis import LeasingWindowStore
from relaygate.gateway.registry import Registry
from relaygate.gateway.response import GatewayError
from relaygate.gateway.transport import NodeLost, RemoteCall, Transport
from relaygate.protocol.gateway import codes, wire
from relaygate.protocol.gateway.functions import FunctionKey, FunctionSpec, key_from_text, key_text
from relaygate.protocol.gateway.options import ConfigError
from relaygate.service.link import RedisLink, keep_linked, pack
from relaygate.service.outbox import Outbox, Publishes, Pushes

log = logging.getLogger(__name__)
NODE_GC_MS = 60_000
_CHANGES = wire.CHANGES.encode()


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    service: str
    config_version: str
    functions: frozenset[FunctionKey]
    draining: bool
    started: float

    @classmethod
    def parse(cls, name: str, raw: bytes) -> NodeInfo:
        data = orjson.loads(raw)
        return cls(
            name=name,
            service=str(data["service"]),
            config_version=str(data["config_version"]),
            functions=frozenset(key_from_text(k) for k in data["functions"]),
            draining=bool(data.get("draining")),
            started=float(data.get("started", 0)),
        )


def _check_sent(sent: asyncio.Future[Any], calls: list[_RedisCall]) -> None:
    """Fail the calls of a batch Redis did not take (connection lost, or an error reply)."""
    error = sent.exception()
    if error is None:
        error = next((r for r in sent.result() if isinstance(r, hiredis.ReplyError)), None)
    if error is not None:
        log.warning("gateway could not send %d calls: %s", len(calls), error)
        for call in calls:
            call.put(NodeLost(f"could not send the call: {type(error).__name__}"))


class _RedisCall(RemoteCall):
    """One attempt: replies routed by call id. The first reply waits in a slot (a sync or async
    call has no other); a stream's later ones queue behind it."""

    __slots__ = ("_cluster", "_first", "_more", "_waiter", "call_id", "node")

    def __init__(self, cluster: RedisCluster, node: str, call_id: str) -> None:
        self.node = node
        self.call_id = call_id
        self._first: dict[str, Any] | NodeLost | None = None
        self._more: deque[dict[str, Any] | NodeLost] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._cluster = cluster

    def put(self, item: dict[str, Any] | NodeLost) -> None:
        if self._first is None:
            self._first = item
        elif self._more is None:
            self._more = deque((item,))
        else:
            self._more.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def qsize(self) -> int:
        return (self._first is not None) + (len(self._more) if self._more else 0)

    async def receive(self) -> dict[str, Any]:
        while self._first is None:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._first
        self._first = self._more.popleft() if self._more else None
        if isinstance(item, NodeLost):
            raise item
        return item

    async def grant(self, credits: int) -> None:
        message = {"t": wire.CREDIT, "id": self.call_id, "n": credits}
        self._cluster.outbox.publish(wire.node_control(self.node), wire.encode(message))

    def close(self, *, cancel: bool) -> None:
        self._cluster._forget(self)
        if cancel:
            message = {"t": wire.CANCEL, "id": self.call_id}
            self._cluster.outbox.publish(wire.node_control(self.node), wire.encode(message))


class RedisCluster(Transport):
    """One gateway node's view of the cluster. Build the gateway with :meth:`gateway`."""

    def __init__(
        self,
        redis: Redis,
        *,
        node_name: str,
        pull_interval: float = 1.0,
        liveness_interval: float = 0.25,
        heartbeat_interval: float = wire.HEARTBEAT_INTERVAL,
    ) -> None:
        self.redis = redis
        self.node_name = node_name
        self.registry = Registry()
        self.limiter = RateLimiter(LeasingWindowStore(redis))
        self.pull_interval = pull_interval
        self.liveness_interval = liveness_interval
        self.dead_after_ms = int(heartbeat_interval * wire.MISSED_HEARTBEATS * 1000)
        self._nodes: dict[str, NodeInfo] = {}
        self._heartbeats: dict[str, int] = {}
        self._now_ms = 0
        self._alive: set[str] = set()
        self._serving: dict[FunctionKey, list[str]] = {}
        self._calls: dict[str, _RedisCall] = {}
        self._calls_by_node: dict[str, set[str]] = {}
        self._services_raw: dict[str, bytes] = {}
        self._limits_raw: bytes | None = None
        self._rev: bytes | None = None
        self._keeping = False
        """Redis lost the registry: the last one read stays until a revision appears again."""
        self._dirty = asyncio.Event()
        self._notified = False
        self._link = RedisLink(redis, on_message=self._message)
        self._tasks: list[asyncio.Task[None]] = []
        self.outbox = Outbox(self._send)
        self._reply_channel = wire.gateway_replies(node_name)
        self.admin = RedisAdmin(self)

    def gateway(self, **options: Any) -> Gateway:
        """A :class:`Gateway` that uses this cluster's registry, shared limiter and transport."""
        return Gateway(registry=self.registry, limiter=self.limiter, transport=self, **options)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe, read the registry and liveness once, then keep them current."""
        await self._subscribe()
        await self.pull()
        await self.check_liveness()
        self._tasks = [
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._sync_loop()),
            asyncio.create_task(self._tick_loop()),
            asyncio.create_task(self._liveness_loop()),
        ]

    async def stop(self) -> None:
        await self.outbox.close()  # what is queued (cancels, credits) leaves before the link closes
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=5)
            for task in stuck:
                log.warning("gateway cluster task did not stop: %r", task)
        self._tasks = []
        await self._link.aclose()
        for call in list(self._calls.values()):
            call.put(NodeLost("the gateway is stopping"))

    # -- transport ------------------------------------------------------------------------
    def live_nodes(self, key: FunctionKey) -> list[str]:
        return self._serving.get(key, [])

    def is_alive(self, node: str) -> bool:
        return node in self._alive

    async def call(self, node: str, message: dict[str, Any]) -> RemoteCall:
        if node not in self._alive:
            raise NodeLost("not alive")
        call = _RedisCall(self, node, message["id"])
        self._calls[call.call_id] = call
        by_node = self._calls_by_node.get(node)
        if by_node is None:
            by_node = self._calls_by_node[node] = set()
        by_node.add(call.call_id)
        message["gw"] = self.node_name
        self.outbox.push(wire.node_queue(node), wire.encode(message), call)
        return call

    def _send(self, pushes: Pushes, publishes: Publishes, calls: list[Any]) -> asyncio.Future[Any]:
        """One write per loop turn on the link: calls per node (LPUSH + EXPIRE), control batches.

        Calls in a batch that Redis did not take end with :class:`NodeLost` (retryable)."""
        commands = []
        for queue, items in pushes.items():
            commands.append(pack("LPUSH", queue, *items))
            commands.append(pack("EXPIRE", queue, wire.QUEUE_TTL_S))
        for channel, items in publishes.items():
            commands.append(pack("PUBLISH", channel, wire.encode_batch(items)))
        sent = self._link.send(b"".join(commands), len(commands))
        if calls:
            sent.add_done_callback(lambda future: _check_sent(future, calls))
        return sent

    def calls_on(self, node: str) -> int:
        """How many calls this gateway has in flight on ``node``."""
        return len(self._calls_by_node.get(node, ()))

    def buffered_replies(self) -> int:
        """Replies received but not yet consumed (bounded by stream credits per call)."""
        return sum(call.qsize() for call in self._calls.values())

    def _forget(self, call: _RedisCall) -> None:
        if self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]
            ids = self._calls_by_node.get(call.node)
            if ids is not None:
                ids.discard(call.call_id)
                if not ids:
                    del self._calls_by_node[call.node]

    # -- replies and notices --------------------------------------------------------------
    async def _subscribe(self) -> None:
        """A fresh link subscribed to change notices and this gateway's replies, confirmed by Redis."""
        await self._link.connect()
        async with asyncio.timeout(10):
            await self._link.subscribe(wire.CHANGES, self._reply_channel)

    def _message(self, channel: bytes, data: bytes) -> None:
        if channel == _CHANGES:
            self._notice()
        else:
            self._route(data)

    async def _listen(self) -> None:
        """Keep the link up: a lost one is replaced, then the registry is read again, as notices
        may have been missed. Cancelled: the link closes."""

        async def relink() -> None:
            await self._subscribe()
            self._notice()

        try:
            await keep_linked(lambda: self._link, relink, "gateway", log)
        finally:
            self._link.close()

    def _route(self, data: bytes) -> None:
        calls = self._calls
        for message in wire.decode_batch(data):
            call_id = message.get("id")
            call = calls.get(call_id) if isinstance(call_id, str) else None
            if call is None:
                continue  # a late reply to a call that already ended, or a malformed id
            if message["t"] == wire.NACK:
                call.put(NodeLost("the node refused the call (shutting down)"))
            else:
                call.put(message)

    # -- registry sync --------------------------------------------------------------------
    async def _sync_loop(self) -> None:
        """Pull on every change notice; on the periodic tick only when the revision moved.

        (No timeout around the wait: on Python 3.11 a cancel that races a timeout can be lost.)
        """
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            forced, self._notified = self._notified, False
            try:
                rev = await self.redis.get(wire.REV)
                if forced or rev != self._rev:
                    await self.pull()
            except (RedisError, OSError) as exc:
                log.warning("gateway registry pull failed: %s", type(exc).__name__)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.pull_interval)
            self._dirty.set()

    def _notice(self) -> None:
        self._notified = True
        self._dirty.set()

    async def pull(self) -> None:
        """Read the whole registry, the disabled set, the nodes and the rate limits."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(wire.REV)
            pipe.hgetall(wire.SERVICES)
            pipe.smembers(wire.DISABLED)
            pipe.hgetall(wire.NODES)
            pipe.get(wire.RATE_LIMITS)
            rev, services, disabled, nodes, limits = await pipe.execute()
        if rev is None and self._rev is not None:
            # Redis restarted empty (or was flushed): until a node announces itself again, keep
            # the functions we know, so calls answer `unavailable` (retryable), not `not_found`.
            log.warning("the gateway registry in Redis is gone; keeping the last one read")
            self._keeping = True
        elif rev is not None:
            self._keeping = False
        lost = self._keeping
        self._rev = rev
        if not lost:
            self._apply_services({k.decode(): v for k, v in services.items()})
            self.registry.set_disabled(key_from_text(k.decode()) for k in disabled)
        parsed = {}
        for name, raw in nodes.items():
            try:
                parsed[name.decode()] = NodeInfo.parse(name.decode(), raw)
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a malformed node record %r", name)
        self._nodes = parsed
        self._recompute()
        if not lost and limits != self._limits_raw:
            self._limits_raw = limits
            try:
                config = LimiterConfig.parse(orjson.loads(limits)) if limits else LimiterConfig()
                self.limiter.configure(config)
            except (ConfigError, orjson.JSONDecodeError) as exc:
                log.warning("ignoring an invalid rate-limit config: %s", exc)

    def _apply_services(self, services: dict[str, bytes]) -> None:
        for name in self.registry.service_names() - set(services):
            self.registry.remove_service(name)
            self._services_raw.pop(name, None)
        for name, raw in services.items():
            if self._services_raw.get(name) == raw:
                continue
            try:
                data = orjson.loads(raw)
                specs = [FunctionSpec.parse(f) for f in data["functions"]]
                self.registry.push_service(name, str(data["config_version"]), specs, force=True)
            except (ConfigError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring the invalid registry entry of service %s: %s", name, exc)
            self._services_raw[name] = raw
            metrics.REGISTRY_CHANGES.labels("pull").inc()

    # -- liveness -------------------------------------------------------------------------
    async def _liveness_loop(self) -> None:
        while True:
            await asyncio.sleep(self.liveness_interval)
            try:
                await self.check_liveness()
            except (RedisError, OSError) as exc:
                log.warning("gateway liveness check failed: %s", type(exc).__name__)

    async def check_liveness(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.hgetall(wire.HEARTBEATS)
            (seconds, micros), beats = await pipe.execute()
        self._now_ms = seconds * 1000 + micros // 1000
        self._heartbeats = {k.decode(): int(v) for k, v in beats.items()}
        alive = {n for n, ms in self._heartbeats.items() if self._now_ms - ms <= self.dead_after_ms}
        gone = {n for n, ms in self._heartbeats.items() if self._now_ms - ms > NODE_GC_MS}
        if gone:
            await self._collect(gone)
        if alive != self._alive:
            for node in alive - self._alive:
                metrics.NODE_EVENTS.labels("up").inc()
                if node not in self._nodes:
                    self._notice()  # a node we have not read yet
            for node in self._alive - alive:
                metrics.NODE_EVENTS.labels("down").inc()
                self._fail_calls(node, "stopped heartbeating")
            self._alive = alive
            self._recompute()
        for node in set(self._calls_by_node) - alive:
            self._fail_calls(node, "is not alive")

    async def _collect(self, nodes: Iterable[str]) -> None:
        """Drop records of nodes dead for a minute (any gateway may do it; it is idempotent)."""
        names = list(nodes)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(wire.HEARTBEATS, *names)
            pipe.hdel(wire.NODES, *names)
            await pipe.execute()

    def _fail_calls(self, node: str, reason: str) -> None:
        for call_id in list(self._calls_by_node.pop(node, ())):
            call = self._calls.get(call_id)
            if call is not None:
                call.put(NodeLost(reason))

    def _recompute(self) -> None:
        serving: dict[FunctionKey, list[str]] = {}
        for name in sorted(self._alive):
            info = self._nodes.get(name)
            if info is None or info.draining:
                continue
            for key in info.functions:
                serving.setdefault(key, []).append(name)
        self._serving = serving

    def nodes_of(self, service: str) -> list[dict[str, Any]]:
        return [
            {
                "name": info.name,
                "alive": info.name in self._alive,
                "draining": info.draining,
                "last_heartbeat": self._heartbeats.get(info.name),
                "config_version": info.config_version,
            }
            for info in sorted(self._nodes.values(), key=lambda i: i.name)
            if info.service == service
        ]

    async def notify(self, kind: str, pipe_work: Callable[[Any], None]) -> None:
        """Apply ``pipe_work`` to a transaction that also bumps the revision and sends a notice."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe_work(pipe)
            pipe.incr(wire.REV)
            pipe.publish(wire.CHANGES, kind)
            await pipe.execute()
        metrics.REGISTRY_CHANGES.labels(kind).inc()


class RedisAdmin(GatewayAdmin):
    """Admin changes written to Redis and applied on every gateway node."""

    def __init__(self, cluster: RedisCluster) -> None:
        super().__init__(cluster.registry, cluster.limiter)
        self.cluster = cluster

    async def services(self) -> list[dict[str, Any]]:
        await self.cluster.pull()
        await self.cluster.check_liveness()
        return [
            {
                "service": name,
                "config_version": self.registry.config_version(name),
                "nodes": self.cluster.nodes_of(name),
            }
            for name in sorted(self.registry.service_names())
        ]

    def _require(self, key: FunctionKey) -> None:
        if self.registry.get(key) is None:
            raise GatewayError(codes.NOT_FOUND, "no such function")

    async def disable(self, key: FunctionKey) -> None:
        self._require(key)
        await self.cluster.notify("disable", lambda pipe: pipe.sadd(wire.DISABLED, key_text(key)))
        self.registry.disable(key)

    async def enable(self, key: FunctionKey) -> None:
        self._require(key)
        await self.cluster.notify("enable", lambda pipe: pipe.srem(wire.DISABLED, key_text(key)))
        self.registry.enable(key)

    async def delete(self, key: FunctionKey) -> None:
        """Remove a service function from the shared registry (a local one from this node only)."""
        self._require(key)
        config = self.registry.get(key)
        if config is not None and config.function is None:
            await self._delete_remote(key)
        self.registry.delete(key)

    async def _delete_remote(self, key: FunctionKey) -> None:
        redis = self.cluster.redis
        async with redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(wire.SERVICES)
                    raw = await pipe.hget(wire.SERVICES, key[0])
                    if raw is None:
                        return
                    data = orjson.loads(raw)
                    data["functions"] = [
                        f
                        for f in data["functions"]
                        if (f["service"], f["request_type"], f.get("version")) != key
                    ]
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(wire.SERVICES, key[0], orjson.dumps(data))
                    pipe.srem(wire.DISABLED, key_text(key))
                    pipe.incr(wire.REV)
                    pipe.publish(wire.CHANGES, "delete")
                    await pipe.execute()
                    metrics.REGISTRY_CHANGES.labels("delete").inc()
                    return
                except WatchError:
                    continue

    async def set_rate_limits(self, config: LimiterConfig) -> None:
        raw = orjson.dumps(config.to_wire())
        await self.cluster.notify("limits", lambda pipe: pipe.set(wire.RATE_LIMITS, raw))
        self.cluster.limiter.configure(config)
