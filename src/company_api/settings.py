"""The reference app's own settings, next to the framework's ``RELAYGATE_*`` variables."""

from __future__ import annotations

from pydantic import Field

from relaygate.config import Settings


class CompanySettings(Settings):
    chat_rate_limit: int = Field(default=20, ge=1)
    """``RELAYGATE_CHAT_RATE_LIMIT``: messages per user per window, over HTTP and channels together."""
    chat_rate_window: float = Field(default=10.0, gt=0)
    """``RELAYGATE_CHAT_RATE_WINDOW``: the window in seconds."""
