"""The executor with local functions: order of checks, every error code, response types."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from relaygate.gateway import CallerContext, Gateway, LimiterConfig, RateLimiter
from relaygate.protocol.gateway import RateLimit, ServiceError
from relaygate.protocol.gateway.context import CallContext

KEYS = {
    "request_id",
    "result",
    "success",
    "error",
    "async",
    "has_more",
    "can_retry",
    "code",
    "retry_after_ms",
    "seq",
}


class Inbox:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def emit(self, response: dict[str, Any]) -> None:
        assert set(response) == KEYS
        self.items.append(response)
        self.changed.set()

    async def wait_final(self, rid: str) -> dict[str, Any]:
        async with asyncio.timeout(10):
            while True:
                for item in self.items:
                    if item["request_id"] == rid and not item["has_more"]:
                        return item
                self.changed.clear()
                await self.changed.wait()


def req(rid: str, request_type: str, args: dict | None = None, **extra: Any) -> dict[str, Any]:
    return {"request_id": rid, "service": "svc", "request_type": request_type, "args": args or {}, **extra}


USER = CallerContext(
    "u1", roles=frozenset({"staff"}), device_id="d1", ip_address="10.0.0.1", connection="sock1"
)


GATES: dict[str, asyncio.Event] = {}
"""Per request id: a ``gated`` call runs until the test sets its gate (no timing assumptions)."""


@pytest.fixture
def gw() -> Gateway:
    gateway = Gateway(per_socket=2, queue_per_socket=1)
    GATES.clear()

    async def gated(ctx: CallContext) -> str:
        await GATES.setdefault(ctx.request_id, asyncio.Event()).wait()
        return "done"

    async def echo(x: Any, ctx: CallContext) -> Any:
        return {"x": x, "user": ctx.user_id, "roles": list(ctx.user_roles), "device": ctx.device_id}

    async def versioned(ctx: CallContext, tag: str) -> str:
        return tag

    def plain(n: int, ctx: CallContext) -> dict[str, Any]:
        return {"n": n, "thread": threading.current_thread() is not threading.main_thread()}

    async def fail(ctx: CallContext) -> None:
        raise ServiceError("item_not_found", "no item 3")

    async def boom(ctx: CallContext) -> None:
        raise RuntimeError("secret detail")

    async def slow(ms: int, ctx: CallContext) -> str:
        await asyncio.sleep(ms / 1000)
        return "done"

    async def count(n: int, ctx: CallContext) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    async def forever(ctx: CallContext) -> AsyncIterator[int]:
        i = 0
        while True:
            i += 1
            yield i
            await asyncio.sleep(0.01)

    gateway.register_local("svc", "echo", echo, arg_types={"x": "any"})
    for version in ("1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1"):
        gateway.register_local(
            "svc", "v", versioned, version=version, arg_types={"tag": {"type": "string", "default": version}}
        )
    gateway.register_local("svc", "v", versioned, arg_types={"tag": {"type": "string", "default": "none"}})
    gateway.register_local("svc", "plain", plain, arg_types={"n": "integer"})
    gateway.register_local("svc", "fail", fail)
    gateway.register_local("svc", "boom", boom)
    gateway.register_local("svc", "slow", slow, arg_types={"ms": "integer"}, timeout_ms=200)
    gateway.register_local("svc", "slow_async", slow, arg_types={"ms": "integer"}, response_type="async")
    gateway.register_local("svc", "fire", slow, arg_types={"ms": "integer"}, response_type="none")
    gateway.register_local("svc", "gated", gated)
    gateway.register_local("svc", "gated_async", gated, response_type="async")
    gateway.register_local("svc", "count", count, arg_types={"n": "integer"}, response_type="stream")
    gateway.register_local("svc", "forever", forever, response_type="stream", timeout_ms=1000)
    gateway.register_local("svc", "mine", echo, arg_types={"x": "any"}, check_permission="arg:x")
    gateway.register_local("svc", "staff", echo, arg_types={"x": "any"}, check_permission="role:admin,staff")
    gateway.register_local("svc", "admins", echo, arg_types={"x": "any"}, check_permission="role:admin")
    gateway.register_local(
        "svc",
        "custom",
        echo,
        arg_types={"x": "any"},
        check_permission=lambda caller, args: args.get("x") == "yes",
    )
    gateway.register_local(
        "svc",
        "limited",
        echo,
        arg_types={"x": "any"},
        rate_limits=[{"key": "user_id", "max_requests": 2, "window_ms": 60_000}],
    )
    return gateway


async def call(
    gw: Gateway, payload: object, caller: CallerContext = USER, inbox: Inbox | None = None
) -> dict:
    response = await gw.handle_request(payload, caller, (inbox or Inbox()).emit)
    assert set(response) == KEYS
    return response


async def test_sync_success_uses_caller_facts_not_payload(gw: Gateway) -> None:
    r = await call(gw, req("r1", "echo", {"x": 1}, user_id="evil", user_roles=["admin"]))
    assert r["success"] and r["code"] is None and r["request_id"] == "r1"
    assert r["result"] == {"x": 1, "user": "u1", "roles": ["staff"], "device": "d1"}


@pytest.mark.parametrize(
    "payload",
    [
        [1],
        "x",
        {"service": "svc", "request_type": "echo"},
        {"request_id": "", "service": "svc", "request_type": "echo"},
        {"request_id": "x" * 129, "service": "svc", "request_type": "echo"},
        {"request_id": "r", "request_type": "echo"},
        {"request_id": "r", "service": "svc", "request_type": "echo", "args": [1]},
        {"request_id": "r", "service": "svc", "request_type": "echo", "args": {"x": "y" * (1024 * 1024)}},
    ],
)
async def test_bad_request(gw: Gateway, payload: object) -> None:
    r = await call(gw, payload)
    assert (r["code"], r["success"], r["can_retry"]) == ("bad_request", False, False)


async def test_unauthenticated_comes_before_lookup(gw: Gateway) -> None:
    r = await call(gw, req("r", "nope"), CallerContext(None, connection="anon"))
    assert r["code"] == "unauthenticated" and not r["can_retry"]


async def test_not_found(gw: Gateway) -> None:
    assert (await call(gw, req("r", "nope")))["code"] == "not_found"
    assert (await call(gw, {**req("r", "echo"), "service": "other"}))["code"] == "not_found"
    assert (await call(gw, req("r", "v", version="9.9.9")))["code"] == "not_found"


async def test_version_resolution(gw: Gateway) -> None:
    assert (await call(gw, req("r", "v")))["result"] == "2.0.0-rc.1"  # semver precedence, not text order
    gw.registry.disable(("svc", "v", "2.0.0-rc.1"))
    assert (await call(gw, req("r", "v")))["result"] == "1.10.0"
    assert (await call(gw, req("r", "v", version="1.2.0")))["result"] == "1.2.0"
    for version in ("1.0.0", "1.10.0", "1.2.0"):
        gw.registry.disable(("svc", "v", version))
    assert (await call(gw, req("r", "v")))["result"] == "none"
    assert (await call(gw, req("r", "v", version="1.2.0")))["code"] == "disabled"
    gw.registry.disable(("svc", "v", None))
    r = await call(gw, req("r", "v"))
    assert (r["code"], r["can_retry"]) == ("disabled", False)
    gw.registry.enable(("svc", "v", "1.0.0"))
    assert (await call(gw, req("r", "v")))["result"] == "1.0.0"
    gw.registry.delete(("svc", "v", "1.0.0"))
    assert (await call(gw, req("r", "v", version="1.0.0")))["code"] == "not_found"


async def test_permission_modes(gw: Gateway) -> None:
    assert (await call(gw, req("r", "mine", {"x": "u1"})))["success"]
    assert (await call(gw, req("r", "mine", {"x": "u2"})))["code"] == "permission_denied"
    assert (await call(gw, req("r", "staff", {"x": 1})))["success"]
    assert (await call(gw, req("r", "admins", {"x": 1})))["code"] == "permission_denied"
    assert (await call(gw, req("r", "custom", {"x": "yes"})))["success"]
    assert (await call(gw, req("r", "custom", {"x": "no"})))["code"] == "permission_denied"


async def test_rate_limited_and_rejections_consume_no_quota(gw: Gateway) -> None:
    # a denied (bad args) request first: it must not use quota
    assert (await call(gw, req("r", "limited", {"x": 1, "y": 2})))["code"] == "invalid_args"
    assert (await call(gw, req("r", "limited", {"x": 1})))["success"]
    assert (await call(gw, req("r", "limited", {"x": 1})))["success"]
    r = await call(gw, req("r", "limited", {"x": 1}))
    assert (r["code"], r["can_retry"]) == ("rate_limited", True)
    assert 0 < r["retry_after_ms"] <= 60_000
    other = CallerContext("u2", connection="sock2")
    assert (await call(gw, req("r", "limited", {"x": 1}), other))["success"]


async def test_global_limits_by_ip_and_device() -> None:
    gw = Gateway(limiter=RateLimiter())
    gw.configure_rate_limits(
        LimiterConfig(global_limits=(RateLimit("ip_address", 1, 60_000), RateLimit("device_id", 5, 60_000)))
    )

    async def hello(ctx: CallContext) -> str:
        return "hi"

    gw.register_local("svc", "hello", hello)
    a = CallerContext("u1", ip_address="1.1.1.1", connection="a")
    assert (await call(gw, req("r", "hello"), a))["success"]
    assert (await call(gw, req("r", "hello"), a))["code"] == "rate_limited"
    b = CallerContext("u1", ip_address="2.2.2.2", connection="b")
    assert (await call(gw, req("r", "hello"), b))["success"]


async def test_invalid_args_lists_fields(gw: Gateway) -> None:
    r = await call(gw, req("r", "plain", {"n": "5", "zz": 1}))
    assert r["code"] == "invalid_args" and not r["can_retry"]
    assert r["result"] == {"n": "must be an integer", "zz": "unknown argument"}


async def test_plain_function_runs_off_the_loop(gw: Gateway) -> None:
    assert (await call(gw, req("r", "plain", {"n": 3})))["result"] == {"n": 3, "thread": True}


async def test_business_error_passes_through_and_internal_is_generic(gw: Gateway) -> None:
    r = await call(gw, req("r", "fail"))
    assert (r["code"], r["error"], r["can_retry"]) == ("item_not_found", "no item 3", False)
    r = await call(gw, req("r", "boom"))
    assert (r["code"], r["error"]) == ("internal", "internal error")
    debug = Gateway(debug_errors=True)
    debug.registry = gw.registry
    assert "secret detail" in (await call(debug, req("r", "boom")))["error"]


async def test_timeout(gw: Gateway) -> None:
    r = await call(gw, req("r", "slow", {"ms": 5000}))
    assert (r["code"], r["can_retry"]) == ("timeout", True)


async def test_async_call_acks_then_pushes_final(gw: Gateway) -> None:
    inbox = Inbox()
    ack = await call(gw, req("a1", "slow_async", {"ms": 10}), inbox=inbox)
    assert (ack["success"], ack["async"], ack["result"]) == (True, True, None)
    final = await inbox.wait_final("a1")
    assert (final["result"], final["async"], final["success"]) == ("done", False, True)


async def test_none_response_type(gw: Gateway) -> None:
    r = await call(gw, req("n1", "fire", {"ms": 1}))
    assert (r["success"], r["result"], r["async"]) == (True, None, False)


async def test_stream_chunks_and_one_terminal(gw: Gateway) -> None:
    inbox = Inbox()
    ack = await call(gw, req("s1", "count", {"n": 5}), inbox=inbox)
    assert (ack["result"], ack["async"], ack["has_more"]) == ("init", True, True)
    end = await inbox.wait_final("s1")
    chunks = [i for i in inbox.items if i["has_more"]]
    assert [c["result"] for c in chunks] == [0, 1, 2, 3, 4]
    assert [c["seq"] for c in chunks] == [1, 2, 3, 4, 5]
    assert end["success"] and end["result"] is None and inbox.items[-1] is end
    assert sum(1 for i in inbox.items if not i["has_more"]) == 1


async def test_cancel_stream_ends_with_cancelled(gw: Gateway) -> None:
    inbox = Inbox()
    await call(gw, req("s2", "forever"), inbox=inbox)
    async with asyncio.timeout(5):
        while len(inbox.items) < 3:
            await asyncio.sleep(0.01)
    assert await gw.cancel("s2", USER)
    end = await inbox.wait_final("s2")
    assert (end["code"], end["success"], end["can_retry"]) == ("cancelled", False, False)
    assert not await gw.cancel("s2", USER)
    assert not await gw.cancel("s2", CallerContext("u1", connection="other"))


async def test_slow_consumer_pauses_local_stream(gw: Gateway) -> None:
    release = asyncio.Event()
    received: list[dict] = []

    async def slow_emit(response: dict[str, Any]) -> None:
        received.append(response)
        await release.wait()

    await gw.handle_request(req("s3", "forever"), USER, slow_emit)
    await asyncio.sleep(0.2)
    assert len(received) == 1  # the producer waits for the consumer
    await gw.close_connection("sock1")


async def test_overloaded_per_socket(gw: Gateway) -> None:
    inbox = Inbox()
    # per_socket=2 running + 1 queued = 3 admitted; the 4th is overloaded
    for i in range(3):
        assert (await call(gw, req(f"o{i}", "gated_async"), inbox=inbox))["success"]
    r = await call(gw, req("o3", "gated_async"), inbox=inbox)
    assert (r["code"], r["can_retry"]) == ("overloaded", True)
    other = CallerContext("u1", connection="sock-other")
    assert (await call(gw, req("o4", "echo", {"x": 1}), other))["success"]
    for i in range(3):
        GATES.setdefault(f"o{i}", asyncio.Event()).set()
    for i in range(3):
        assert (await inbox.wait_final(f"o{i}"))["result"] == "done"


async def test_sync_calls_of_one_socket_run_concurrently(gw: Gateway) -> None:
    gated = asyncio.create_task(call(gw, req("c1", "gated")))
    async with asyncio.timeout(5):
        while "c1" not in GATES:  # c1 is running
            await asyncio.sleep(0.01)
    assert (await call(gw, req("c2", "echo", {"x": 2})))["result"]["x"] == 2  # while c1 runs
    assert not gated.done()
    GATES.setdefault("c1", asyncio.Event()).set()
    assert (await gated)["result"] == "done"


async def test_duplicate_running_request_id_is_rejected(gw: Gateway) -> None:
    inbox = Inbox()
    await call(gw, req("d1", "gated_async"), inbox=inbox)
    assert (await call(gw, req("d1", "gated_async"), inbox=inbox))["code"] == "bad_request"
    GATES.setdefault("d1", asyncio.Event()).set()
    assert (await inbox.wait_final("d1"))["result"] == "done"


def test_config_validation() -> None:
    gw = Gateway()

    async def fn(ctx: CallContext) -> None: ...

    async def gen(ctx: CallContext) -> AsyncIterator[int]:
        yield 1

    from relaygate.protocol.gateway import ConfigError

    bad: list[dict[str, Any]] = [
        {"timeout_ms": 50},
        {"timeout_ms": 300_001},
        {"response_type": "stream"},
        {"version": "1.0"},
        {"choose_node_mode": "hash:missing"},
        {"retry": "sometimes:3"},
        {"rate_limits": [{"key": "email", "max_requests": 1, "window_ms": 1}]},
        {"unknown": 1},
    ]
    for options in bad:
        with pytest.raises(ConfigError):
            gw.register_local("svc", "f", fn, **options)
    with pytest.raises(ConfigError):
        gw.register_local("svc", "g", gen)  # a generator needs response_type stream
    config = gw.register_local("svc", "ok", fn)
    spec = config.spec
    assert (spec.version, spec.response_type, spec.timeout_ms, spec.max_duration_ms) == (
        None,
        "sync",
        5000,
        300_000,
    )
    assert (
        spec.choose_node_mode.kind,
        spec.check_permission.kind,
        spec.retry,
        spec.rate_limits,
        spec.disabled,
    ) == (
        "random",
        "none",
        None,
        (),
        False,
    )


def test_listing(gw: Gateway) -> None:
    rows = gw.registry.listing()["svc"]["v"]
    assert {"version": "1.2.0", "enabled": True, "response_type": "sync", "nodes": "local"} in rows


async def test_stop_cancels_fire_and_forget_calls() -> None:
    gateway = Gateway()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hang(ctx: CallContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    gateway.register_local("svc", "hang", hang, response_type="none")
    assert (await call(gateway, req("f1", "hang")))["success"]
    async with asyncio.timeout(5):
        await started.wait()
    await gateway.stop()
    assert cancelled.is_set()


async def test_close_connection_can_itself_be_cancelled() -> None:
    gateway = Gateway()
    started, cleanup_done = asyncio.Event(), asyncio.Event()

    async def slow_cleanup(ctx: CallContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await cleanup_done.wait()

    gateway.register_local("svc", "slow_cleanup", slow_cleanup, response_type="async")
    await call(gateway, req("k1", "slow_cleanup"))
    async with asyncio.timeout(5):
        await started.wait()
    closer = asyncio.create_task(gateway.close_connection("sock1"))
    await asyncio.sleep(0.01)  # the closer now waits for the call's cleanup
    closer.cancel()
    await asyncio.wait([closer], timeout=5)
    assert closer.cancelled()  # the caller's own cancellation is not swallowed
    cleanup_done.set()
    await gateway.stop()


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_a_raising_permission_check_answers_internal(asynchronous: bool) -> None:
    """A broken ``check_permission`` callable is a bug on the server: an ``internal`` error response."""
    gateway = Gateway()

    def broken(caller: CallerContext, args: dict[str, Any]) -> bool:
        raise RuntimeError("permission store is down")

    async def broken_async(caller: CallerContext, args: dict[str, Any]) -> bool:
        raise RuntimeError("permission store is down")

    async def hello(ctx: CallContext) -> str:
        return "hi"

    gateway.register_local("svc", "guarded", hello, check_permission=broken_async if asynchronous else broken)
    r = await call(gateway, req("p1", "guarded"))
    assert (r["code"], r["error"], r["can_retry"], r["request_id"]) == (
        "internal",
        "internal error",
        False,
        "p1",
    )


async def test_drain_refuses_new_calls_and_lets_running_ones_finish() -> None:
    gateway = Gateway()
    release = asyncio.Event()

    async def gated(ctx: CallContext) -> str:
        await release.wait()
        return "finished"

    gateway.register_local("svc", "gated", gated)
    gateway.register_local("svc", "gated_async", gated, response_type="async")
    inbox = Inbox()
    sync_call = asyncio.create_task(call(gateway, req("d1", "gated")))
    assert (await call(gateway, req("d2", "gated_async"), inbox=inbox))["async"]
    while gateway.lanes.pending < 2:
        await asyncio.sleep(0.01)
    drain = asyncio.create_task(gateway.drain(grace=30))
    await asyncio.sleep(0.05)
    assert not drain.done()  # it waits for both calls
    refused = await call(gateway, req("d3", "gated"))
    assert (refused["code"], refused["can_retry"]) == ("unavailable", True)
    release.set()
    async with asyncio.timeout(10):
        await drain
    assert (await sync_call)["result"] == "finished"
    assert (await inbox.wait_final("d2"))["result"] == "finished"


async def test_drain_gives_up_after_its_grace() -> None:
    gateway = Gateway()

    async def hang(ctx: CallContext) -> None:
        await asyncio.Event().wait()

    gateway.register_local("svc", "hang", hang, response_type="async")
    await call(gateway, req("h1", "hang"))
    async with asyncio.timeout(10):
        await gateway.drain(grace=0.1)
    assert gateway.lanes.pending == 1  # still running: stop() cancels it
    await gateway.stop()
    assert gateway.lanes.pending == 0


FRAME_LIMIT = 1 << 20
"""A transport's frame limit within the request limit: the one-pass path may take the push."""


async def test_a_local_sync_call_that_does_not_suspend_is_answered_at_once(gw: Gateway) -> None:
    inbox = Inbox()
    for rid, max_size in (("e1", None), ("e2", FRAME_LIMIT), ("e3", FRAME_LIMIT)):
        response = gw.start_request(req(rid, "echo", {"x": rid}), USER, inbox.emit, max_size=max_size)
        assert isinstance(response, dict), "a response, not a coroutine to run in a task"
        assert response["result"] == {"x": rid, "user": "u1", "roles": ["staff"], "device": "d1"}
    assert gw.lanes.pending == 0


async def test_rejections_keep_their_codes_when_a_function_is_resolved_already(gw: Gateway) -> None:
    assert (await call(gw, req("w", "echo", {"x": 1})))["success"]  # resolved and cached now
    cases = [
        (req("a", "echo", {"y": 1}), "invalid_args"),
        (req("b", "admins", {"x": 1}), "permission_denied"),
        (req("c", "echo", {"x": 1}, version="9.9.9"), "not_found"),
    ]
    for payload, code in cases * 2:
        response = gw.start_request(payload, USER, Inbox().emit, max_size=FRAME_LIMIT)
        assert isinstance(response, dict) and response["code"] == code
    unauthenticated = gw.start_request(req("d", "echo", {"x": 1}), CallerContext(None), Inbox().emit)
    assert isinstance(unauthenticated, dict) and unauthenticated["code"] == "unauthenticated"


async def test_eager_calls_that_suspend_take_their_lane_places_at_once(gw: Gateway) -> None:
    # per_socket=2 running + 1 queued: pushes handled back to back, before any task runs
    outcomes = [
        gw.start_request(req(f"g{i}", "gated"), USER, Inbox().emit, max_size=FRAME_LIMIT) for i in range(4)
    ]
    assert [isinstance(o, dict) for o in outcomes] == [False, False, False, True]
    assert outcomes[3]["code"] == "overloaded"  # type: ignore[index]
    assert gw.lanes.pending == 3
    running = [asyncio.create_task(o) for o in outcomes[:3]]  # type: ignore[arg-type]
    for i in range(3):
        GATES.setdefault(f"g{i}", asyncio.Event()).set()
    assert [(await t)["result"] for t in running] == ["done"] * 3
    assert gw.lanes.pending == 0


async def test_a_timeout_a_function_enters_before_it_suspends_is_its_own(gw: Gateway) -> None:
    async def bounded(ctx: CallContext) -> str:
        try:
            async with asyncio.timeout(0):
                await asyncio.Event().wait()
        except TimeoutError:
            return "own timeout"
        return "not reached"

    gw.register_local("svc", "bounded", bounded)
    for rid in ("t1", "t2"):  # the general path, then the one-pass path
        outcome = gw.start_request(req(rid, "bounded"), USER, Inbox().emit, max_size=FRAME_LIMIT)
        assert not isinstance(outcome, dict)
        assert (await asyncio.create_task(outcome))["result"] == "own timeout"


async def test_a_function_raising_cancelled_in_its_first_step_answers_internal(gw: Gateway) -> None:
    async def odd(ctx: CallContext) -> None:
        raise asyncio.CancelledError

    gw.register_local("svc", "odd", odd)
    for rid in ("x1", "x2"):
        response = gw.start_request(req(rid, "odd"), USER, Inbox().emit, max_size=FRAME_LIMIT)
        assert isinstance(response, dict) and response["code"] == "internal"
