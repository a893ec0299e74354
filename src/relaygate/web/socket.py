"""The app's channel socket (``/socket``): token authentication and the reference app's topics."""

from __future__ import annotations

from relaygate.channels import Socket
from relaygate.contexts.accounts import Accounts, socket_authenticator, socket_id, socket_topics
from relaygate.contexts.chat import Chat
from relaygate.gateway import Gateway, GatewayChannel
from relaygate.history import Keep
from relaygate.web.topics import ProductsChannel, RoomChannel, UserChannel

KEEP = Keep(100, 300.0)
"""The reference app's history: the last 100 broadcasts, for 5 minutes (room, user, products)."""


def app_socket(accounts: Accounts, chat: Chat, gateway: Gateway) -> Socket:
    """``/socket`` with id ``users_socket:<user_id>``, the topics of channels.md and the gateway."""
    socket = Socket(
        "/socket", connect=socket_authenticator(accounts), id=socket_id, disconnect_topics=socket_topics
    )
    socket.channel("room:*", RoomChannel(chat), history=KEEP)
    socket.channel("user:*", UserChannel(chat), history=KEEP)
    socket.channel("products", ProductsChannel(), history=KEEP)
    gateway_channel = GatewayChannel(gateway)
    socket.channel("gateway", gateway_channel)
    socket.channel("gateway:*", gateway_channel)
    return socket
