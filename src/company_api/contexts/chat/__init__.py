"""The chat context: one conversation per pair of users, their messages and the message rate limit.

Routers and channels call :class:`Chat` (``node.contexts.chat``) and map its errors to their wire forms.
"""

from company_api.contexts.chat.errors import (
    ChatError,
    ConversationNotFound,
    InvalidCursor,
    InvalidInput,
    RateLimited,
)
from company_api.contexts.chat.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from company_api.contexts.chat.records import ConversationRecord, MessageRecord, Page, Position, isotime
from company_api.contexts.chat.service import MAX_CONTENT, MAX_PAGE, Chat, content_errors, user_topic

__all__ = [
    "MAX_CONTENT",
    "MAX_PAGE",
    "Chat",
    "ChatError",
    "ConversationNotFound",
    "ConversationRecord",
    "InvalidCursor",
    "InvalidInput",
    "MemoryRateLimiter",
    "MessageRecord",
    "Page",
    "Position",
    "RateLimited",
    "RateLimiter",
    "RedisRateLimiter",
    "content_errors",
    "isotime",
    "user_topic",
]
