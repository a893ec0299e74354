"""A lean Redis connection for the gateway's hot path: calls, replies and control messages.

redis-py spends more CPU per command (connection pool, timeouts, retry wrappers, a parse step
per reply) and per Pub/Sub message (``listen()``, a dict per message) than the gateway spends on
a whole call. A :class:`RedisLink` is one connection read by one task of its own: commands are
written at once, pipelined, their replies matched in order; Pub/Sub messages (RESP3 pushes, so
one connection subscribes *and* runs commands) go to a callback as they are parsed, without a
task or a dict per message. Parsing is hiredis'.

The connection itself (TCP, unix socket or TLS, AUTH, SELECT, ``HELLO 3``) is opened by
redis-py's connection class with the client's own settings, then its streams are taken over:
that reads ``_reader``/``_writer`` of redis-py's connection (checked against redis-py 8.1;
``tests/service/test_link.py`` covers it). Everything else keeps using redis-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

import hiredis
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_PENDING: Final = object()
"""hiredis' "no complete reply yet" (a RESP3 reply may itself be ``False``)."""
_SUBSCRIBED: Final = frozenset({b"subscribe", b"psubscribe", b"ssubscribe"})
Push: Final = hiredis.PushNotification
"""A RESP3 push (Pub/Sub message or confirmation), as hiredis tells it from a reply."""
READ_SIZE: Final = 65536

OnMessage = Callable[[bytes, bytes], None]
"""``on_message(channel, data)``: a Pub/Sub message, called by the reader as it is parsed."""


def pack(*args: str | bytes | int | float) -> bytes:
    """One command in RESP (hiredis' packer; its stubs type the argument as a 1-tuple)."""
    return cast("bytes", hiredis.pack_command(cast("Any", args)))


class LinkLost(ConnectionError):
    """The link is not connected (never was, closed, or lost): nothing sent on it is answered."""


class _Batch:
    __slots__ = ("count", "future", "replies")

    def __init__(self, count: int, future: asyncio.Future[list[Any]]) -> None:
        self.count = count
        self.future = future
        self.replies: list[Any] = []


class _Connection:
    """One connection's state: a link replaces the whole of it when it reconnects."""

    __slots__ = ("closed", "confirmations", "confirmed", "pending", "reader", "task", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.pending: deque[_Batch] = deque()
        self.confirmations = 0
        self.confirmed: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None

    def drop(self, reason: str) -> None:
        """End it (idempotent): close the socket, fail what waits for an answer."""
        if self.closed.done():
            return
        self.closed.set_result(reason)
        with contextlib.suppress(Exception):
            self.writer.close()
        pending, self.pending = self.pending, deque()
        for batch in pending:
            _fail(batch.future, reason)
        if self.confirmed is not None:
            _fail(self.confirmed, reason)


def _fail(future: asyncio.Future[Any], reason: str) -> None:
    if not future.done():
        future.set_exception(LinkLost(reason))
        future.exception()  # retrieved: a sender that stopped waiting logs nothing


class RedisLink:
    """One Redis connection: :meth:`connect` (it starts reading), send and subscribe, and
    :meth:`wait_closed` to learn when it ended (then connect again if wanted).

    Replies are Python values as hiredis parses them (``bytes``, ``int``, ``None``, lists; a
    Redis error is a :class:`hiredis.ReplyError` *value*, not raised).
    """

    def __init__(self, redis: Redis, *, on_message: OnMessage | None = None) -> None:
        self._redis = redis
        self._on_message = on_message
        self._connection: _Connection | None = None
        self._closing: _Connection | None = None

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.closed.done()

    async def connect(self) -> None:
        """Open a fresh connection with the client's settings, speaking RESP3, and read it."""
        self.close()
        pool = self._redis.connection_pool
        client = pool.connection_class(**{**pool.connection_kwargs, "protocol": 3})
        try:
            await client.connect()  # type: ignore[no-untyped-call]
        except BaseException:  # cancelled or failed half-way: leave no socket behind
            with contextlib.suppress(Exception):
                await client.disconnect(nowait=True)
            raise
        reader, writer = client._reader, client._writer
        if reader is None or writer is None:  # pragma: no cover - a redis-py without these streams
            raise LinkLost("the redis-py connection exposes no streams")
        client._reader = client._writer = None  # ours now: redis-py must not close them when collected
        connection = self._connection = _Connection(reader, writer)
        connection.task = asyncio.create_task(self._read(connection), name="redis-link")

    def send(self, packed: bytes, count: int) -> asyncio.Future[list[Any]]:
        """Write ``count`` packed commands now; the future gets their ``count`` replies, or
        :class:`LinkLost` if the connection is (or goes) away before they are all in."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        connection = self._connection
        if connection is None or connection.closed.done():
            _fail(future, "not connected to Redis")
            return future
        connection.pending.append(_Batch(count, future))
        connection.writer.write(packed)
        return future

    async def command(self, *args: Any) -> Any:
        """Send one command and return its reply (a Redis error is raised)."""
        (reply,) = await self.send(pack(*args), 1)
        if isinstance(reply, hiredis.ReplyError):
            raise reply
        return reply

    async def subscribe(self, *channels: str) -> None:
        """Subscribe and return once Redis has confirmed every channel (messages then flow)."""
        connection = self._connection
        if connection is None or connection.closed.done():
            raise LinkLost("not connected to Redis")
        connection.confirmations += len(channels)
        if connection.confirmed is None or connection.confirmed.done():
            connection.confirmed = asyncio.get_running_loop().create_future()
        confirmed = connection.confirmed
        connection.writer.write(pack("SUBSCRIBE", *channels))
        await confirmed

    async def wait_closed(self) -> str:
        """Wait until the current connection ends (at once if there is none); why it ended."""
        connection = self._connection
        if connection is None:
            return "not connected"
        return await asyncio.shield(connection.closed)

    def close(self) -> None:
        """Drop the connection; unanswered commands (and a pending subscribe) get :class:`LinkLost`."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._closing = connection
            connection.drop("closed")
            if connection.task is not None:
                connection.task.cancel()

    async def aclose(self) -> None:
        """:meth:`close`, then wait until the socket is closed."""
        self.close()
        closing, self._closing = self._closing, None
        if closing is not None:
            tasks = [closing.task] if closing.task is not None else []
            await asyncio.gather(*tasks, closing.writer.wait_closed(), return_exceptions=True)

    async def _read(self, connection: _Connection) -> None:
        parser = hiredis.Reader(notEnoughData=_PENDING)
        reader, pending, on_message = connection.reader, connection.pending, self._on_message
        reason = "Redis closed the connection"
        try:
            while data := await reader.read(READ_SIZE):
                parser.feed(data)
                while (reply := parser.gets()) is not _PENDING:
                    if type(reply) is Push:
                        kind = reply[0]
                        if kind == b"message" and on_message is not None:
                            try:
                                on_message(reply[1], reply[2])
                            except Exception:  # the owner's bug: keep the connection readable
                                log.exception("a Redis message handler failed")
                        elif kind in _SUBSCRIBED:
                            connection.confirmations -= 1
                            confirmed = connection.confirmed
                            if (
                                connection.confirmations <= 0
                                and confirmed is not None
                                and not confirmed.done()
                            ):
                                confirmed.set_result(None)
                        continue
                    if not pending:
                        continue  # an answer nothing asked for: a misbehaving server
                    batch = pending[0]
                    batch.replies.append(reply)
                    if len(batch.replies) == batch.count:
                        pending.popleft()
                        if not batch.future.done():
                            batch.future.set_result(batch.replies)
        except (OSError, hiredis.ProtocolError) as exc:
            reason = f"the connection to Redis failed: {type(exc).__name__}"
        finally:
            connection.drop(reason)


RECONNECT_FIRST_S: Final = 0.1
RECONNECT_CAP_S: Final = 2.0


async def keep_linked(
    current: Callable[[], RedisLink], relink: Callable[[], Awaitable[None]], what: str, logger: logging.Logger
) -> None:
    """Forever: wait until the current link closes, then ``relink`` (take a new link and catch
    up) until it succeeds, waiting longer between tries up to :data:`RECONNECT_CAP_S`."""
    while True:
        reason = await current().wait_closed()
        logger.warning("%s link to Redis lost (%s); reconnecting", what, reason)
        delay = RECONNECT_FIRST_S
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_CAP_S)
            try:
                await relink()
                break
            except (RedisError, OSError, TimeoutError) as exc:
                logger.warning("%s reconnect failed (%s); retrying", what, type(exc).__name__)
