"""asyncio Phoenix Channels client (the phoenix.js `Socket`/`Channel`/`Presence` in Python)."""

from __future__ import annotations

from relaygate.client.channel import ChannelState, ClientChannel
from relaygate.client.client import Client, default_reconnect_after, default_rejoin_after
from relaygate.client.errors import ChannelClosed, ClientError, ConnectError, PushError, PushTimeout
from relaygate.client.presence import PresenceState, list_presences, sync_diff, sync_state

__all__ = [
    "ChannelClosed",
    "ChannelState",
    "Client",
    "ClientChannel",
    "ClientError",
    "ConnectError",
    "PresenceState",
    "PushError",
    "PushTimeout",
    "default_reconnect_after",
    "default_rejoin_after",
    "list_presences",
    "sync_diff",
    "sync_state",
]
