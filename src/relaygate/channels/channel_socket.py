"""One joined channel of one connection: its ordered inbox, fastlane delivery and lifecycle.

No task exists while the inbox is empty: the first queued item starts a task that drains the
inbox and exits, so an idle channel costs one small object. A slow callback delays only this
channel; heartbeats and other topics are handled by the connection task.

A ``handle_in`` that is a plain function is called at once when the channel is idle (joined,
nothing queued): a push it answers with a ``Reply`` (or None) costs no task. What it returns
that must wait (a coroutine) runs in the channel's task, ahead of anything queued after it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass
from types import CoroutineType
from typing import Any, ClassVar, Final, Protocol, cast

from relaygate.channels.api import Reply, Stop, logger
from relaygate.channels.outbound import Encoding, count_join
from relaygate.history import History, Merge, Position, Read, parse
from relaygate.presence import Presence
from relaygate.protocol import ChannelEntry, Connection, EncodeError, Frame, Message
from relaygate.pubsub import Broadcast, PubSub
from relaygate.telemetry.metrics import CHANNELS_JOINED, HISTORY_REPLAYED


class Handler(Protocol):
    """The callbacks of a channel (``relaygate.channels.Channel`` implements them)."""

    intercepts: ClassVar[Sequence[str]]

    def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply | Awaitable[Reply]: ...

    def handle_in(
        self, event: str, payload: Any, socket: ChannelSocket
    ) -> Reply | Stop | Awaitable[Reply | Stop | None] | None: ...

    async def handle_out(self, event: str, payload: Any, socket: ChannelSocket) -> Stop | None: ...

    def handle_info(self, message: Any, socket: ChannelSocket) -> Stop | Awaitable[Stop | None] | None: ...

    def terminate(self, reason: str, socket: ChannelSocket) -> Awaitable[None] | None: ...


class EndpointView(Protocol):
    """What a channel sees of its endpoint (the Endpoint implements it)."""

    @property
    def pubsub(self) -> PubSub: ...

    @property
    def presence(self) -> Presence | None: ...

    @property
    def history(self) -> History | None: ...

    def require_presence(self) -> Presence: ...

    async def broadcast(self, topic: str, event: str, payload: Any) -> None: ...

    async def disconnect(self, socket_id: str) -> None: ...


class Outlet(Protocol):
    """What a channel needs of its connection (a Session), so that this module does not import it."""

    @property
    def endpoint(self) -> EndpointView: ...

    encoding: Encoding
    assigns: dict[str, Any]
    socket_id: str | None
    peer: tuple[str, int] | None
    conn: Connection[Any, ChannelSocket]

    def send(self, frame: Frame) -> None: ...

    def write(self, data: Frame) -> None: ...


_JOIN: Final = 0
_IN: Final = 1
_LEAVE: Final = 2
_OUT: Final = 3
_INFO: Final = 4
_AWAIT: Final = 5  # (ref, awaitable) a handle_in called at once returned: its outcome
_JOINING_REST: Final = 6  # (message, outcome) a join called at once returned: the rest of the join
_AWAIT_INFO: Final = 7  # the awaitable a handle_info called at once returned

_JOINING: Final = 0
_JOINED: Final = 1
_ENDED: Final = 2

_EMPTY: Final[dict[str, Any]] = {}
_UNENCODABLE: Final = b""  # cached for a broadcast that cannot be encoded (never a real frame)
_BUSY: Final = cast("asyncio.Task[None]", object())  # _task while a task is being started; never awaited


def _start(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task for ``coroutine``, started eagerly where asyncio can (Python 3.12+).

    An eager task runs its first step at once, as itself (``current_task()``, contextvars and
    cancellation are exactly a task's), so a push whose handler does not suspend is answered
    without a trip through the event loop. Python 3.11 has no eager start, and running the
    handler inline in the connection's task instead would make ``asyncio.timeout`` or a
    ``TaskGroup`` in a handler cancel the connection, so there the task starts on the next
    loop iteration as before.
    """
    if sys.version_info >= (3, 12):
        return asyncio.Task(coroutine, loop=loop, eager_start=True)
    return loop.create_task(coroutine)


def _awaitable(value: object) -> bool:
    """A coroutine (the common case, checked first) or another awaitable."""
    return type(value) is CoroutineType or hasattr(value, "__await__")


def _bad_result(result: object) -> TypeError:
    return TypeError(f"handle_in must return Reply, Stop or None, not {type(result).__name__}")


_JOINED_COUNTS: dict[str, int] = {}
"""Joined channels per topic prefix, read by the ``relaygate_channels_joined`` gauge when scraped
(a Prometheus update takes a lock: it cost more than the rest of the bookkeeping of a join)."""


def _count_joined(topic: str, delta: int) -> None:
    prefix = topic.partition(":")[0]
    count = _JOINED_COUNTS.get(prefix)
    if count is None:
        _JOINED_COUNTS[prefix] = delta
        CHANNELS_JOINED.labels(prefix).set_function(lambda: _JOINED_COUNTS[prefix])
    else:
        _JOINED_COUNTS[prefix] = count + delta


@dataclass(frozen=True, slots=True)
class ReplyRef:
    """Identifies a client push so that it can be answered later with ``ChannelSocket.reply``."""

    join_ref: str | None
    ref: str | None
    topic: str


class ChannelSocket(ChannelEntry):
    """The per-channel socket handed to every callback (Phoenix's channel ``socket``)."""

    __slots__ = (
        "_inbox",
        "_merge",
        "_pending",
        "_position",
        "_ref",
        "_state",
        "_task",
        "assigns",
        "handler",
        "session",
    )

    def __init__(self, session: Outlet, message: Message, handler: Handler) -> None:
        super().__init__(message.topic, message.join_ref)
        self.session = session
        self.handler = handler
        self.assigns: dict[str, Any] = dict(session.assigns)
        self._inbox: list[tuple[int, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: list[Frame] | None = None
        self._state = _JOINING
        self._ref: str | None = None
        self._merge: Merge[Broadcast] | None = None
        self._position: str | None = None

    # Read-only views for the app.

    @property
    def id(self) -> str | None:
        """The connection's socket id (``Socket(id=...)``), or None when anonymous."""
        return self.session.socket_id

    @property
    def endpoint(self) -> EndpointView:
        return self.session.endpoint

    @property
    def peer(self) -> tuple[str, int] | None:
        return self.session.peer

    @property
    def joined(self) -> bool:
        return self._state == _JOINED

    # App API.

    async def push(self, event: str, payload: Any) -> None:
        """Send ``[JR, null, topic, event, payload]`` to this client (binary if payload is bytes).

        From ``handle_out`` of a broadcast with a history position, the ref is that position."""
        self.push_now(event, payload)

    def push_now(self, event: str, payload: Any) -> None:
        """:meth:`push` from a plain function (it never waits: the frame is queued)."""
        serializer = self.session.encoding.serializer
        self._send(serializer.encode(self.join_ref, self._position, self.topic, event, payload))

    async def broadcast(self, event: str, payload: Any) -> None:
        """Broadcast to every subscriber of the topic on every node, this socket included."""
        await self.session.endpoint.pubsub.broadcast(self.topic, event, payload)

    async def broadcast_from(self, event: str, payload: Any) -> None:
        """Broadcast to every subscriber except this channel."""
        await self.session.endpoint.pubsub.broadcast(self.topic, event, payload, origin=self)

    def reply_ref(self) -> ReplyRef:
        """The ref of the push being handled, to reply asynchronously with :meth:`reply`."""
        if self._ref is None:
            raise RuntimeError("reply_ref() is only available while handling a client push")
        return ReplyRef(self.join_ref, self._ref, self.topic)

    async def reply(self, ref: ReplyRef, reply: Reply) -> None:
        self._reply(ref.ref, reply)

    def send_info(self, message: Any) -> None:
        """Queue ``message`` to ``handle_info`` (in order with client pushes)."""
        if self._state != _ENDED:
            self._enqueue(_INFO, message)

    async def track(self, key: str, meta: dict[str, Any]) -> str:
        return self.track_now(key, meta)

    def track_now(self, key: str, meta: dict[str, Any]) -> str:
        """:meth:`track` from a plain function (tracking never waits on the cluster)."""
        return self.session.endpoint.require_presence().track_now(self, self.topic, key, meta)

    async def update_presence(self, key: str, meta: dict[str, Any]) -> str:
        return self.update_presence_now(key, meta)

    def update_presence_now(self, key: str, meta: dict[str, Any]) -> str:
        return self.session.endpoint.require_presence().update_now(self, self.topic, key, meta)

    async def untrack(self, key: str) -> None:
        self.untrack_now(key)

    def untrack_now(self, key: str) -> None:
        self.session.endpoint.require_presence().untrack_now(self, self.topic, key)

    def presence_list(self) -> dict[str, dict[str, Any]]:
        return self.session.endpoint.require_presence().list(self.topic)

    # Runtime side.

    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        """PubSub fastlane: encode and frame once per Encoding per dispatch, write the same bytes."""
        if self._state == _ENDED:
            return
        merge = self._merge
        if merge is not None and not merge.live(parse(message.ref), message):
            return  # buffered while a history join reads the stream, or already replayed
        if message.event in self.handler.intercepts:
            self._enqueue(_OUT, message)
            return
        session = self.session
        encoding = session.encoding
        frame: Frame | None = cache.get(encoding)
        if frame is None:
            frame = cache[encoding] = self._encode(encoding, message)
        if frame is _UNENCODABLE:
            return
        if self._pending is not None:
            self._pending.append(frame)  # the join reply is not out yet
        else:
            session.write(frame)

    def _send(self, frame: Frame) -> None:
        pending = self._pending
        if pending is not None:
            pending.append(self.session.encoding.frame(frame))  # the join reply is not out yet
        else:
            self.session.send(frame)

    def _reply(self, ref: str | None, reply: Reply) -> None:
        """Answer the push ``ref``: the frame built in the session's form at once (for a wire
        transport the WebSocket frame straight from the JSON bytes)."""
        session = self.session
        response = reply.response
        frame = session.encoding.reply(
            self.join_ref, ref, self.topic, reply.status, _EMPTY if response is None else response
        )
        pending = self._pending
        if pending is None:
            session.write(frame)
        else:
            pending.append(frame)  # the join reply is not out yet

    def enqueue_join(self, message: Message) -> None:
        if self._task is not None:
            self._enqueue(_JOIN, message)
            return
        # A new channel: call join at once. While it runs, what it queues (send_info) waits behind it.
        self._task = _BUSY
        self._pending = []
        try:
            outcome = self.handler.join(self.topic, message.payload, self)
            done = type(outcome) is Reply and self._join_now(message, outcome)
        except Exception:
            self._task = None
            self._join_crashed(message)
            return
        self._task = None
        if not done:
            self._enqueue_first(_JOINING_REST, (message, outcome))
        elif self._inbox:
            self._info_now()

    def _join_now(self, message: Message, reply: Reply) -> bool:
        """Finish an accepted join at once when nothing must be awaited (no history to read, a
        PubSub that subscribes without a round trip); False (nothing done) otherwise."""
        if reply.status != "ok":
            self._refuse(message, reply)
            return True
        session = self.session
        endpoint = session.endpoint
        history = endpoint.history
        if history is not None and history.keeps(self.topic) is not None:
            return False
        if not endpoint.pubsub.subscribe_now(self.topic, self):
            return False
        self._accepted(message, _EMPTY if reply.response is None else reply.response)
        return True

    def enqueue_in(self, message: Message) -> None:
        if self._task is None and self._state == _JOINED:
            self.enqueue_push([message.join_ref, message.ref, message.topic, message.event, message.payload])
        else:
            self._enqueue(_IN, message)

    def enqueue_push(self, fields: list[Any]) -> None:
        """:meth:`enqueue_in` of a push as decoded fields ``[join_ref, ref, topic, event, payload]``
        (``Connection.receive_push``: a Message is built only when the push must wait).

        On an idle channel (joined, nothing queued) ``handle_in`` is called at once: a Reply or
        None is answered here and then, without a task; an awaitable goes to the channel's task;
        a Stop or an exception ends the channel as in the task (the channel stops taking frames
        now, its cleanup runs in a task). While it runs, what it queues to this channel
        (send_info) waits behind it."""
        if self._task is not None or self._state != _JOINED:
            self._enqueue(_IN, Message(*fields))
            return
        ref = fields[1]
        self._ref = ref
        self._task = _BUSY
        try:
            result = self.handler.handle_in(fields[3], fields[4], self)
            if type(result) is Reply:  # _reply inlined (joined: no join reply to wait for)
                session = self.session
                response = result.response
                session.write(
                    session.encoding.reply(
                        self.join_ref,
                        ref,
                        self.topic,
                        result.status,
                        _EMPTY if response is None else response,
                    )
                )
                result = None
            elif result is not None:
                if isinstance(result, Stop):
                    if result.reply is not None:
                        self._reply(ref, result.reply)
                    conn = self.session.conn
                    self._task = None
                    self._end_soon(result.reason, conn.closed(self) if result.clean else conn.crashed(self))
                    return
                if not _awaitable(result):
                    raise _bad_result(result)
        except Exception:
            logger.exception("channel %s crashed", self.topic)
            self._task = None
            self._end_soon("crash", self.session.conn.crashed(self))
            return
        finally:
            self._ref = None
        self._task = None
        if result is not None:
            self._enqueue_first(_AWAIT, (ref, result))
        elif self._inbox:
            self._info_now()

    def _info_now(self) -> None:
        """What a callback called at once queued: info messages first in line are handled at
        once while ``handle_info`` answers without waiting (a plain function returning None),
        so an after-join step (track, push ``presence_state``) needs no task and its pushes
        leave with the join reply; an awaitable it returns, and the rest, go to the task."""
        inbox = self._inbox
        while inbox and inbox[0][0] == _INFO and self._state == _JOINED:
            message = inbox.pop(0)[1]
            self._task = _BUSY
            try:
                result = self.handler.handle_info(message, self)
            except Exception:
                logger.exception("channel %s crashed", self.topic)
                self._task = None
                self._end_soon("crash", self.session.conn.crashed(self))
                return
            self._task = None
            if isinstance(result, Stop):
                conn = self.session.conn
                self._end_soon(result.reason, conn.closed(self) if result.clean else conn.crashed(self))
                return
            if result is not None:
                self._enqueue_first(_AWAIT_INFO, result)
                return
        if inbox:
            self._kick()
        else:
            self._inbox = None

    def enqueue_leave(self, message: Message) -> None:
        if self._task is None and self._state == _JOINED and self._leave_now(message):
            return
        self._enqueue(_LEAVE, message)

    def _leave_now(self, message: Message) -> bool:
        """The leave of an idle channel, done at once when the PubSub unsubscribes without a
        round trip: reply, ``terminate`` (a coroutine it returns is awaited in a task), release
        the presences, phx_close, as in the task. False (nothing done) otherwise."""
        session = self.session
        if not session.endpoint.pubsub.unsubscribe_now(self.topic, self):
            return False
        self._reply(message.ref, Reply.ok())
        self._state = _ENDED
        self._inbox = None
        _count_joined(self.topic, -1)
        frame = session.conn.closed(self)
        terminating = self._terminate("left")
        if terminating is not None:
            self._task = asyncio.get_running_loop().create_task(self._left(terminating, frame))
            return True
        self._release()
        if frame is not None:
            session.send(frame)
        return True

    async def _left(self, terminating: Awaitable[None], frame: Frame | None) -> None:
        try:
            try:
                await terminating
            except Exception:
                logger.exception("terminate of %s raised", self.topic)
            self._release()
            if frame is not None:
                self.session.send(frame)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    def _enqueue(self, kind: int, item: Any) -> None:
        inbox = self._inbox
        if inbox is None:
            self._inbox = [(kind, item)]
        else:
            inbox.append((kind, item))
        if self._task is None:
            self._kick()

    def _enqueue_first(self, kind: int, item: Any) -> None:
        """Queue ahead of anything queued meanwhile (the rest of a callback called at once)."""
        inbox = self._inbox
        if inbox is None:
            self._inbox = [(kind, item)]
        else:
            inbox.insert(0, (kind, item))
        self._kick()

    def _kick(self) -> None:
        """Start the task that drains the inbox (there is none)."""
        # Marked busy first: a handler running eagerly that queues to its own channel
        # (send_info, an intercepted broadcast) must append behind itself, not start a second run.
        self._task = _BUSY
        task = _start(asyncio.get_running_loop(), self._run())
        self._task = None if task.done() else task

    async def _run(self) -> None:
        try:
            while self._state != _ENDED:
                inbox = self._inbox
                if not inbox:
                    break
                kind, item = inbox.pop(0)
                try:
                    await self._handle(kind, item)
                except Exception:
                    await self._crashed(kind, item)
        finally:
            self._task = None
            if not self._inbox:
                self._inbox = None  # an idle channel keeps no list

    async def _handle(self, kind: int, item: Any) -> None:
        handler = self.handler
        if kind == _IN or kind == _AWAIT:
            if kind == _IN:
                ref: str | None = item.ref
                outcome: Any = handler.handle_in(item.event, item.payload, self)
            else:
                ref, outcome = item
            if _awaitable(outcome):
                self._ref = ref
                try:
                    outcome = await outcome
                finally:
                    self._ref = None
            if outcome is None:
                return
            if isinstance(outcome, Reply):
                self._reply(ref, outcome)
            elif isinstance(outcome, Stop):
                if outcome.reply is not None:
                    self._reply(ref, outcome.reply)
                await self._stop(outcome)
            else:
                raise _bad_result(outcome)
        elif kind == _OUT:
            await self._out(item)
        elif kind == _INFO or kind == _AWAIT_INFO:
            outcome = handler.handle_info(item, self) if kind == _INFO else item
            if _awaitable(outcome):
                outcome = await outcome
            if outcome is not None and not isinstance(outcome, Stop):
                raise TypeError(f"handle_info must return Stop or None, not {type(outcome).__name__}")
            await self._stop_if(outcome)
        elif kind == _LEAVE:
            self._reply(item.ref, Reply.ok())
            await self._end("left", self.session.conn.closed(self))
        elif kind == _JOIN:
            self._pending = []
            await self._join(item, self.handler.join(self.topic, item.payload, self))
        else:
            await self._join(*item)

    async def _join(self, message: Message, result: Reply | Awaitable[Reply]) -> None:
        """The join's outcome (awaited if it must be): refused, or subscribe, read history, reply."""
        session = self.session
        if _awaitable(result):
            result = await result  # type: ignore[misc]
        if not isinstance(result, Reply):
            raise TypeError(f"join must return a Reply, not {type(result).__name__}")
        if result.status != "ok":
            self._refuse(message, result)
            return
        endpoint = session.endpoint
        history = endpoint.history
        recovering = history is not None and history.keeps(self.topic) is not None
        if recovering:
            self._merge = Merge()  # subscribe first, then read: what arrives meanwhile waits here
        await endpoint.pubsub.subscribe(self.topic, self)
        response = _EMPTY if result.response is None else result.response
        replay: list[Broadcast] = []
        if history is not None and recovering:
            since = message.payload.get("since") if type(message.payload) is dict else None
            read = await history.read(self.topic, since)
            response, replay = self._recovery(response, since, read)
        if not self._accepted(message, response):
            self._merge = None
            return
        merge = self._merge
        if merge is not None:
            while replay and self._state == _JOINED:
                for item in replay:
                    await self._replay(item)
                replay = merge.more()  # what arrived while handle_out ran
            self._merge = None

    def _refuse(self, message: Message, reply: Reply) -> None:
        self._pending = None
        response = _EMPTY if reply.response is None else reply.response
        self.session.send(self.session.conn.refused(self, message.ref, reply.status, response))
        self._abandon()

    def _accepted(self, message: Message, response: Any) -> bool:
        """Subscribed: joined, the reply, then what was held back; False if replaced meanwhile."""
        session = self.session
        frame = session.conn.joined(self, message.ref, response)
        pending, self._pending = self._pending, None
        if frame is None:  # replaced by a duplicate join meanwhile; that join stops us
            return False
        self._state = _JOINED
        _count_joined(self.topic, 1)
        count_join()
        session.send(frame)
        for queued in pending or ():
            session.write(queued)
        return True

    def _recovery(self, response: Any, since: object, read: Read) -> tuple[Any, list[Broadcast]]:
        """The join response with ``position`` (and ``recovered`` when asked), and what to send
        after it: the replay, then the live broadcasts buffered meanwhile, each once, in order."""
        merge = self._merge
        assert merge is not None
        topic = self.topic
        if since is not None and read.failure is None and read.top is not None:
            entries = [
                (e.position, Broadcast(topic, e.event, e.payload, None, str(e.position)))
                for e in read.entries
            ]
            HISTORY_REPLAYED.inc(len(entries))
            position: Position | None = read.top
            replay = merge.recovered(read.top, entries)
        else:
            position, replay = merge.fresh(read.top)
        if type(response) is dict:
            response = dict(response)
            if position is not None:
                response["position"] = str(position)
            if since is not None:
                response["recovered"] = read.failure is None
        return response, replay

    async def _replay(self, message: Broadcast) -> None:
        """A replayed or held-back broadcast: through handle_out when intercepted, as live ones."""
        if message.event in self.handler.intercepts:
            await self._out(message)
            return
        frame = self._encode(self.session.encoding, message)
        if frame is not _UNENCODABLE:
            self.session.write(frame)

    def _encode(self, encoding: Encoding, message: Broadcast) -> Frame:
        """The broadcast's frame for ``encoding``, or ``_UNENCODABLE`` (logged) when it has none."""
        try:
            return encoding.broadcast(message.topic, message.event, message.payload, message.ref)
        except EncodeError:
            logger.warning(
                "broadcast %r on %s cannot be encoded for vsn %s",
                message.event,
                self.topic,
                encoding.serializer.vsn,
            )
            return _UNENCODABLE

    async def _out(self, message: Broadcast) -> None:
        """``handle_out`` of an intercepted broadcast; its pushes carry the broadcast's position."""
        self._position = message.ref
        try:
            result = await self.handler.handle_out(message.event, message.payload, self)
        finally:
            self._position = None
        await self._stop_if(result)

    async def _stop_if(self, result: Stop | None) -> None:
        if result is not None:
            await self._stop(result)

    async def _stop(self, stop: Stop) -> None:
        conn = self.session.conn
        await self._end(stop.reason, conn.closed(self) if stop.clean else conn.crashed(self))

    async def _crashed(self, kind: int, item: Any) -> None:
        if self._state == _JOINING and (kind == _JOIN or kind == _JOINING_REST):
            self._join_crashed(item if kind == _JOIN else item[0])
            return
        logger.exception("channel %s crashed", self.topic)
        await self._end("crash", self.session.conn.crashed(self))

    def _join_crashed(self, message: Message) -> None:
        """Called from an except block: log, answer the join with an error, forget the channel."""
        logger.exception("join of %s crashed", self.topic)
        self._pending = None
        self.session.send(self.session.conn.join_crashed(self, message.ref))
        self._abandon()

    def _abandon(self) -> None:
        """The join failed: answer what was queued behind it as if no channel existed."""
        self._state = _ENDED
        inbox, self._inbox = self._inbox, None
        conn = self.session.conn
        for kind, item in inbox or ():
            if kind in (_IN, _LEAVE):
                frame = conn.unjoined(item)
                if frame is not None:
                    self.session.send(frame)

    async def _end(self, reason: str, frame: Frame | None) -> None:
        """Unsubscribe, run terminate, release presences, then send the phx_close/phx_error frame."""
        was_joined = self._state == _JOINED
        self._state = _ENDED
        self._inbox = None
        await self._ended(reason, frame, was_joined)

    def _end_soon(self, reason: str, frame: Frame | None) -> None:
        """:meth:`_end` from outside the channel's task: ended now, cleaned up in a task."""
        was_joined = self._state == _JOINED
        self._state = _ENDED
        self._inbox = None
        self._task = asyncio.get_running_loop().create_task(self._ended(reason, frame, was_joined))

    async def _ended(self, reason: str, frame: Frame | None, was_joined: bool) -> None:
        try:
            await self._cleanup(reason, was_joined)
            if frame is not None:
                self.session.send(frame)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _cleanup(self, reason: str, was_joined: bool) -> None:
        endpoint = self.session.endpoint
        await endpoint.pubsub.unsubscribe(self.topic, self)
        if was_joined:
            _count_joined(self.topic, -1)
            terminating = self._terminate(reason)
            if terminating is not None:
                try:
                    await terminating
                except Exception:
                    logger.exception("terminate of %s raised", self.topic)
        self._release()

    def _terminate(self, reason: str) -> Awaitable[None] | None:
        """Call ``terminate``: what it returned to await, or None when it is done (or raised: logged)."""
        try:
            result = self.handler.terminate(reason, self)
        except Exception:
            logger.exception("terminate of %s raised", self.topic)
            return None
        return result if result is not None and _awaitable(result) else None

    def _release(self) -> None:
        presence = self.session.endpoint.presence
        if presence is not None:
            try:
                presence.release(self)  # never waits on the cluster (Redis may be away)
            except Exception:
                logger.exception("presence cleanup of %s failed", self.topic)

    async def shutdown(self, reason: str) -> None:
        """Stop from outside without frames (connection closed, duplicate join, disconnect, drain)."""
        if self._state == _ENDED:
            return
        was_joined = self._state == _JOINED
        self._state = _ENDED
        self._pending = None
        inbox, self._inbox = self._inbox, None
        conn = self.session.conn
        for kind, item in inbox or ():
            if kind == _LEAVE:  # e.g. a leave after a join timeout, then a rejoin (scenario 47)
                frame = conn.unjoined(item)
                if frame is not None:
                    self.session.send(frame)
        task = self._task
        if task is not None and task is not _BUSY and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait((task,))
        await self._cleanup(reason, was_joined)
