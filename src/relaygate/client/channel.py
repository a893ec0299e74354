"""One channel of a client: the phoenix.js channel state machine on asyncio.

States: closed -> joining -> joined / errored / leaving -> closed. A channel rejoins with a new
join_ref after a crash (`phx_error`), a refused or timed-out rejoin, and on every reconnect.
Unlike phoenix.js, the *first* `join()` is final when it fails: it raises and closes the channel,
so a Python caller never gets a background retry loop it did not ask for.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from relaygate.client.errors import ChannelClosed, PushError, PushTimeout
from relaygate.client.positions import Seen, Tracker
from relaygate.protocol import Message

if TYPE_CHECKING:
    from relaygate.client.client import Client

log = logging.getLogger(__name__)

EventCallback = Callable[[Any], object]
_CONTROL = frozenset({"phx_reply", "phx_close", "phx_error"})


class ChannelState(StrEnum):
    CLOSED = "closed"
    JOINING = "joining"
    JOINED = "joined"
    ERRORED = "errored"
    LEAVING = "leaving"


@dataclass(eq=False)
class _Push:
    """A push awaiting its reply; `ref` is set when it is first sent or buffered."""

    event: str
    payload: Any
    future: asyncio.Future[Any]
    ref: str | None = None


def _reply_result(future: asyncio.Future[Any], payload: Any) -> None:
    if future.done():
        return
    status = payload.get("status") if isinstance(payload, dict) else None
    response = payload.get("response") if isinstance(payload, dict) else None
    if status == "ok":
        future.set_result(response)
    else:
        future.set_exception(PushError(str(status), response))


class ClientChannel:
    """A topic joined over a `Client`; create it with `client.channel(topic, params)`."""

    def __init__(self, client: Client, topic: str, params: dict[str, Any] | None, event_buffer: int) -> None:
        self.topic = topic
        self.params: dict[str, Any] = dict(params or {})
        self.state = ChannelState.CLOSED
        self.join_ref: str | None = None
        self._client = client
        self._timeout = client.timeout
        self._joined_once = False
        self._first_join: asyncio.Future[Any] | None = None
        self._join_timer: asyncio.TimerHandle | None = None
        self._rejoin_timer: asyncio.TimerHandle | None = None
        self._rejoin_tries = 0
        self._pending: dict[str, _Push] = {}
        self._buffer: list[_Push] = []
        self._bindings: list[tuple[int, str, EventCallback]] = []
        self._binding_ref = 0
        self._events: dict[str, deque[Any]] = {}
        self._event_buffer = event_buffer
        self._waiters: dict[str, deque[asyncio.Future[Any]]] = {}
        self._tracker = Tracker(refill=client.refill_gaps)
        self._gap_timer: asyncio.TimerHandle | None = None
        self._unrecovered: list[EventCallback] = []
        self.recovered: bool | None = None
        """The last join's ``recovered`` (None when it did not ask: first join, or no history)."""

    def __repr__(self) -> str:
        return f"<ClientChannel {self.topic!r} {self.state.value} join_ref={self.join_ref!r}>"

    # -- public API ------------------------------------------------------------------------------

    async def join(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (API contract)
        """Join once; return the join reply's response, raise PushError / PushTimeout."""
        if self._joined_once:
            raise RuntimeError(f"channel {self.topic!r} can only be joined once; create a new channel")
        self._joined_once = True
        if timeout is not None:
            self._timeout = timeout
        self._first_join = asyncio.get_running_loop().create_future()
        self._rejoin()
        return await self._first_join

    async def push(self, event: str, payload: Any = None, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Push an event and return the `ok` reply's response; raise PushError / PushTimeout.

        A `bytes` payload goes out as a V2 binary frame. Pushes made while the channel is not
        joined are buffered and sent once it is (as phoenix.js does).
        """
        if not self._joined_once:
            raise RuntimeError(f"push {event!r} to {self.topic!r} before joining; call join() first")
        push = _Push(event, {} if payload is None else payload, asyncio.get_running_loop().create_future())
        if self._can_push():
            self._send_push(push)
        else:
            self._buffer.append(push)
        try:
            return await asyncio.wait_for(
                asyncio.shield(push.future), self._timeout if timeout is None else timeout
            )
        except TimeoutError:
            raise PushTimeout(f"no reply to {event!r} on {self.topic!r}") from None
        finally:
            self._forget(push)

    async def leave(self) -> None:
        """Send phx_leave and close the channel at once, like phoenix.js (no wait for the reply)."""
        self._cancel_timers()
        self.state = ChannelState.LEAVING
        if self.join_ref is not None:
            self._client._send(Message(self.join_ref, self._client._make_ref(), self.topic, "phx_leave", {}))
        self._close("leave")

    @property
    def position(self) -> str | None:
        """The last position seen on a topic with history (sent as ``since`` on every rejoin)."""
        return self._tracker.position

    def on_unrecovered(self, callback: EventCallback) -> None:
        """``callback(join_response)`` when a rejoin could not recover what was missed
        (``recovered: false``): the app reloads its state then."""
        self._unrecovered.append(callback)

    def on(self, event: str, callback: EventCallback) -> int:
        """Call `callback(payload)` for every `event` the channel receives; return a binding ref."""
        ref = self._binding_ref
        self._binding_ref += 1
        self._bindings.append((ref, event, callback))
        return ref

    def off(self, event: str, ref: int | None = None) -> None:
        """Remove one binding (by ref) or all bindings of `event`."""
        self._bindings = [b for b in self._bindings if not (b[1] == event and (ref is None or b[0] == ref))]

    async def next_event(self, event: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Return the payload of the oldest not yet consumed `event` (waiting for one if needed)."""
        queued = self._events.get(event)
        if queued:
            return queued.popleft()
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(event, deque()).append(waiter)
        try:
            return await asyncio.wait_for(waiter, self._timeout if timeout is None else timeout)
        except TimeoutError:
            raise PushTimeout(f"no {event!r} event on {self.topic!r}") from None
        finally:
            waiters = self._waiters.get(event)
            if waiters and waiter in waiters:
                waiters.remove(waiter)

    # -- driven by the client ----------------------------------------------------------------------

    def _is_member(self, message: Message) -> bool:
        """phoenix.js isMember: same topic, and a non-null join_ref must be the current one."""
        if message.topic != self.topic:
            return False
        if message.join_ref and message.join_ref != self.join_ref:
            log.debug("dropping outdated %s on %s (join_ref %s)", message.event, self.topic, message.join_ref)
            return False
        return True

    def _dispatch(self, message: Message) -> None:
        event, payload = message.event, message.payload
        if event not in _CONTROL and message.ref is not None:
            seen = self._tracker.seen(message.ref)
            if seen is Seen.DUPLICATE:
                return  # already delivered before a rejoin replayed it
            if seen is Seen.GAP:
                self._schedule_gap_check()
        if event == "phx_reply":
            self._on_reply(message.ref, payload)
        elif event == "phx_close":
            self._close(payload)
        elif event == "phx_error":
            self._on_error(payload)
        self._trigger(event, payload)

    def _on_connection_open(self) -> None:
        self._reset_rejoin_timer()
        if self.state in (ChannelState.ERRORED, ChannelState.JOINING):
            self._rejoin()

    def _on_connection_lost(self, reason: str) -> None:
        self._reset_rejoin_timer()
        if self.state in (ChannelState.JOINED, ChannelState.JOINING):
            self._trigger("phx_error", {"source": "transport", "reason": reason})
            self._on_error(None)

    def _on_client_closed(self) -> None:
        self._cancel_timers()
        exc = ChannelClosed(f"client closed while {self.topic!r} was {self.state.value}")
        self._fail_all(exc)

    # -- internals ---------------------------------------------------------------------------------

    def _can_push(self) -> bool:
        return self._client.is_connected and self.state is ChannelState.JOINED

    def _send_push(self, push: _Push) -> None:
        push.ref = self._client._make_ref()
        self._pending[push.ref] = push
        message = Message(self.join_ref, push.ref, self.topic, push.event, push.payload)
        try:
            self._client._send(message)
        except (TypeError, ValueError) as exc:
            if not push.future.done():
                push.future.set_exception(exc)

    def _forget(self, push: _Push) -> None:
        if push.ref is not None:
            self._pending.pop(push.ref, None)
        if push in self._buffer:
            self._buffer.remove(push)

    def _rejoin(self) -> None:
        if self.state is ChannelState.LEAVING:
            return
        self._client._leave_open_topic(self)
        self.state = ChannelState.JOINING
        self.join_ref = self._client._make_ref()
        if self._client.is_connected:
            params = self.params
            since = self._tracker.position
            if since is not None:
                params = {**params, "since": since}
            self._client._send(Message(self.join_ref, self.join_ref, self.topic, "phx_join", params))
        self._cancel_join_timer()
        loop = asyncio.get_running_loop()
        self._join_timer = loop.call_later(self._timeout, self._on_join_timeout, self.join_ref)

    def _on_reply(self, ref: str | None, payload: Any) -> None:
        if ref is not None and ref == self.join_ref and self.state is ChannelState.JOINING:
            self._on_join_reply(payload)
            return
        push = self._pending.pop(ref, None) if ref is not None else None
        if push is not None:
            _reply_result(push.future, payload)

    def _on_join_reply(self, payload: Any) -> None:
        self._cancel_join_timer()
        status = payload.get("status") if isinstance(payload, dict) else None
        first = self._first_join if self._first_join is not None and not self._first_join.done() else None
        if first is not None:
            _reply_result(first, payload)
        if status == "ok":
            self._on_joined(payload.get("response"))
            self.state = ChannelState.JOINED
            self._reset_rejoin_timer()
            buffered, self._buffer = self._buffer, []
            for push in buffered:
                if not push.future.done():
                    self._send_push(push)
        elif first is not None:
            self._close(None)
        else:
            self.state = ChannelState.ERRORED
            self._schedule_rejoin()

    def _on_joined(self, response: Any) -> None:
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None
        if not isinstance(response, dict) or "position" not in response:
            return
        recovered = response.get("recovered")
        self.recovered = recovered if isinstance(recovered, bool) else None
        self._tracker.joined(response["position"], recovered)
        if recovered is False:
            for callback in list(self._unrecovered):
                try:
                    callback(response)
                except Exception:
                    log.exception("on_unrecovered callback of %s failed", self.topic)

    def _schedule_gap_check(self) -> None:
        """A position was skipped: give a late message (an intercepted one trails the fastlane)
        ``gap_grace`` seconds, then rejoin with ``since`` to have the rest replayed."""
        if self._gap_timer is None:
            self._gap_timer = asyncio.get_running_loop().call_later(self._client.gap_grace, self._gap_due)

    def _gap_due(self) -> None:
        self._gap_timer = None
        if self._pending:  # a rejoin would lose the replies of pushes in flight: wait for them
            self._schedule_gap_check()
            return
        if self._tracker.gap and self.state is ChannelState.JOINED and self._client.is_connected:
            log.info("%s missed broadcasts; rejoining from %s", self.topic, self._tracker.position)
            self._rejoin()

    def _on_join_timeout(self, join_ref: str) -> None:
        self._join_timer = None
        if join_ref != self.join_ref or self.state is not ChannelState.JOINING:
            return
        self._client._send(Message(join_ref, self._client._make_ref(), self.topic, "phx_leave", {}))
        self.state = ChannelState.ERRORED
        first = self._first_join
        if first is not None and not first.done():
            first.set_exception(PushTimeout(f"no reply to the join of {self.topic!r}"))
            self._close(None)
        else:
            self._schedule_rejoin()

    def _on_error(self, _payload: Any) -> None:
        self._cancel_join_timer()
        if self.state in (ChannelState.LEAVING, ChannelState.CLOSED):
            return
        self.state = ChannelState.ERRORED
        self._schedule_rejoin()

    def _schedule_rejoin(self) -> None:
        if not self._client.is_connected or self._rejoin_timer is not None:
            return
        self._rejoin_tries += 1
        delay = self._client.rejoin_after(self._rejoin_tries)
        self._rejoin_timer = asyncio.get_running_loop().call_later(delay, self._rejoin_due)

    def _rejoin_due(self) -> None:
        self._rejoin_timer = None
        if self._client.is_connected and self.state is ChannelState.ERRORED:
            self._rejoin()

    def _reset_rejoin_timer(self) -> None:
        self._rejoin_tries = 0
        if self._rejoin_timer is not None:
            self._rejoin_timer.cancel()
            self._rejoin_timer = None

    def _cancel_join_timer(self) -> None:
        if self._join_timer is not None:
            self._join_timer.cancel()
            self._join_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_join_timer()
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None
        self._reset_rejoin_timer()

    def _close(self, payload: Any) -> None:
        """Final close (leave, server phx_close, failed first join): remove from the client."""
        self._cancel_timers()
        self.state = ChannelState.CLOSED
        self._client._remove(self)
        self._fail_all(ChannelClosed(f"channel {self.topic!r} closed"))

    def _fail_all(self, exc: Exception) -> None:
        futures = [p.future for p in (*self._pending.values(), *self._buffer)]
        if self._first_join is not None:
            futures.append(self._first_join)
        for future in futures:
            if not future.done():
                future.set_exception(exc)
        self._pending.clear()
        self._buffer.clear()

    def _trigger(self, event: str, payload: Any) -> None:
        for _ref, bound_event, callback in list(self._bindings):
            if bound_event != event:
                continue
            try:
                callback(payload)
            except Exception:
                log.exception("callback for %s on %s failed", event, self.topic)
        if event == "phx_reply":
            return
        waiters = self._waiters.get(event)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(payload)
                return
        self._events.setdefault(event, deque(maxlen=self._event_buffer)).append(payload)
