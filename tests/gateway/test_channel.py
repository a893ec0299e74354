"""The gateway channel through the in-process channel test helper (real runtime, no network)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from relaygate.channels import Endpoint, Socket
from relaygate.channels.testing import ChannelClient, JoinRefused, TestChannel
from relaygate.gateway import CallerContext, Gateway, GatewayChannel
from relaygate.protocol.gateway.codes import ServiceError
from relaygate.protocol.gateway.context import CallContext
from relaygate.pubsub import MemoryPubSub

USER = {"user_id": 7, "role": "admin", "jti": "j1", "name": "Ada"}


class Functions:
    """Local functions whose progress the tests control through events."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.callers: list[CallerContext] = []
        self.cancelled = asyncio.Event()

    def install(self, gateway: Gateway) -> None:
        def record(caller: CallerContext, args: dict[str, Any]) -> bool:
            self.callers.append(caller)
            return True

        async def echo(x: Any, ctx: CallContext) -> dict[str, Any]:
            return {"x": x, "user": ctx.user_id, "roles": list(ctx.user_roles), "device": ctx.device_id}

        async def slow(ctx: CallContext) -> str:
            self.started.set()
            await self.gate.wait()
            return "slow done"

        async def later(ctx: CallContext) -> str:
            self.started.set()
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
            return "later done"

        async def count(n: int, ctx: CallContext) -> AsyncIterator[int]:
            for i in range(n):
                yield i

        async def endless(ctx: CallContext) -> AsyncIterator[str]:
            yield "first"
            self.started.set()
            await asyncio.Event().wait()
            yield "never"

        async def fail(ctx: CallContext) -> None:
            raise ServiceError("item_not_found", "no item 3")

        async def fire(ctx: CallContext) -> None:
            self.gate.set()

        gateway.register_local("demo", "echo", echo, arg_types={"x": "any"}, check_permission=record)
        gateway.register_local("demo", "slow", slow, timeout_ms=30_000)
        gateway.register_local("demo", "later", later, response_type="async", timeout_ms=30_000)
        gateway.register_local("demo", "count", count, arg_types={"n": "integer"}, response_type="stream")
        gateway.register_local("demo", "endless", endless, response_type="stream", timeout_ms=30_000)
        gateway.register_local("demo", "fail", fail)
        gateway.register_local("demo", "fire", fire, response_type="none")
        gateway.register_local(
            "demo", "admins", echo, arg_types={"x": "any"}, check_permission="role:superuser"
        )


@pytest.fixture
def functions() -> Functions:
    return Functions()


@pytest.fixture
async def gateway(functions: Functions) -> AsyncIterator[Gateway]:
    gateway = Gateway()
    functions.install(gateway)
    yield gateway
    await gateway.stop()


@pytest.fixture
def endpoint(gateway: Gateway) -> tuple[Endpoint, Socket]:
    endpoint = Endpoint(MemoryPubSub())
    socket = Socket("/socket")
    channel = GatewayChannel(gateway)
    socket.channel("gateway", channel)
    socket.channel("gateway:*", channel)
    endpoint.add_socket(socket)
    return endpoint, socket


@pytest.fixture
async def client(endpoint: tuple[Endpoint, Socket]) -> AsyncIterator[ChannelClient]:
    client = await ChannelClient.connect(*endpoint, assigns=dict(USER))
    client.session.peer = ("10.1.2.3", 40000)
    yield client
    await client.close()


def request(rid: str, request_type: str, args: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"request_id": rid, "service": "demo", "request_type": request_type, "args": args or {}, **extra}


async def test_sync_call_replies_ok_with_the_result_and_caller_from_the_socket(
    client: ChannelClient, functions: Functions
) -> None:
    chan = await client.join("gateway", {"device_id": "phone-1"})
    spoofed = request("r1", "echo", {"x": 5}, user_id="999", user_roles=["superuser"], device_id="other")
    response = await chan.assert_reply(await chan.push("phoenix_gen_api", spoofed), "ok")
    assert response == {
        "request_id": "r1",
        "result": {"x": 5, "user": "7", "roles": ["admin"], "device": "phone-1"},
        "success": True,
        "error": None,
        "async": False,
        "has_more": False,
        "can_retry": False,
        "code": None,
        "retry_after_ms": None,
        "seq": None,
    }
    [caller] = functions.callers
    assert (caller.user_id, caller.roles, caller.device_id, caller.ip_address) == (
        "7",
        frozenset({"admin"}),
        "phone-1",
        "10.1.2.3",
    )
    await chan.refute_push("phoenix_gen_api")


async def test_roles_come_from_the_account_not_the_payload(client: ChannelClient) -> None:
    chan = await client.join("gateway:x")
    payload = request("r1", "admins", {"x": 1}, user_roles=["superuser"])
    response = await chan.assert_reply(await chan.push("phoenix_gen_api", payload), "error")
    assert (response["success"], response["code"]) == (False, "permission_denied")


async def test_without_a_join_device_the_request_device_is_used(client: ChannelClient) -> None:
    chan = await client.join("gateway")
    response = await chan.assert_reply(
        await chan.push("phoenix_gen_api", request("r1", "echo", {"x": 1}, device_id="d9"))
    )
    assert response["result"]["device"] == "d9"


async def test_error_responses_reply_error_with_a_code(client: ChannelClient) -> None:
    chan = await client.join("gateway")
    cases = {
        "bad": ("not an object", "bad_request"),
        "missing": ({"request_id": "r2", "service": "demo"}, "bad_request"),
        "unknown": (request("r3", "nope"), "not_found"),
        "args": (request("r4", "count", {"n": "5"}), "invalid_args"),
        "business": (request("r5", "fail"), "item_not_found"),
    }
    for payload, code in cases.values():
        response = await chan.assert_reply(await chan.push("phoenix_gen_api", payload), "error")
        assert (response["success"], response["code"]) == (False, code), response
    business = await chan.assert_reply(await chan.push("phoenix_gen_api", request("r6", "fail")), "error")
    assert business["error"] == "no item 3"


async def test_async_call_acks_then_pushes_the_result(client: ChannelClient, functions: Functions) -> None:
    chan = await client.join("gateway")
    ack = await chan.assert_reply(await chan.push("phoenix_gen_api", request("a1", "later")))
    assert (ack["success"], ack["async"], ack["result"]) == (True, True, None)
    functions.gate.set()
    result = await chan.assert_push("phoenix_gen_api")
    assert (result["request_id"], result["result"], result["async"], result["success"]) == (
        "a1",
        "later done",
        False,
        True,
    )


async def test_stream_acks_init_then_chunks_then_one_terminal_response(client: ChannelClient) -> None:
    chan = await client.join("gateway")
    ack = await chan.assert_reply(await chan.push("phoenix_gen_api", request("s1", "count", {"n": 3})))
    assert (ack["result"], ack["async"], ack["has_more"]) == ("init", True, True)
    chunks = [await chan.assert_push("phoenix_gen_api") for _ in range(4)]
    assert [(c["result"], c["seq"], c["has_more"]) for c in chunks] == [
        (0, 1, True),
        (1, 2, True),
        (2, 3, True),
        (None, None, False),
    ]
    assert (chunks[-1]["success"], chunks[-1]["async"]) == (True, True)
    await chan.refute_push("phoenix_gen_api")


async def test_none_call_replies_at_once_and_pushes_nothing(
    client: ChannelClient, functions: Functions
) -> None:
    chan = await client.join("gateway")
    response = await chan.assert_reply(await chan.push("phoenix_gen_api", request("n1", "fire")))
    assert (response["success"], response["result"]) == (True, None)
    async with asyncio.timeout(5):
        await functions.gate.wait()
    await chan.refute_push("phoenix_gen_api")


async def test_push_results_pushes_every_response(client: ChannelClient, functions: Functions) -> None:
    chan = await client.join("gateway", {"push_results": True})
    reply = await chan.assert_reply(await chan.push("phoenix_gen_api", request("p1", "echo", {"x": 1})))
    assert await chan.assert_push("phoenix_gen_api") == reply
    error = await chan.assert_reply(await chan.push("phoenix_gen_api", request("p2", "nope")), "error")
    assert await chan.assert_push("phoenix_gen_api") == error
    ack = await chan.assert_reply(await chan.push("phoenix_gen_api", request("p3", "later")))
    assert await chan.assert_push("phoenix_gen_api") == ack
    functions.gate.set()
    assert (await chan.assert_push("phoenix_gen_api"))["result"] == "later done"


async def test_cancel_ends_a_stream_with_cancelled(client: ChannelClient, functions: Functions) -> None:
    chan = await client.join("gateway")
    await chan.assert_reply(await chan.push("phoenix_gen_api", request("s1", "endless")))
    assert (await chan.assert_push("phoenix_gen_api"))["result"] == "first"
    async with asyncio.timeout(5):
        await functions.started.wait()
    cancelled = await chan.assert_reply(await chan.push("phoenix_gen_api_cancel", {"request_id": "s1"}))
    assert cancelled == {"request_id": "s1", "cancelled": True}
    end = await chan.assert_push("phoenix_gen_api")
    assert (end["request_id"], end["success"], end["code"], end["has_more"]) == (
        "s1",
        False,
        "cancelled",
        False,
    )
    again = await chan.assert_reply(await chan.push("phoenix_gen_api_cancel", {"request_id": "s1"}), "error")
    assert again == {"request_id": "s1", "reason": "not_running"}
    bad = await chan.assert_reply(await chan.push("phoenix_gen_api_cancel", {"request_id": 5}), "error")
    assert bad["reason"] == "invalid"


async def test_a_slow_call_does_not_block_a_fast_one_on_the_same_socket(
    client: ChannelClient, functions: Functions
) -> None:
    chan = await client.join("gateway")
    slow_ref = await chan.push("phoenix_gen_api", request("slow", "slow"))
    async with asyncio.timeout(5):
        await functions.started.wait()
    fast = await chan.assert_reply(await chan.push("phoenix_gen_api", request("fast", "echo", {"x": 1})))
    assert fast["request_id"] == "fast"
    functions.gate.set()
    assert (await chan.assert_reply(slow_ref))["result"] == "slow done"


async def test_leaving_cancels_running_calls_silently(client: ChannelClient, functions: Functions) -> None:
    chan = await client.join("gateway")
    await chan.assert_reply(await chan.push("phoenix_gen_api", request("a1", "later")))
    slow_ref = await chan.push("phoenix_gen_api", request("slow", "slow"))
    async with asyncio.timeout(5):
        await functions.started.wait()
    await chan.leave()
    async with asyncio.timeout(5):
        await functions.cancelled.wait()
    await chan.refute_push("phoenix_gen_api")
    await client.frames.refute(lambda m: m is not None and m.ref == slow_ref, 0.1, "a reply to the slow call")


async def test_unauthenticated_socket_cannot_join(endpoint: tuple[Endpoint, Socket]) -> None:
    client = await ChannelClient.connect(*endpoint, assigns={})
    try:
        with pytest.raises(JoinRefused) as refused:
            await client.join("gateway")
        assert refused.value.response["code"] == "unauthenticated"
    finally:
        await client.close()


async def test_bad_join_payload_and_unknown_events(client: ChannelClient) -> None:
    with pytest.raises(JoinRefused) as refused:
        await client.join("gateway", {"push_results": "yes", "device_id": 3})
    assert set(refused.value.response["errors"]) == {"push_results", "device_id"}
    chan: TestChannel = await client.join("gateway:2")
    response = await chan.assert_reply(await chan.push("other", {}), "error")
    assert response["reason"] == "invalid"
