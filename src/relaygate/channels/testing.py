"""In-process channel tests without a network, in the spirit of Phoenix's ChannelCase.

    client = await ChannelClient.connect(endpoint, socket, {"token": t})
    chan = await client.join("room:1", {"device": "d1"})
    ref = await chan.push("ping", {"n": 1})
    assert await chan.assert_reply(ref, "ok") == {"n": 1}
    payload = await chan.assert_push("presence_state")
    await chan.assert_broadcast("message:new")
    await client.close()

The real runtime runs (session, routing, channel inboxes, fastlane); only the transport is
replaced by a recorder that decodes every V2 frame the server sends.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from relaygate.channels.api import ConnectInfo
from relaygate.channels.core import EndpointCore
from relaygate.channels.session import Session
from relaygate.channels.socket import Socket
from relaygate.protocol import V2, Frame, Message, ProtocolError
from relaygate.pubsub import Broadcast

__all__ = ["ChannelClient", "ConnectRefused", "JoinRefused", "TestChannel"]


class ConnectRefused(Exception):
    """The connect hook (or vsn/id check) refused the connection: a transport would answer 403."""


class JoinRefused(Exception):
    def __init__(self, status: str, response: Any) -> None:
        super().__init__(f"join refused with {status}: {response!r}")
        self.status = status
        self.response = response


class _Mailbox:
    """Collected items with awaitable, consuming lookups."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def put(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    def _pop(self, predicate: Callable[[Any], bool]) -> tuple[bool, Any]:
        for index, item in enumerate(self.items):
            if predicate(item):
                return True, self.items.pop(index)
        return False, None

    async def take(self, predicate: Callable[[Any], bool], within: float, what: str) -> Any:
        try:
            async with asyncio.timeout(within):
                while True:
                    found, item = self._pop(predicate)
                    if found:
                        return item
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"expected {what} within {within}s; have {self.items!r}") from None

    async def refute(self, predicate: Callable[[Any], bool], within: float, what: str) -> None:
        await asyncio.sleep(within)
        found, item = self._pop(predicate)
        if found:
            raise AssertionError(f"unexpected {what}: {item!r}")


class _Recorder(_Mailbox):
    """The test transport: decodes server frames into :class:`Message` values."""

    def __init__(self) -> None:
        super().__init__()
        self.close_code: int | None = None
        self.close_reason = ""

    wire = False

    def write(self, frames: list[Frame]) -> None:
        for frame in frames:
            message = V2.decode_server(frame)
            assert not isinstance(message, ProtocolError), message
            self.put(message)

    def close(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason
        self._changed_close()

    def _changed_close(self) -> None:
        self.put(None)


class _BroadcastRecorder(_Mailbox):
    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        self.put(message)


class ChannelClient:
    """One in-process connection to ``socket`` on ``endpoint`` (V2 serializer)."""

    def __init__(self, endpoint: EndpointCore, session: Session, recorder: _Recorder) -> None:
        self.endpoint = endpoint
        self.session = session
        self.frames = recorder
        self._refs = itertools.count(1)
        self._recorders: dict[str, _BroadcastRecorder] = {}

    @classmethod
    async def connect(
        cls,
        endpoint: EndpointCore,
        socket: Socket,
        params: dict[str, str] | None = None,
        *,
        assigns: dict[str, Any] | None = None,
        info: ConnectInfo | None = None,
    ) -> ChannelClient:
        """Run the connect hook with ``params`` (or skip it by giving ``assigns`` directly)."""
        recorder = _Recorder()
        if assigns is None:
            accepted = await endpoint.authorize(
                socket, {**(params or {}), "vsn": "2.0.0"}, info or ConnectInfo()
            )
            if accepted is None:
                raise ConnectRefused(socket.path)
            assigns, socket_id = accepted.assigns, accepted.socket_id
        else:
            socket_id = socket.id(assigns)
        session = Session(endpoint, socket, V2, assigns, socket_id, None, recorder)
        await session.start()
        return cls(endpoint, session, recorder)

    def next_ref(self) -> str:
        return str(next(self._refs))

    def send(self, message: Message) -> None:
        """Feed a raw client frame (any join_ref/ref), as a transport would."""
        self.session.feed(V2.encode_client(message))

    async def join(self, topic: str, payload: Any = None, *, within: float = 1.0) -> TestChannel:
        """Join and wait for the reply; raises :class:`JoinRefused` on a non-ok status."""
        join_ref = self.next_ref()
        recorder = self._recorders.get(topic)
        if recorder is None:
            recorder = self._recorders[topic] = _BroadcastRecorder()
            await self.endpoint.pubsub.subscribe(topic, recorder)
        self.send(Message(join_ref, join_ref, topic, "phx_join", {} if payload is None else payload))
        reply = await self._reply(topic, join_ref, within)
        if reply["status"] != "ok":
            raise JoinRefused(reply["status"], reply["response"])
        return TestChannel(self, topic, join_ref, reply["response"], recorder)

    async def _reply(self, topic: str, ref: str, within: float) -> Any:
        message = await self.frames.take(
            lambda m: m is not None and m.event == "phx_reply" and m.topic == topic and m.ref == ref,
            within,
            f"a reply to ref {ref} on {topic}",
        )
        return message.payload

    async def assert_closed(self, code: int | None = None, *, within: float = 1.0) -> int:
        """Wait until the server closes the connection; returns the close code."""
        await self.frames.take(lambda m: m is None, within, "the connection to close")
        assert self.frames.close_code is not None
        if code is not None:
            assert self.frames.close_code == code, self.frames.close_code
        return self.frames.close_code

    async def close(self) -> None:
        """The client goes away: every channel terminates with reason ``closed``."""
        for topic, recorder in self._recorders.items():
            await self.endpoint.pubsub.unsubscribe(topic, recorder)
        self._recorders.clear()
        await self.session.finish()


class TestChannel:
    """A joined channel of a :class:`ChannelClient`."""

    __test__ = False  # not a pytest test class

    def __init__(
        self, client: ChannelClient, topic: str, join_ref: str, response: Any, broadcasts: _BroadcastRecorder
    ) -> None:
        self.client = client
        self.topic = topic
        self.join_ref = join_ref
        self.response = response
        """The join reply's response."""
        self._broadcasts = broadcasts

    async def push(self, event: str, payload: Any = None) -> str:
        """Send a client push (``bytes`` = binary push); returns its ref for :meth:`assert_reply`."""
        ref = self.client.next_ref()
        self.client.send(Message(self.join_ref, ref, self.topic, event, {} if payload is None else payload))
        return ref

    async def assert_reply(self, ref: str, status: str = "ok", *, within: float = 1.0) -> Any:
        reply = await self.client._reply(self.topic, ref, within)
        assert reply["status"] == status, reply
        return reply["response"]

    def _is_push(self, event: str) -> Callable[[Any], bool]:
        return lambda m: m is not None and m.topic == self.topic and m.event == event

    async def assert_push(self, event: str, *, within: float = 1.0) -> Any:
        """The next frame ``event`` sent to this client on the topic (push or fastlaned broadcast)."""
        message = await self.client.frames.take(
            self._is_push(event), within, f"push {event!r} on {self.topic}"
        )
        return message.payload

    async def refute_push(self, event: str, *, within: float = 0.1) -> None:
        await self.client.frames.refute(self._is_push(event), within, f"push {event!r} on {self.topic}")

    async def assert_broadcast(self, event: str, *, within: float = 1.0) -> Any:
        """A broadcast of ``event`` on the topic through the PubSub (from any sender)."""
        message = await self._broadcasts.take(lambda b: b.event == event, within, f"broadcast {event!r}")
        return message.payload

    async def assert_close(self, *, within: float = 1.0) -> None:
        """The server closed the channel cleanly (phx_close)."""
        await self.client.frames.take(self._control("phx_close"), within, f"phx_close on {self.topic}")

    async def assert_error(self, *, within: float = 1.0) -> None:
        """The channel crashed (phx_error)."""
        await self.client.frames.take(self._control("phx_error"), within, f"phx_error on {self.topic}")

    def _control(self, event: str) -> Callable[[Any], bool]:
        return lambda m: (
            m is not None and m.topic == self.topic and m.event == event and m.ref == self.join_ref
        )

    async def leave(self, *, within: float = 1.0) -> None:
        """phx_leave: waits for the ok reply and the phx_close."""
        ref = self.client.next_ref()
        self.client.send(Message(self.join_ref, ref, self.topic, "phx_leave", {}))
        await self.assert_reply(ref, within=within)
        await self.assert_close(within=within)
