"""What the chat context reports to its callers (routers and channels map these to their wire forms)."""

from __future__ import annotations


class ChatError(Exception):
    """Base of the chat context's errors."""


class InvalidInput(ChatError):
    """Input that breaks a rule; ``errors`` maps each field to messages, as the APIs report them."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(f"invalid input: {errors}")
        self.errors = errors


class InvalidCursor(ChatError):
    """A pagination position that this context never handed out."""


class ConversationNotFound(ChatError):
    """No such conversation, or the caller is not one of its participants (indistinguishable)."""


class RateLimited(ChatError):
    """The sender hit the message rate limit; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after:.3f}s")
        self.retry_after = retry_after
