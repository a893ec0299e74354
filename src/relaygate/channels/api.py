"""The application-facing values: replies, stops and connect info (the bottom of the package)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("relaygate.channels")

CLEAN_STOP_REASONS = frozenset({"normal", "shutdown"})


@dataclass(slots=True)
class Reply:
    """A reply to a join or a client push. A ``bytes`` response is sent as a binary reply frame.

    A value (treat it as immutable); not a frozen dataclass, which costs ~3x to construct, and
    one is built per answered push."""

    status: str
    response: Any = None
    """Any JSON value; None is sent as ``{}``."""

    @classmethod
    def ok(cls, response: Any = None) -> Reply:
        return cls("ok", response)

    @classmethod
    def error(cls, response: Any = None) -> Reply:
        return cls("error", response)


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the channel, optionally replying first.

    ``normal``, ``shutdown`` and ``shutdown:<anything>`` are clean (phx_close); any other reason is
    reported to the client as a crash (phx_error), as Phoenix does.
    """

    reason: str = "normal"
    reply: Reply | None = None

    @property
    def clean(self) -> bool:
        return self.reason in CLEAN_STOP_REASONS or self.reason.startswith("shutdown:")


@dataclass(frozen=True, slots=True)
class ConnectInfo:
    """What the connect hook may look at besides the query params. Never log ``auth_token``."""

    auth_token: str | None = field(default=None, repr=False)
    peer: tuple[str, int] | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    origin: str | None = None
