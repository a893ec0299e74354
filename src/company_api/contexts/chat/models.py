"""Tables of the chat context."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from relaygate.db import Base, UTCDateTime, utcnow


class Conversation(Base):
    """One per pair of users: ``low_user_id``/``high_user_id`` make the pair order-free."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("low_user_id", "high_user_id", name="uq_conversations_pair"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    low_user_id: Mapped[int] = mapped_column()
    high_user_id: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="active")
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    inserted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_id_id", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    content: Mapped[str] = mapped_column(Text)
    date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    inserted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
