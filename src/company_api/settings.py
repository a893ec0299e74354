"""The reference app's own settings, next to the framework's ``RELAYGATE_*`` variables."""

from __future__ import annotations

from pydantic import Field

from relaygate.config import Settings


class CompanySettings(Settings):
    chat_rate_limit: int = Field(default=20, ge=1)
    """Chat messages one user may send per window, over HTTP and channels together."""
    chat_rate_window: float = Field(default=10.0, gt=0)
    """The chat rate limit's window, in seconds."""
