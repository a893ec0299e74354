"""The gateway executor: one transport-independent entry point for the channel layer.

Order of checks (each rejection runs nothing): decode -> authentication -> lookup/version ->
permission -> rate limit -> arguments -> execute. Calls of one socket run concurrently, bounded
per socket; sync calls answer in the reply, async and stream calls answer later through
``emit``. A local function's first step runs at once (:mod:`relaygate.service.eager`): one that
returns without suspending is answered without a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass
from typing import Any, Final

from relaygate.gateway import metrics
from relaygate.gateway.config import FunctionConfig
from relaygate.gateway.lanes import Lane, Lanes
from relaygate.gateway.limiter import LimiterConfig, RateLimiter
from relaygate.gateway.permission import is_allowed, rule_allows
from relaygate.gateway.registry import Registry
from relaygate.gateway.request import (
    MAX_REQUEST_BYTES,
    CallerContext,
    Fields,
    GatewayRequest,
    decode_request,
    request_id_of,
    valid_fields,
)
from relaygate.gateway.response import (
    GatewayError,
    async_ack,
    ok,
    stream_ack,
    stream_chunk,
    stream_end,
)
from relaygate.gateway.selection import NodeSelector
from relaygate.gateway.transport import NodeLost, RemoteCall, Transport
from relaygate.protocol.gateway import codes, wire
from relaygate.protocol.gateway.codes import ServiceError
from relaygate.protocol.gateway.context import CallContext, wire_context
from relaygate.service.deadlines import Deadlines
from relaygate.service.eager import Suspended, first_step

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], Awaitable[None]]
RETRY_BASE_S: Final = 0.025
_CALL_IDS: Final = itertools.count()
_CALL_ID_PREFIX: Final = os.urandom(8).hex()


def _new_call_id() -> str:
    """Unique across gateways and restarts (random per process), cheap within one."""
    return f"{_CALL_ID_PREFIX}{next(_CALL_IDS):x}"


@dataclass(slots=True)
class _Call:
    request: GatewayRequest
    config: FunctionConfig
    caller: CallerContext
    device_id: str | None
    values: dict[str, Any]
    emit: Emit
    call_id: str = ""
    """Set on the first remote attempt; every attempt of the call sends the same id (node dedupe)."""
    cancelled_by_client: bool = False
    node: str | None = None
    """Where it ran: ``local`` or the service node of the last attempt (telemetry)."""

    def record(self, code: str | None, started: float) -> None:
        spec = self.config.spec
        self.config.stats.record(code, started, spec.version, spec.response_type, self.node)


class Gateway:
    """Runs gateway requests against the :class:`Registry` (local functions and service nodes).

    ``transport`` reaches service nodes (cluster mode); without one only local functions run.
    """

    def __init__(
        self,
        *,
        registry: Registry | None = None,
        limiter: RateLimiter | None = None,
        transport: Transport | None = None,
        per_socket: int = 16,
        queue_per_socket: int = 64,
        max_pending: int = 10_000,
        stream_credits: int = 8,
        debug_errors: bool = False,
    ) -> None:
        self.registry = registry or Registry()
        self.limiter = limiter or RateLimiter()
        self.transport = transport
        self.selector = NodeSelector()
        self.lanes = Lanes(per_socket=per_socket, queue_per_socket=queue_per_socket, max_pending=max_pending)
        self.deadlines = Deadlines()
        self.stream_credits = max(2, stream_credits)
        self.debug_errors = debug_errors
        self._running: dict[tuple[Hashable, str], tuple[asyncio.Task[None], _Call]] = {}
        self._detached: set[asyncio.Task[None]] = set()  # response_type "none": no request id to track
        self.draining = False

    # -- registration and admin ----------------------------------------------------------
    def register_local(
        self, service: str, request_type: str, function: Callable[..., Any], **options: Any
    ) -> FunctionConfig:
        """Register a Python function that runs on this gateway node (``nodes: "local"``)."""
        config = FunctionConfig.build(
            function, service=service, request_type=request_type, nodes="local", **options
        )
        self.registry.register_local(config)
        return config

    def configure_rate_limits(self, config: LimiterConfig) -> None:
        self.limiter.configure(config)

    # -- the channel layer's entry points -------------------------------------------------
    def start_request(
        self, payload: object, caller: CallerContext, emit: Emit, *, max_size: int | None = None
    ) -> dict[str, Any] | Coroutine[Any, Any, dict[str, Any]]:
        """Handle one ``phoenix_gen_api`` push as far as it goes without waiting.

        Returns the reply's response object when it is known at once (a rejection, the ack of an
        async or stream call, a ``none`` call), else a coroutine that returns it (a sync call, or
        checks that must await: a callable permission, rate limits). Run each such coroutine in a
        task of its own, so that one socket's calls run concurrently. The reply status is ``ok``
        when ``response["success"]`` is true, else ``error``; later responses (async results,
        stream chunks and ends) go through ``emit``. ``max_size`` bounds the payload's encoded
        size when the transport knows it (see :func:`decode_request`).
        """
        started = time.perf_counter()
        fields = None
        if type(payload) is dict and max_size is not None and max_size <= MAX_REQUEST_BYTES:
            fields = valid_fields(payload)
        if fields is not None:
            now = self._call_now(fields, caller, emit, started)
            if now is not None:
                return now
            request = GatewayRequest(*fields)
        else:
            try:
                request = decode_request(payload, max_size=max_size)
            except GatewayError as exc:
                metrics.record_call(None, None, exc.code, started)
                return exc.to_response(request_id_of(payload))
        try:
            admitted = self._admit(request, caller, emit)
        except GatewayError as exc:
            return _rejected(request, exc, started)
        if isinstance(admitted, _Call):
            return self._start(admitted, started)
        return self._start_admitted(request, admitted, started)

    async def handle_request(
        self, payload: object, caller: CallerContext, emit: Emit, *, max_size: int | None = None
    ) -> dict[str, Any]:
        """:meth:`start_request`, awaited: the reply's response object (a sync call's result)."""
        outcome = self.start_request(payload, caller, emit, max_size=max_size)
        if isinstance(outcome, dict):
            return outcome
        return await outcome

    def _start(self, call: _Call, started: float) -> dict[str, Any] | Coroutine[Any, Any, dict[str, Any]]:
        rid = call.request.request_id
        config = call.config
        response_type = config.spec.response_type
        connection = call.caller.connection
        if response_type == "sync":
            if config.is_coroutine and self.lanes.can_run_now(connection):
                return self._run_eagerly(call, started)
            return self._run_sync(call, self.lanes.admit(connection), started)
        lane = self.lanes.admit(connection)
        if response_type == "none":
            detached = asyncio.create_task(self._in_background(call, lane, started))
            self._detached.add(detached)
            detached.add_done_callback(self._detached.discard)
            return ok(rid, None)
        task = asyncio.create_task(self._in_background(call, lane, started))
        self._running[(call.caller.connection, rid)] = (task, call)
        return stream_ack(rid) if response_type == "stream" else async_ack(rid)

    async def _start_admitted(
        self, request: GatewayRequest, admitting: Awaitable[_Call], started: float
    ) -> dict[str, Any]:
        """The rest of a push whose checks await (a callable permission, rate limits)."""
        try:
            call = await admitting
        except GatewayError as exc:
            return _rejected(request, exc, started)
        outcome = self._start(call, started)
        if isinstance(outcome, dict):
            return outcome
        return await outcome

    def _call_now(
        self, fields: Fields, caller: CallerContext, emit: Emit, started: float
    ) -> dict[str, Any] | Coroutine[Any, Any, dict[str, Any]] | None:
        """The common case in one pass: a valid request (``fields``) for a local sync coroutine
        function that every check admits at once (no callable permission, no rate limit, a free
        running slot, valid arguments), run eagerly. None, with nothing done, for anything
        else: the general path then decides, and answers every rejection."""
        if caller.user_id is None or self.draining:
            return None
        rid, service, request_type, version, args, device_id = fields
        config = self.registry.resolved(service, request_type, version)
        if config is None or not config.eager:
            return None
        spec = config.spec
        connection = caller.connection
        if (
            (spec.check_permission.kind != "none" and not rule_allows(config, caller, args))
            or not self.lanes.can_run_now(connection)
            or (self._running and (connection, rid) in self._running)
            or self.limiter.applies(spec)
        ):
            return None
        values, errors = spec.validate_args(args)
        if errors:
            return None
        device_id = caller.device_id or device_id
        deadline = time.time() + spec.timeout_ms / 1000
        ctx = CallContext(rid, _user_text(caller.user_id), device_id, caller.sorted_roles, deadline)
        outcome = self._first_step(config, rid, values, ctx)
        if isinstance(outcome, Suspended):
            call = _Call(GatewayRequest(*fields), config, caller, device_id, values, emit, node="local")
            return self._run_sync(call, self.lanes.enter(connection), started, outcome)
        config.stats.record(outcome["code"], started, spec.version, "sync", "local")
        return outcome

    def _first_step(
        self, config: FunctionConfig, rid: str, values: dict[str, Any], ctx: CallContext
    ) -> dict[str, Any] | Suspended:
        """A local coroutine function's first step, run here and now (see
        :mod:`relaygate.service.eager`): its response, or the :class:`Suspended` function to
        await in a task."""
        assert config.function is not None
        try:
            outcome = first_step(config.function(**values, ctx=ctx))
        except (Exception, asyncio.CancelledError) as exc:
            return self._function_error(exc).to_response(rid)
        return outcome if type(outcome) is Suspended else ok(rid, outcome)

    def _run_eagerly(
        self, call: _Call, started: float
    ) -> dict[str, Any] | Coroutine[Any, Any, dict[str, Any]]:
        """Run a local coroutine function's first step here and now (see
        :mod:`relaygate.service.eager`): a function that answers without suspending costs no
        task and no loop turn; one that suspends goes on, admitted to its socket's lane, in the
        task that runs the returned coroutine (and its timeout starts there)."""
        rid = call.request.request_id
        config = call.config
        assert config.function is not None
        call.node = "local"
        outcome = self._first_step(config, rid, call.values, self._context(call, config.spec.timeout_ms))
        if isinstance(outcome, Suspended):
            return self._run_sync(call, self.lanes.enter(call.caller.connection), started, outcome)
        call.record(outcome["code"], started)
        return outcome

    async def _run_sync(
        self, call: _Call, lane: Lane, started: float, first: Suspended | None = None
    ) -> dict[str, Any]:
        response = await self.lanes.run(
            call.caller.connection, lane, self._respond(call, first), entered=first is not None
        )
        call.record(response["code"], started)
        return response

    async def cancel(self, request_id: str, caller: CallerContext) -> bool:
        """Cancel this socket's running async or stream call; it ends with ``cancelled``."""
        entry = self._running.get((caller.connection, request_id))
        if entry is None:
            return False
        task, call = entry
        call.cancelled_by_client = True
        task.cancel()
        return True

    async def close_connection(self, connection: Hashable) -> None:
        """The socket is gone: stop its running calls without emitting anything."""
        entries = [(k, v) for k, v in self._running.items() if k[0] == connection]
        for _, (task, call) in entries:
            call.emit = _discard
            task.cancel()
        if entries:  # wait() neither raises the calls' errors nor swallows our own cancellation
            await asyncio.wait([task for _, (task, _call) in entries])

    async def drain(self, grace: float = 10.0) -> None:
        """Shutdown, first step: refuse new calls (``unavailable``, so clients retry elsewhere) and
        wait up to ``grace`` seconds for the admitted ones, whatever their response type, to end."""
        self.draining = True
        try:
            async with asyncio.timeout(grace):
                await self.lanes.wait_idle()
        except TimeoutError:
            log.warning("gateway drain: %d calls still running after %.1f s", self.lanes.pending, grace)

    async def stop(self) -> None:
        """Cancel every background call (shutdown after the grace period)."""
        tasks = [task for task, _ in self._running.values()] + list(self._detached)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- checks ---------------------------------------------------------------------------
    def _admit(
        self, request: GatewayRequest, caller: CallerContext, emit: Emit
    ) -> _Call | Coroutine[Any, Any, _Call]:
        """Run the checks in the contract's order; what needs no await is decided here and now,
        the rest (a callable permission, rate limits) is returned as a coroutine."""
        if caller.user_id is None:
            raise GatewayError(codes.UNAUTHENTICATED, "the socket has no authenticated user")
        config = self.registry.resolve(request.service, request.request_type, request.version)
        if self.draining:
            raise GatewayError(codes.UNAVAILABLE, "this node is shutting down")
        if config.permission is not None:
            return self._admit_permitted(request, caller, config, emit)
        if config.spec.check_permission.kind != "none" and not rule_allows(config, caller, request.args):
            raise GatewayError(codes.PERMISSION_DENIED, "permission denied")
        return self._admit_allowed(request, caller, config, emit)

    async def _admit_permitted(
        self, request: GatewayRequest, caller: CallerContext, config: FunctionConfig, emit: Emit
    ) -> _Call:
        """The checks from a callable ``check_permission`` on."""
        try:
            allowed = await is_allowed(config, caller, request.args)
        except Exception as exc:  # a broken check_permission callable: a server error, not a denial
            raise self._function_error(exc) from None
        if not allowed:
            raise GatewayError(codes.PERMISSION_DENIED, "permission denied")
        admitted = self._admit_allowed(request, caller, config, emit)
        return admitted if isinstance(admitted, _Call) else await admitted

    def _admit_allowed(
        self, request: GatewayRequest, caller: CallerContext, config: FunctionConfig, emit: Emit
    ) -> _Call | Coroutine[Any, Any, _Call]:
        """The checks after the permission: room, arguments, rate limits (these await)."""
        if not self.lanes.has_room(caller.connection):
            raise GatewayError(codes.OVERLOADED, "too many calls in flight, try again later")
        if self._running and (caller.connection, request.request_id) in self._running:
            raise GatewayError(codes.BAD_REQUEST, "a call with this request_id is still running")
        values, errors = config.spec.validate_args(request.args)
        if self.limiter.applies(config.spec):
            return self._admit_limited(request, caller, config, emit, values, errors)
        if errors:
            raise GatewayError(codes.INVALID_ARGS, "invalid arguments", result=errors)
        return self._admitted(request, caller, config, emit, values)

    async def _admit_limited(
        self,
        request: GatewayRequest,
        caller: CallerContext,
        config: FunctionConfig,
        emit: Emit,
        values: dict[str, Any],
        errors: dict[str, Any],
    ) -> _Call:
        device_id = caller.device_id or request.device_id
        try:  # the limit is reported first, but an invalid request uses no quota
            await self.limiter.check(config.spec, caller, device_id, request.args, count=not errors)
        except GatewayError as exc:
            if exc.code == codes.RATE_LIMITED:
                metrics.RATE_LIMITED.labels(request.service, request.request_type).inc()
            raise
        if errors:
            raise GatewayError(codes.INVALID_ARGS, "invalid arguments", result=errors)
        return self._admitted(request, caller, config, emit, values)

    def _admitted(
        self,
        request: GatewayRequest,
        caller: CallerContext,
        config: FunctionConfig,
        emit: Emit,
        values: dict[str, Any],
    ) -> _Call:
        return _Call(request, config, caller, caller.device_id or request.device_id, values, emit)

    # -- running --------------------------------------------------------------------------
    async def _in_background(self, call: _Call, lane: Lane, started: float) -> None:
        rid = call.request.request_id
        key = (call.caller.connection, rid)
        try:
            response = await self.lanes.run(call.caller.connection, lane, self._respond(call))
        except asyncio.CancelledError:
            if not call.cancelled_by_client:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            response = GatewayError(codes.CANCELLED, "cancelled by the client").to_response(rid)
        finally:
            if self._running.get(key, (None,))[0] is asyncio.current_task():
                del self._running[key]
        call.record(response["code"], started)
        if call.config.spec.response_type == "none":
            if not response["success"]:
                log.info("gateway call %s ended with %s", rid, response["code"])
            return
        await self._emit(call, response)

    async def _emit(self, call: _Call, response: dict[str, Any]) -> None:
        try:
            await call.emit(response)
        except Exception as exc:  # the socket went away: nothing more to tell it
            log.debug("gateway emit failed: %s", type(exc).__name__)
            raise asyncio.CancelledError from exc

    async def _respond(self, call: _Call, first: Suspended | None = None) -> dict[str, Any]:
        """Run the call and build its final response (errors included); ``first``: the local
        function, its first step run already (see :meth:`_run_eagerly`)."""
        rid = call.request.request_id
        try:
            if call.config.spec.response_type == "stream":
                await self._stream(call)
                return stream_end(rid)
            return ok(rid, await self._execute(call, first))
        except GatewayError as exc:
            return exc.to_response(rid)

    def _context(self, call: _Call, timeout_ms: int) -> CallContext:
        deadline = time.time() + timeout_ms / 1000
        caller = call.caller
        return CallContext(
            call.request.request_id, _user_text(caller.user_id), call.device_id, caller.sorted_roles, deadline
        )

    async def _execute(self, call: _Call, first: Suspended | None = None) -> Any:
        """Run a sync/async call, locally or on a service node (retries included), within its
        ``timeout_ms``: one watch on the shared timer, not an ``asyncio.timeout`` per call."""
        config = call.config
        spec = config.spec
        timeout = spec.timeout_ms / 1000
        watch = self.deadlines.start(timeout)
        try:
            if config.function is None:
                remote, reply = await self._remote_attempts(call, time.monotonic() + timeout)
                remote.close(cancel=False)
                return reply.get("result")
            call.node = "local"
            try:
                if first is not None:
                    return await first
                ctx = self._context(call, spec.timeout_ms)
                if config.is_coroutine:
                    return await config.function(**call.values, ctx=ctx)
                return await _invoke(config.function, call.values, ctx)
            except (asyncio.CancelledError, GatewayError):
                raise
            except Exception as exc:
                raise self._function_error(exc) from None
        except asyncio.CancelledError:
            if watch.timed_out():
                raise GatewayError(codes.TIMEOUT, f"no result within {spec.timeout_ms} ms") from None
            raise
        finally:
            self.deadlines.end(watch)

    def _function_error(self, exc: BaseException) -> GatewayError:
        if isinstance(exc, ServiceError):
            return GatewayError(exc.code, exc.message, business=True)
        if isinstance(exc, GatewayError):
            return exc
        log.exception("gateway function raised", exc_info=exc)
        message = f"{type(exc).__name__}: {exc}" if self.debug_errors else "internal error"
        return GatewayError(codes.INTERNAL, message)

    # -- streams --------------------------------------------------------------------------
    async def _stream(self, call: _Call) -> None:
        """Emit every chunk (awaiting each ``emit``: that is the backpressure), then return."""
        spec = call.config.spec
        rid = call.request.request_id
        seq = 0
        try:
            async with (
                asyncio.timeout(spec.max_duration_ms / 1000),
                contextlib.aclosing(self._chunks(call)) as chunks,
            ):
                async for chunk in chunks:
                    seq += 1
                    metrics.count_chunk(spec.service, spec.request_type)
                    await self._emit(call, stream_chunk(rid, seq, chunk))
        except TimeoutError:
            raise GatewayError(
                codes.TIMEOUT, f"the stream ran longer than {spec.max_duration_ms} ms"
            ) from None

    def _chunks(self, call: _Call) -> AsyncGenerator[Any, None]:
        if call.config.function is not None:
            return self._local_chunks(call)
        return self._remote_chunks(call)

    async def _local_chunks(self, call: _Call) -> AsyncGenerator[Any, None]:
        spec = call.config.spec
        assert call.config.function is not None
        call.node = "local"
        ctx = self._context(call, spec.max_duration_ms)
        generator = call.config.function(**call.values, ctx=ctx)
        try:
            while True:
                try:
                    async with asyncio.timeout(spec.timeout_ms / 1000):
                        chunk = await anext(generator)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise GatewayError(codes.TIMEOUT, f"no chunk within {spec.timeout_ms} ms") from None
                except Exception as exc:
                    raise self._function_error(exc) from None
                yield chunk
        finally:
            await generator.aclose()

    async def _remote_chunks(self, call: _Call) -> AsyncGenerator[Any, None]:
        spec = call.config.spec
        idle = spec.timeout_ms / 1000
        remote, reply = await self._remote_attempts(call, time.monotonic() + idle, stream=True)
        unacked = 0
        finished = False
        try:
            while reply["t"] == wire.CHUNK:
                yield reply.get("result")
                unacked += 1
                if unacked * 2 >= self.stream_credits:
                    await remote.grant(unacked)
                    unacked = 0
                try:
                    async with asyncio.timeout(idle):
                        reply = await remote.receive()
                except TimeoutError:
                    raise GatewayError(codes.TIMEOUT, f"no chunk within {spec.timeout_ms} ms") from None
                except NodeLost as exc:
                    raise GatewayError(codes.UNAVAILABLE, f"the stream's node was lost: {exc}") from None
                if reply["t"] == wire.ERROR:
                    raise _remote_error(reply)
            finished = True
        finally:
            remote.close(cancel=not finished)

    # -- remote calls and retries ---------------------------------------------------------
    async def _remote_attempts(
        self, call: _Call, deadline: float, *, stream: bool = False
    ) -> tuple[RemoteCall, dict[str, Any]]:
        """Send the call and return its first reply, retrying on another node after transport
        failures only, with growing backoff, while the deadline allows."""
        spec = call.config.spec
        if self.transport is None:
            raise GatewayError(codes.UNAVAILABLE, "this gateway runs without service nodes")
        failed: list[str] = []
        retries = spec.retry.retries if spec.retry else 0
        reason = "no live node serves this function"
        for attempt in range(retries + 1):
            node = self._pick(call, failed)
            if node is None:
                break
            try:
                return await self._attempt(call, node, deadline, stream)
            except NodeLost as exc:
                reason = f"node {node}: {exc}"
                failed.append(node)
            remaining = deadline - time.monotonic()
            if attempt == retries or remaining <= 0:
                break
            metrics.RETRIES.labels(spec.service, spec.request_type).inc()
            backoff = RETRY_BASE_S * (2**attempt) * (1 + random.random() / 2)
            await asyncio.sleep(min(backoff, remaining))
        raise GatewayError(codes.UNAVAILABLE, reason)

    async def _attempt(
        self, call: _Call, node: str, deadline: float, stream: bool
    ) -> tuple[RemoteCall, dict[str, Any]]:
        assert self.transport is not None
        spec = call.config.spec
        remaining = deadline - time.monotonic()
        budget_ms = spec.max_duration_ms if stream else max(1, int(remaining * 1000))
        if not call.call_id:
            call.call_id = _new_call_id()
        message = {
            "t": wire.CALL,
            "id": call.call_id,
            "svc": spec.service,
            "fn": spec.request_type,
            "v": spec.version,
            "rt": spec.response_type,
            "args": call.values,
            "ctx": wire_context(
                call.request.request_id,
                _user_text(call.caller.user_id),
                call.device_id,
                call.caller.sorted_roles,
                time.time() + budget_ms / 1000,
            ),
            "credits": self.stream_credits if stream else 0,
        }
        call.node = node
        remote = await self.transport.call(node, message)
        try:
            if stream:  # (sync and async calls are bounded by _execute's watch)
                async with asyncio.timeout(max(0.0, remaining)):
                    reply = await remote.receive()
            else:
                reply = await remote.receive()
        except TimeoutError:
            remote.close(cancel=True)
            raise GatewayError(codes.TIMEOUT, f"no chunk within {spec.timeout_ms} ms") from None
        except BaseException:
            remote.close(cancel=True)
            raise
        if reply["t"] == wire.ERROR:
            remote.close(cancel=False)
            raise _remote_error(reply)
        return remote, reply

    def _pick(self, call: _Call, failed: list[str]) -> str | None:
        assert self.transport is not None
        spec = call.config.spec
        live = self.transport.live_nodes(spec.key)
        if (
            not failed
            and len(live) == 1
            and type(spec.nodes) is str
            and spec.choose_node_mode.kind != "round_robin"
        ):
            return live[0]  # random and rendezvous hashing pick the only node (round robin counts)
        if isinstance(spec.nodes, tuple):
            live = [n for n in live if n in spec.nodes]
        if failed:
            mode = spec.retry.mode if spec.retry else "any"
            if mode == "same_node":
                return failed[0] if failed[0] in live else None
            others = [n for n in live if n not in failed]
            live = others if mode == "all_nodes" else (others or live)
        return self.selector.choose(
            spec.choose_node_mode,
            spec.key,
            live,
            request_id=call.request.request_id,
            args=call.values,
            user_id=None if call.caller.user_id is None else str(call.caller.user_id),
        )


def _user_text(user_id: object) -> str | None:
    """The caller's user id as functions see it (a string; a socket may hold another type)."""
    return user_id if user_id is None or type(user_id) is str else str(user_id)


def _rejected(request: GatewayRequest, exc: GatewayError, started: float) -> dict[str, Any]:
    """The response of a request a check refused (counted; client-made names are not labels)."""
    known = exc.code not in (codes.NOT_FOUND, codes.UNAUTHENTICATED)
    metrics.record_call(
        request.service if known else None, request.request_type if known else None, exc.code, started
    )
    return exc.to_response(request.request_id)


def _remote_error(reply: dict[str, Any]) -> GatewayError:
    code = reply.get("code")
    if not codes.is_valid_code(code):
        code = codes.INTERNAL
    return GatewayError(
        str(code),
        str(reply.get("message") or code),
        result=reply.get("result"),
        business=bool(reply.get("business")),
    )


async def _invoke(function: Callable[..., Any], values: dict[str, Any], ctx: CallContext) -> Any:
    """Call a plain local function in a worker thread (coroutine functions are awaited inline)."""
    result = await asyncio.to_thread(function, **values, ctx=ctx)
    if inspect.isawaitable(result):
        result = await result
    return result


async def _discard(response: dict[str, Any]) -> None:
    """The emit of a socket that is gone."""
