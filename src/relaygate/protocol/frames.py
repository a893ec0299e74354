"""Frame-level values shared by serializers and the connection state machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

Frame = str | bytes
"""An encoded WebSocket message: ``str`` travels as a text frame, ``bytes`` as a binary frame."""

# WebSocket close codes the server uses (never 1000: phoenix.js <= 1.8.15 would not reconnect).
GOING_AWAY: Final = 1001
UNSUPPORTED_DATA: Final = 1003
INVALID_DATA: Final = 1007
POLICY_VIOLATION: Final = 1008
MESSAGE_TOO_BIG: Final = 1009
INTERNAL_ERROR: Final = 1011
SERVICE_RESTART: Final = 1012

HEARTBEAT_TOPIC: Final = "phoenix"
JOIN: Final = "phx_join"
LEAVE: Final = "phx_leave"
REPLY: Final = "phx_reply"
CLOSE: Final = "phx_close"
ERROR: Final = "phx_error"
HEARTBEAT: Final = "heartbeat"


@dataclass(slots=True)
class Message:
    """One decoded frame. ``payload`` is any JSON value, or ``bytes`` for a binary frame.

    Not frozen: one is built per client frame, and a frozen dataclass costs ~4x to construct."""

    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: Any


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """Malformed input: the connection must be closed with ``code``. A value, never raised."""

    code: int
    reason: str


class EncodeError(ValueError):
    """Server output that cannot be put on the wire (not JSON-able, binary on V1, header > 255 bytes)."""
