"""Conversations between two users and their messages: the rules every API shares.

Writes start with a write statement (never read-then-write in one transaction) so that SQLite's WAL
mode takes the write lock up front instead of failing a stale read snapshot under concurrency, and
PostgreSQL row locks order the messages of one conversation.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from company_api.contexts.chat.errors import ConversationNotFound, InvalidCursor, InvalidInput, RateLimited
from company_api.contexts.chat.models import Conversation, Message
from company_api.contexts.chat.ratelimit import RateLimiter
from company_api.contexts.chat.records import (
    ConversationRecord,
    MessageRecord,
    Page,
    Position,
    from_micros,
    to_micros,
)
from relaygate.accounts import User
from relaygate.db import SQL, Database, Tx, utcnow
from relaygate.pubsub import PubSub

log = logging.getLogger("relaygate.chat")

MAX_CONTENT = 4000
MAX_PAGE = 200
MAX_ID = 2**31 - 1
"""Ids are 32-bit integer columns; anything larger cannot exist (and must not reach the driver)."""


# One transaction of two statements: the participant check is the UPDATE's WHERE (no read first),
# and the new id comes back with RETURNING.
_TOUCH = SQL(
    "UPDATE conversations SET last_activity_at = ?, updated_at = ? "
    "WHERE id = ? AND (sender_id = ? OR recipient_id = ?) RETURNING sender_id, recipient_id"
)
_INSERT = SQL(
    "INSERT INTO messages (conversation_id, sender_id, content, date, inserted_at) "
    "VALUES (?, ?, ?, ?, ?) RETURNING id"
)
# PostgreSQL does both in one statement (one round trip, its own transaction): the message is
# inserted only if the participant's UPDATE touched the conversation.
_TOUCH_AND_INSERT = SQL(
    "WITH touched AS (UPDATE conversations SET last_activity_at = ?, updated_at = ? "
    "WHERE id = ? AND (sender_id = ? OR recipient_id = ?) RETURNING sender_id, recipient_id) "
    "INSERT INTO messages (conversation_id, sender_id, content, date, inserted_at) "
    "SELECT ?, ?, ?, ?, ? FROM touched "
    "RETURNING id, (SELECT sender_id FROM touched), (SELECT recipient_id FROM touched)"
)


def user_topic(user_id: int) -> str:
    """The channel topic on which a user's sockets receive their private messages."""
    return f"user:{user_id}"


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def content_errors(content: object) -> list[str]:
    """Why ``content`` cannot be a message body (empty list: it can)."""
    if not isinstance(content, str):
        return ["must be a string"]
    if not content:
        return ["can't be blank"]
    if len(content) > MAX_CONTENT:
        return [f"should be at most {MAX_CONTENT} character(s)"]
    if "\x00" in content:
        return ["must not contain NUL characters"]
    return []


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput({"limit": [f"must be between 1 and {MAX_PAGE}"]})


def _position(after: Position | None, size: int) -> Position | None:
    if after is not None and (len(after) != size or not all(type(part) is int for part in after)):
        raise InvalidCursor("not a position of this list")
    return after


class Chat:
    """One per node (``node.contexts.chat``). Messages are committed before any method returns them."""

    def __init__(self, db: Database, pubsub: PubSub, limiter: RateLimiter) -> None:
        self.db = db
        self.pubsub = pubsub
        self.limiter = limiter

    # -- conversations ----------------------------------------------------------------------------

    async def start_conversation(self, user_id: int, recipient_id: object) -> tuple[ConversationRecord, bool]:
        """The conversation of the pair, created if needed: ``(conversation, created)``.

        Idempotent in either direction and race-safe: of concurrent first calls, the unique pair
        constraint lets exactly one insert win and the others return its row.
        """
        if not _is_id(recipient_id):
            raise InvalidInput({"recipient_id": ["does not exist"]})
        assert isinstance(recipient_id, int)
        if recipient_id == user_id:
            raise InvalidInput({"recipient_id": ["can't start a conversation with yourself"]})
        low, high = sorted((user_id, recipient_id))
        existing = await self._pair(low, high)
        if existing is not None:
            return existing, False
        async with self.db.session() as session:
            recipient = await session.scalar(select(User.id).where(User.id == recipient_id))
        if recipient is None:
            raise InvalidInput({"recipient_id": ["does not exist"]})
        now = utcnow()
        row = Conversation(
            sender_id=user_id,
            recipient_id=recipient_id,
            low_user_id=low,
            high_user_id=high,
            status="active",
            last_activity_at=now,
            inserted_at=now,
            updated_at=now,
        )
        try:
            async with self.db.transaction() as session:
                session.add(row)
        except IntegrityError:
            existing = await self._pair(low, high)
            if existing is None:  # the recipient was deleted meanwhile (foreign key)
                raise InvalidInput({"recipient_id": ["does not exist"]}) from None
            return existing, False
        return ConversationRecord.of(row), True

    async def _pair(self, low: int, high: int) -> ConversationRecord | None:
        async with self.db.session() as session:
            row = await session.scalar(
                select(Conversation).where(Conversation.low_user_id == low, Conversation.high_user_id == high)
            )
        return None if row is None else ConversationRecord.of(row)

    async def get_conversation(self, user_id: int, conversation_id: object) -> ConversationRecord:
        """The conversation if ``user_id`` takes part in it, else :class:`ConversationNotFound`."""
        if not _is_id(conversation_id):
            raise ConversationNotFound(conversation_id)
        async with self.db.session() as session:
            row = await session.scalar(
                select(Conversation).where(Conversation.id == conversation_id, _participant(user_id))
            )
        if row is None:
            raise ConversationNotFound(conversation_id)
        return ConversationRecord.of(row)

    async def list_conversations(
        self, user_id: int, *, limit: int = 50, after: Position | None = None
    ) -> Page[ConversationRecord]:
        """The user's conversations, most recently active first (ties: newest id first)."""
        _check_limit(limit)
        position = _position(after, 2)
        query = select(Conversation).where(_participant(user_id))
        if position is not None:
            moment, last_id = from_micros(position[0]), position[1]
            query = query.where(
                or_(
                    Conversation.last_activity_at < moment,
                    and_(Conversation.last_activity_at == moment, Conversation.id < last_id),
                )
            )
        query = query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(limit + 1)
        async with self.db.session() as session:
            rows = list(await session.scalars(query))
        items = [ConversationRecord.of(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items, (to_micros(items[-1].last_activity_at), items[-1].id) if more else None)

    # -- messages ---------------------------------------------------------------------------------

    async def list_messages(
        self, user_id: int, conversation_id: object, *, limit: int = 50, after: Position | None = None
    ) -> Page[MessageRecord]:
        """Newest first; ``after`` continues further back in time."""
        _check_limit(limit)
        position = _position(after, 1)
        conversation = await self.get_conversation(user_id, conversation_id)
        query = select(Message).where(Message.conversation_id == conversation.id)
        if position is not None:
            query = query.where(Message.id < position[0])
        query = query.order_by(Message.id.desc()).limit(limit + 1)
        async with self.db.session() as session:
            rows = list(await session.scalars(query))
        items = [MessageRecord.of(row) for row in rows[:limit]]
        return Page(items, (items[-1].id,) if len(rows) > limit else None)

    async def get_message(self, user_id: int, conversation_id: object, message_id: object) -> MessageRecord:
        """One message of a conversation ``user_id`` takes part in, else :class:`ConversationNotFound`."""
        conversation = await self.get_conversation(user_id, conversation_id)
        if not _is_id(message_id):
            raise ConversationNotFound(conversation_id)
        async with self.db.session() as session:
            row = await session.scalar(
                select(Message).where(Message.id == message_id, Message.conversation_id == conversation.id)
            )
        if row is None:
            raise ConversationNotFound(conversation_id)
        return MessageRecord.of(row)

    async def check_rate(self, user_id: int) -> None:
        """Count one message of ``user_id`` against the limit, or raise :class:`RateLimited`."""
        retry_after = await self.limiter.hit(str(user_id))
        if retry_after is not None:
            raise RateLimited(retry_after)

    async def send_message(
        self,
        user_id: int,
        conversation_id: object,
        content: object,
        *,
        origin: object | None = None,
        rate_checked: bool = False,
    ) -> MessageRecord:
        """Rate-limit, store and commit a message, then push ``receive_msg`` to both participants.

        Checks run in the order of the HTTP decision table: rate limit (skipped with
        ``rate_checked`` when the caller already counted this message with :meth:`check_rate`),
        then participation, then content. The push goes to the other participant's ``user:<id>``
        topic and to the sender's, skipping ``origin`` (the sending socket's subscriber, which gets
        the message in its reply).
        """
        if not rate_checked:
            await self.check_rate(user_id)
        if not _is_id(conversation_id):
            raise ConversationNotFound(conversation_id)
        errors = content_errors(content)
        now = utcnow()
        direct = self.db.direct
        stamp = direct.timestamp(now)

        async def store(tx: Tx) -> tuple[int, int, int]:
            pair = await tx.one(_TOUCH, stamp, stamp, conversation_id, user_id, user_id)
            if pair is None:
                raise ConversationNotFound(conversation_id)
            if errors:
                raise InvalidInput({"content": errors})
            inserted = await tx.one(_INSERT, conversation_id, user_id, content, stamp, stamp)
            assert inserted is not None
            return inserted[0], pair[0], pair[1]

        if errors or direct.dialect != "postgresql":
            message_id, sender_id, recipient_id = await direct.run(store, write=True)
        else:
            row = await direct.fetch_one(
                _TOUCH_AND_INSERT, stamp, stamp, conversation_id, user_id, user_id,
                conversation_id, user_id, content, stamp, stamp,
            )  # fmt: skip
            if row is None:
                raise ConversationNotFound(conversation_id)
            message_id, sender_id, recipient_id = row
        assert isinstance(content, str) and isinstance(conversation_id, int)
        message = MessageRecord(message_id, conversation_id, user_id, content, now, now)
        await self._publish(message, recipient_id if sender_id == user_id else sender_id, origin)
        return message

    async def _publish(self, message: MessageRecord, recipient_id: int, origin: object | None) -> None:
        """Fan-out is at-most-once: the message is committed, so a failed push only loses liveness."""
        payload: dict[str, Any] = {"message": message.to_json()}
        try:
            await self.pubsub.broadcast(user_topic(recipient_id), "receive_msg", payload)
            await self.pubsub.broadcast(user_topic(message.sender_id), "receive_msg", payload, origin=origin)
        except Exception:
            log.warning("receive_msg push of message %s failed", message.id, exc_info=True)


def _participant(user_id: int) -> Any:
    return or_(Conversation.sender_id == user_id, Conversation.recipient_id == user_id)
