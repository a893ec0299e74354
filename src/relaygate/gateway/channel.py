"""The ``gateway`` / ``gateway:*`` channel: ``phoenix_gen_api`` pushes run through the :class:`Gateway`.

``handle_in`` is a plain function: what the gateway answers without waiting (a rejection, an
ack, a local function that returns without suspending) is the reply right away; a call that
must wait runs in a task of its own, so one slow call never blocks the socket's other calls
(the gateway's per-socket lanes bound how many run at once). The reply's status is ``ok`` iff
``success``; async results, stream chunks and stream ends follow as
``phoenix_gen_api`` events. With ``{"push_results": true}`` in the join payload the reply's
response is pushed as an event too, which is how PhoenixGenApi clients read results.

Who calls comes from the socket only: ``user_id`` and the role from the account the socket
authenticated with, ``device_id`` from the join payload, ``ip_address`` from the transport's peer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from relaygate.channels import Channel, ChannelSocket, Reply, ReplyRef
from relaygate.gateway.gateway import Emit, Gateway
from relaygate.gateway.request import MAX_NAME_CHARS, MAX_REQUEST_ID_CHARS, CallerContext, request_id_of
from relaygate.gateway.response import GatewayError
from relaygate.protocol.gateway import codes

log = logging.getLogger(__name__)

EVENT: Final = "phoenix_gen_api"
CANCEL_EVENT: Final = "phoenix_gen_api_cancel"
_STATE: Final = "gateway"


@dataclass(slots=True)
class _JoinState:
    """Per-join state, kept in the channel socket's assigns (the handler instance is shared)."""

    caller: CallerContext
    push_results: bool
    emit: Emit
    """Pushes a later response (async result, stream chunk or end) to this join."""
    max_size: int | None
    """The connection's frame limit: a bound of every request payload's size."""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _invalid(errors: dict[str, list[str]]) -> Reply:
    return Reply.error({"reason": "invalid", "errors": errors})


def _internal(payload: Any) -> dict[str, Any]:
    log.exception("gateway request failed")
    return GatewayError(codes.INTERNAL, "internal error").to_response(request_id_of(payload))


def _join_options(payload: Any) -> tuple[bool, str | None, dict[str, list[str]]]:
    """``push_results`` and ``device_id`` from the join payload, with field errors."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        return False, None, {"payload": ["must be an object"]}
    errors: dict[str, list[str]] = {}
    push_results = payload.get("push_results", False)
    if not isinstance(push_results, bool):
        errors["push_results"] = ["must be a boolean"]
    device_id = payload.get("device_id")
    if device_id is not None and not (isinstance(device_id, str) and 1 <= len(device_id) <= MAX_NAME_CHARS):
        errors["device_id"] = [f"must be a string of 1..{MAX_NAME_CHARS} characters"]
    return push_results is True, device_id, errors


class GatewayChannel(Channel):
    """Mount with ``socket.channel("gateway", ch)`` and ``socket.channel("gateway:*", ch)``."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        user_id = socket.assigns.get("user_id")
        if user_id is None:
            return Reply.error(
                {
                    "reason": "unauthenticated",
                    "code": codes.UNAUTHENTICATED,
                    "error": "the socket has no user",
                }
            )
        push_results, device_id, errors = _join_options(payload)
        if errors:
            return _invalid(errors)
        role = socket.assigns.get("role")
        peer = socket.peer
        caller = CallerContext(
            user_id=str(user_id),
            roles=frozenset({role}) if isinstance(role, str) else frozenset(),
            device_id=device_id,
            ip_address=peer[0] if peer else None,
            connection=socket,
        )

        async def emit(response: dict[str, Any]) -> None:
            await socket.push(EVENT, response)

        max_size = getattr(getattr(socket.session, "conn", None), "max_frame_size", None)
        socket.assigns[_STATE] = _JoinState(caller, push_results, emit, max_size)
        return Reply.ok()

    def handle_in(
        self, event: str, payload: Any, socket: ChannelSocket
    ) -> Reply | Coroutine[Any, Any, Reply | None] | None:
        """A plain function, so the runtime calls it at once: a response known without waiting
        (a rejection, an ack) is the reply right here; a call that must wait runs in a task of
        its own (not the channel's: one socket's calls run concurrently)."""
        state: _JoinState = socket.assigns[_STATE]
        if event == EVENT:
            try:
                outcome = self.gateway.start_request(
                    payload, state.caller, state.emit, max_size=state.max_size
                )
            except Exception:  # a bug, not a caller's mistake: answer like the gateway's internal error
                outcome = _internal(payload)
            if isinstance(outcome, dict):
                if state.push_results:
                    return self._reply_and_push(outcome, socket)
                return Reply("ok" if outcome["success"] else "error", outcome)
            task = asyncio.get_running_loop().create_task(
                self._finish(outcome, payload, socket.reply_ref(), socket, state)
            )
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
            return None
        if event == CANCEL_EVENT:
            return self._cancel(payload, state)
        return _invalid({"event": [f"{event!r} is not an event of this topic"]})

    async def _cancel(self, payload: Any, state: _JoinState) -> Reply:
        request_id = payload.get("request_id") if isinstance(payload, dict) else None
        if not isinstance(request_id, str) or not 1 <= len(request_id) <= MAX_REQUEST_ID_CHARS:
            return _invalid({"request_id": [f"must be a string of 1..{MAX_REQUEST_ID_CHARS} characters"]})
        if await self.gateway.cancel(request_id, state.caller):
            return Reply.ok({"request_id": request_id, "cancelled": True})
        return Reply.error({"request_id": request_id, "reason": "not_running"})

    async def _reply_and_push(self, response: dict[str, Any], socket: ChannelSocket) -> None:
        """``push_results``: the reply, then the same response as an event."""
        await socket.reply(socket.reply_ref(), Reply("ok" if response["success"] else "error", response))
        await socket.push(EVENT, response)

    async def _finish(
        self,
        outcome: Coroutine[Any, Any, dict[str, Any]],
        payload: Any,
        ref: ReplyRef,
        socket: ChannelSocket,
        state: _JoinState,
    ) -> None:
        try:
            response = await outcome
        except Exception:  # a bug, not a caller's mistake: answer like the gateway's internal error
            response = _internal(payload)
        # No await between the gateway's answer and the reply: an async result cannot overtake its ack.
        await socket.reply(ref, Reply("ok" if response["success"] else "error", response))
        if state.push_results:
            await socket.push(EVENT, response)

    async def terminate(self, reason: str, socket: ChannelSocket) -> None:
        """Stop this join's calls: running sync calls here, async and stream calls in the gateway."""
        state: _JoinState | None = socket.assigns.get(_STATE)
        if state is None:
            return
        tasks = list(state.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self.gateway.close_connection(socket)
