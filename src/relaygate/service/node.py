"""A running service node: registers with the gateway through Redis, runs calls, heartbeats.

Calls arrive on the node's list, popped in batches of up to the free concurrency slots
(BLMPOP ... COUNT n) on a connection of their own; replies, stream chunks and ends go to the
calling gateway's channel, all those of one event-loop turn in one write with one PUBLISH per
gateway (:class:`Outbox`), on the connection that also receives control messages
(:class:`RedisLink`).
Streams send a chunk only against a credit from the gateway, so a slow client pauses the
producer. A call id seen in the last ``dedupe_window`` seconds never runs again: a finished
one gets its reply re-sent, a running one is left alone. Wire format:
:mod:`relaygate.protocol.gateway.wire`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeGuard, cast

import hiredis
import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from relaygate.protocol.gateway import codes, wire
from relaygate.protocol.gateway.codes import ServiceError
from relaygate.protocol.gateway.context import CallContext
from relaygate.protocol.gateway.functions import key_text
from relaygate.service.deadlines import Deadlines
from relaygate.service.eager import Suspended, first_step
from relaygate.service.link import RedisLink, keep_linked, pack
from relaygate.service.outbox import Outbox, Publishes, Pushes
from relaygate.service.service import Handler, Service

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Seen:
    reply_to: str
    """The calling gateway's reply channel."""
    final: bytes | None = None
    task: asyncio.Task[None] | None = None
    credits: int = 0
    credit: asyncio.Event | None = None
    """Set when a credit arrives (streams only)."""


class ServiceNode:
    def __init__(
        self,
        service: Service,
        redis: Redis,
        *,
        node_name: str | None = None,
        concurrency: int = 256,
        dedupe_window: float = 60.0,
        heartbeat_interval: float = wire.HEARTBEAT_INTERVAL,
        force_push: bool = False,
        debug_errors: bool = False,
    ) -> None:
        if not service.handlers:
            raise ValueError(f"service {service.name} declares no functions")
        self.service = service
        self.redis = redis
        self.name = node_name or f"{service.name}@{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.concurrency = concurrency
        self.dedupe_window = dedupe_window
        self.heartbeat_interval = heartbeat_interval
        self.force_push = force_push
        self.debug_errors = debug_errors
        self.pushed: bool | None = None  # whether the last push replaced the registry entry
        self._inflight = 0
        self._room = asyncio.Event()
        self._seen: dict[str, _Seen] = {}
        self._expiry: deque[tuple[float, str, _Seen]] = deque()  # finished calls, oldest first
        self._running: set[asyncio.Task[None]] = set()
        self.outbox = Outbox(self._send)
        self._tasks: list[asyncio.Task[None]] = []
        self._control = RedisLink(redis, on_message=self._control_message)
        """Control messages in, replies out."""
        self._calls = RedisLink(redis)
        """The node's queue, read with a blocking pop (nothing else can share its connection)."""
        self._calls_client: int | None = None
        self._stopping = False
        self._heartbeat = redis.register_script(wire.HEARTBEAT_SCRIPT)
        self._push = redis.register_script(wire.PUSH_SCRIPT)
        self._queue = wire.node_queue(self.name)
        self._deadlines = Deadlines()

    # -- lifecycle ------------------------------------------------------------------------
    def _record(self, *, draining: bool) -> bytes:
        functions = [key_text(h.spec.key) for h in self.service.handlers.values()]
        return orjson.dumps(
            {
                "service": self.service.name,
                "config_version": self.service.config_version,
                "functions": functions,
                "draining": draining,
                "started": time.time(),
            }
        )

    async def start(self) -> None:
        """Subscribe to control messages, announce the node, push the config, start serving."""
        await self._subscribe()
        await self._announce()
        self._tasks = [
            asyncio.create_task(self._control_loop()),
            asyncio.create_task(self._heartbeat_loop()),
            asyncio.create_task(self._call_loop()),
        ]
        log.info("service node %s serving %s", self.name, self.service.name)

    async def _announce(self) -> None:
        """Write the service's configuration, the node record and a heartbeat, then tell gateways.

        Run on start and again whenever the control subscription reconnects: a restarted Redis
        has lost the registry, and gateways only select nodes they find there.
        """
        entry = orjson.dumps(
            {"config_version": self.service.config_version, "functions": self.service.wire_functions()}
        )
        pushed = await self._push(
            keys=[wire.SERVICES, wire.REV, wire.CHANGES],
            args=[self.service.name, entry, "1" if self.force_push else "0", self.service.config_version],
        )
        self.pushed = bool(pushed)
        # The node becomes selectable only after its service's configuration is readable: a
        # gateway that saw the node first would answer "no such service" in between.
        await self.redis.hset(wire.NODES, self.name, self._record(draining=False))
        await self._heartbeat(keys=[wire.HEARTBEATS], args=[self.name])
        await self._notice()

    async def _notice(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(wire.REV)
            pipe.publish(wire.CHANGES, "node")
            await pipe.execute()

    async def stop(self, grace: float = 10.0) -> None:
        """Drain: leave selection, refuse queued calls (the gateway retries them elsewhere), let
        running calls finish within ``grace``, then deregister."""
        self._stopping = True
        call_loop = self._tasks[-1] if self._tasks else None
        if call_loop is not None:  # wake the blocked pop; what it took is refused, not dropped
            if self._calls_client is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.client_unblock(self._calls_client)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(call_loop), 5)
            call_loop.cancel()
            await asyncio.gather(call_loop, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self.redis.hset(wire.NODES, self.name, self._record(draining=True))
            await self._notice()
        deadline = time.monotonic() + grace
        while self._running and time.monotonic() < deadline:
            await self._refuse_queued()
            await asyncio.wait(self._running, timeout=0.05)
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hdel(wire.NODES, self.name)
                pipe.hdel(wire.HEARTBEATS, self.name)
                await pipe.execute()
            await self._notice()
            await self._refuse_queued()
            await self.redis.delete(self._queue)
        await self.outbox.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._control.aclose()
        await self._calls.aclose()
        log.info("service node %s stopped", self.name)

    async def _refuse_queued(self) -> None:
        while raws := cast("list[bytes] | None", await self.redis.rpop(self._queue, 256)):
            for raw in raws:
                message = wire.decode(raw)
                if message is not None and message["t"] == wire.CALL:
                    self._reply(str(message.get("gw")), {"t": wire.NACK, "id": message.get("id")})

    def _reply(self, gateway: str, message: dict[str, Any]) -> None:
        self.outbox.publish(wire.gateway_replies(gateway), wire.encode(message))

    def _send(self, pushes: Pushes, publishes: Publishes, tags: list[Any]) -> asyncio.Future[Any]:
        """Replies of one loop turn: one PUBLISH per gateway. A lost batch is not resent: its
        gateway answers those calls ``timeout`` (or retries them when the node stops beating)."""
        commands = [pack("PUBLISH", ch, wire.encode_batch(items)) for ch, items in publishes.items()]
        sent = self._control.send(b"".join(commands), len(commands))
        sent.add_done_callback(_report_lost_replies)
        return sent

    # -- loops ----------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self._heartbeat(keys=[wire.HEARTBEATS], args=[self.name])
            except (RedisError, OSError) as exc:
                log.warning("heartbeat failed: %s", type(exc).__name__)
            self._forget_expired(time.monotonic())

    def _forget_expired(self, now: float) -> None:
        """Drop finished calls older than the dedupe window (they expire in finishing order)."""
        expiry, seen = self._expiry, self._seen
        while expiry and expiry[0][0] <= now:
            _, call_id, entry = expiry.popleft()
            if seen.get(call_id) is entry:
                del seen[call_id]

    async def _subscribe(self) -> None:
        """A fresh control link, subscribed and confirmed by Redis before anything else happens:
        a node announces itself only once credits and cancels sent to it can arrive."""
        await self._control.connect()
        async with asyncio.timeout(10):
            await self._control.subscribe(wire.node_control(self.name))

    async def _control_loop(self) -> None:
        """Keep the control link up; survive Redis going away and coming back.

        When the link fails the node takes a new one and announces itself again (Redis may have
        restarted empty), retrying both with a growing delay until they succeed.
        """

        async def relink() -> None:
            await self._subscribe()
            if not self._stopping:
                await self._announce()
                log.info("service node %s reconnected and announced itself again", self.name)

        try:
            await keep_linked(lambda: self._control, relink, "service node control", log)
        finally:
            self._control.close()

    def _control_message(self, channel: bytes, data: bytes) -> None:
        self._control_batch(data)

    def _control_batch(self, data: bytes) -> None:
        for message in wire.decode_batch(data):
            call_id = message.get("id")
            seen = self._seen.get(call_id) if isinstance(call_id, str) else None
            if seen is None:
                continue
            credits = message.get("n")
            if message["t"] == wire.CANCEL and seen.task is not None:
                seen.task.cancel()
            elif message["t"] == wire.CREDIT and _is_count(credits):
                seen.credits += credits
                if seen.credit is not None:
                    seen.credit.set()

    async def _call_loop(self) -> None:
        """Pop as many calls as there are free slots, in one command, and start them in order.

        Before the next pop, the calls just started run their first step and whatever replies
        they have leave: a quick function's reply does not wait behind the next read."""
        while not self._stopping:
            while self._inflight >= self.concurrency:
                self._room.clear()
                await self._room.wait()
            try:
                if not self._calls.connected:
                    await self._calls.connect()
                    self._calls_client = await self._calls.command("CLIENT", "ID")
                popped = await self._calls.command(
                    "BLMPOP", 1, 1, self._queue, "RIGHT", "COUNT", self.concurrency - self._inflight
                )
            except (RedisError, OSError, hiredis.ReplyError) as exc:
                log.warning("reading calls failed: %s", type(exc).__name__)
                self._calls.close()
                await asyncio.sleep(0.5)
                continue
            if not popped:
                continue
            for raw in cast("list[bytes]", popped[1]):
                message = wire.decode(raw)
                if message is None or message["t"] != wire.CALL:
                    continue
                if self._stopping:  # popped while the node was told to stop: another node runs it
                    self._reply(str(message.get("gw")), {"t": wire.NACK, "id": message.get("id")})
                else:
                    self._accept(message)
            await asyncio.sleep(0)
            self.outbox.flush()

    def _accept(self, message: dict[str, Any]) -> None:
        """Start a call unless its id was seen; a finished duplicate gets its reply again."""
        call_id = str(message.get("id"))
        reply_to = wire.gateway_replies(str(message.get("gw")))
        credits = message.get("credits") or 0
        if not _is_count(credits):
            error = {"t": wire.ERROR, "id": call_id, "code": codes.BAD_REQUEST, "message": "invalid credits"}
            self.outbox.publish(reply_to, wire.encode(error))
            return
        seen = self._seen.get(call_id)
        if seen is not None:
            if seen.final is not None:
                self.outbox.publish(reply_to, seen.final)
            return
        seen = self._seen[call_id] = _Seen(reply_to, credits=credits)
        outcome = self._start(call_id, message, seen)
        if isinstance(outcome, dict):
            self._finish(call_id, seen, outcome)
            return
        seen.task = asyncio.create_task(outcome)
        self._inflight += 1
        self._running.add(seen.task)
        seen.task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._inflight -= 1
        self._room.set()

    # -- running a call -------------------------------------------------------------------
    def _start(
        self, call_id: str, message: dict[str, Any], seen: _Seen
    ) -> dict[str, Any] | Coroutine[Any, Any, None]:
        """Check the call and run a coroutine function's first step at once (see
        :mod:`relaygate.service.eager`): the final reply of a call that needs no task, else the
        coroutine to run in one."""
        handler = self.service.handlers.get((str(message.get("fn")), message.get("v")))
        if handler is None:
            return {
                "t": wire.ERROR,
                "id": call_id,
                "code": codes.NOT_FOUND,
                "message": "not served by this node",
            }
        values, errors = handler.spec.validate_args(message.get("args"))
        if errors:
            return {
                "t": wire.ERROR,
                "id": call_id,
                "code": codes.INVALID_ARGS,
                "message": orjson.dumps(errors).decode(),
            }
        try:
            ctx = CallContext.from_wire(message["ctx"])
        except (KeyError, TypeError, ValueError):
            return {"t": wire.ERROR, "id": call_id, "code": codes.BAD_REQUEST, "message": "invalid ctx"}
        if handler.spec.response_type == "stream" or not handler.is_coroutine:
            return self._run(call_id, handler, values, ctx, seen)
        try:
            outcome = first_step(handler.function(**values, ctx=ctx))
        except (Exception, asyncio.CancelledError) as exc:
            return self._error_reply(call_id, exc)
        if isinstance(outcome, Suspended):
            return self._run(call_id, handler, values, ctx, seen, outcome)
        return {"t": wire.OK, "id": call_id, "result": outcome}

    async def _run(
        self,
        call_id: str,
        handler: Handler,
        values: dict[str, Any],
        ctx: CallContext,
        seen: _Seen,
        first: Suspended | None = None,
    ) -> None:
        final: dict[str, Any]
        try:
            final = await self._execute(call_id, handler, values, ctx, seen, first)
        except (Exception, asyncio.CancelledError) as exc:
            final = self._error_reply(call_id, exc)
        self._finish(call_id, seen, final)

    def _error_reply(self, call_id: str, exc: BaseException) -> dict[str, Any]:
        """The final reply of a call that raised (or was cancelled)."""
        if isinstance(exc, asyncio.CancelledError):  # by the gateway (client cancel, timeout) or our shutdown
            code = codes.UNAVAILABLE if self._stopping else codes.CANCELLED
            return {"t": wire.ERROR, "id": call_id, "code": code, "message": code}
        if isinstance(exc, TimeoutError):  # past the caller's deadline: the gateway answered timeout already
            return {"t": wire.ERROR, "id": call_id, "code": codes.TIMEOUT, "message": "deadline passed"}
        if isinstance(exc, ServiceError):
            return {
                "t": wire.ERROR,
                "id": call_id,
                "code": exc.code,
                "message": exc.message,
                "business": True,
            }
        log.exception("service function raised", exc_info=exc)
        text = f"{type(exc).__name__}: {exc}" if self.debug_errors else "internal error"
        return {"t": wire.ERROR, "id": call_id, "code": codes.INTERNAL, "message": text}

    def _finish(self, call_id: str, seen: _Seen, final: dict[str, Any]) -> None:
        """Send the final reply and keep it for duplicates of the call (the dedupe window)."""
        seen.task = None
        try:
            data = wire.encode(final)
        except TypeError:
            data = wire.encode(
                {"t": wire.ERROR, "id": call_id, "code": codes.INTERNAL, "message": "result is not JSON"}
            )
        seen.final = data
        self._expiry.append((time.monotonic() + self.dedupe_window, call_id, seen))
        self.outbox.publish(seen.reply_to, data)

    async def _execute(
        self,
        call_id: str,
        handler: Handler,
        values: dict[str, Any],
        ctx: CallContext,
        seen: _Seen,
        first: Suspended | None,
    ) -> dict[str, Any]:
        """The rest of a call that needs a task, within the caller's deadline."""
        watch = self._deadlines.start(max(0.001, ctx.remaining()), handler.spec.key)
        try:
            if first is not None:
                result = await first
            elif handler.spec.response_type == "stream":
                await self._stream(call_id, handler, values, ctx, seen)
                return {"t": wire.END, "id": call_id}
            elif handler.is_coroutine:
                result = await handler.function(**values, ctx=ctx)
            else:
                result = await _call(handler.function, values, ctx)
            return {"t": wire.OK, "id": call_id, "result": result}
        except asyncio.CancelledError:
            if watch.timed_out():
                raise TimeoutError from None
            raise
        finally:
            self._deadlines.end(watch)

    async def _stream(
        self, call_id: str, handler: Handler, values: dict[str, Any], ctx: CallContext, seen: _Seen
    ) -> None:
        seq = 0
        credit = seen.credit = asyncio.Event()
        generator = handler.function(**values, ctx=ctx)
        try:
            while True:
                while seen.credits <= 0:  # backpressure: pause before producing the next chunk
                    credit.clear()
                    await credit.wait()
                try:
                    chunk = await anext(generator)
                except StopAsyncIteration:
                    return
                seq += 1
                seen.credits -= 1
                message = {"t": wire.CHUNK, "id": call_id, "seq": seq, "result": chunk}
                self.outbox.publish(seen.reply_to, wire.encode(message))
        finally:
            await generator.aclose()


def _report_lost_replies(sent: asyncio.Future[Any]) -> None:
    error = sent.exception()
    if error is None:
        error = next((r for r in sent.result() if isinstance(r, hiredis.ReplyError)), None)
    if error is not None:
        log.warning("sending replies failed: %s", error)


def _is_count(value: object) -> TypeGuard[int]:
    """A credit count from the wire: a non-negative int (JSON may carry anything)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


async def _call(function: Callable[..., Any], values: dict[str, Any], ctx: CallContext) -> Any:
    """A plain function runs in a worker thread."""
    result = await asyncio.to_thread(function, **values, ctx=ctx)
    return await result if inspect.isawaitable(result) else result


async def serve(service: Service, redis_url: str, **options: Any) -> None:
    """Run a node until SIGTERM or SIGINT, then drain and deregister."""
    # a pool that waits for a free connection when many calls run at once, instead of failing
    redis = Redis.from_pool(BlockingConnectionPool.from_url(redis_url, max_connections=64, timeout=10))
    node = ServiceNode(service, redis, **options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await node.start()
        await stop.wait()
    finally:
        await node.stop()
        await redis.aclose()


def run(service: Service, redis_url: str, **options: Any) -> None:
    """Blocking entry point (what ``relaygate service run MODULE:ATTR --redis URL`` calls), on
    uvloop when it is installed (a third of the node's CPU per call goes to the event loop)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(service, redis_url, **options))
    else:
        uvloop.run(serve(service, redis_url, **options))
