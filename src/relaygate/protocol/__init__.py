"""Sans-I/O Phoenix Channels protocol core: frame codecs, handshake checks and routing state.

Only the standard library and orjson are used; no asyncio, no sockets. Malformed client input
becomes a :class:`ProtocolError` value carrying the WebSocket close code.
"""

from relaygate.protocol.connection import (
    Action,
    ChannelEntry,
    Connection,
    Deliver,
    Join,
    Leave,
    Send,
)
from relaygate.protocol.frames import (
    GOING_AWAY,
    INTERNAL_ERROR,
    INVALID_DATA,
    MESSAGE_TOO_BIG,
    POLICY_VIOLATION,
    SERVICE_RESTART,
    UNSUPPORTED_DATA,
    EncodeError,
    Frame,
    Message,
    ProtocolError,
)
from relaygate.protocol.handshake import OriginCheck, Subprotocols, parse_subprotocols, serializer_for
from relaygate.protocol.positions import Position
from relaygate.protocol.positions import parse as parse_position
from relaygate.protocol.router import Router
from relaygate.protocol.serializers import V1, V2, Serializer, V1Serializer, V2Serializer

__all__ = [
    "GOING_AWAY",
    "INTERNAL_ERROR",
    "INVALID_DATA",
    "MESSAGE_TOO_BIG",
    "POLICY_VIOLATION",
    "SERVICE_RESTART",
    "UNSUPPORTED_DATA",
    "V1",
    "V2",
    "Action",
    "ChannelEntry",
    "Connection",
    "Deliver",
    "EncodeError",
    "Frame",
    "Join",
    "Leave",
    "Message",
    "OriginCheck",
    "Position",
    "ProtocolError",
    "Router",
    "Send",
    "Serializer",
    "Subprotocols",
    "V1Serializer",
    "V2Serializer",
    "parse_position",
    "parse_subprotocols",
    "serializer_for",
]
