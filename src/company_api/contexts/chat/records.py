"""Immutable views of conversations and messages and their JSON representations (http-api.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from company_api.contexts.chat.models import Conversation, Message

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

T = TypeVar("T")

Position = tuple[int, ...]
"""Where a page ends, as plain integers; the web layer wraps it into an opaque, signed cursor."""


def isotime(moment: datetime) -> str:
    """ISO 8601 UTC to the second, as every time in the API (``2026-11-22T10:00:00Z``)."""
    return moment.astimezone(UTC).isoformat()[:19] + "Z"  # slicing is cheaper than replace()


def to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: int
    sender_id: int
    recipient_id: int
    status: str
    last_activity_at: datetime
    inserted_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Conversation) -> ConversationRecord:
        return cls(
            id=row.id,
            sender_id=row.sender_id,
            recipient_id=row.recipient_id,
            status=row.status,
            last_activity_at=row.last_activity_at,
            inserted_at=row.inserted_at,
            updated_at=row.updated_at,
        )

    def other(self, user_id: int) -> int:
        """The participant who is not ``user_id``."""
        return self.recipient_id if user_id == self.sender_id else self.sender_id

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sender_id": self.sender_id,
            "recipient_id": self.recipient_id,
            "status": self.status,
            "inserted_at": isotime(self.inserted_at),
            "updated_at": isotime(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: int
    conversation_id: int
    sender_id: int
    content: str
    date: datetime
    inserted_at: datetime

    @classmethod
    def of(cls, row: Message) -> MessageRecord:
        return cls(
            id=row.id,
            conversation_id=row.conversation_id,
            sender_id=row.sender_id,
            content=row.content,
            date=row.date,
            inserted_at=row.inserted_at,
        )

    def to_json(self) -> dict[str, Any]:
        date = isotime(self.date)
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "sender_id": self.sender_id,
            "content": self.content,
            "date": date,
            # a message sent now has both times equal: format once
            "inserted_at": date if self.inserted_at == self.date else isotime(self.inserted_at),
        }


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; ``next`` is the position to continue after, ``None`` on the last page."""

    items: list[T]
    next: Position | None
