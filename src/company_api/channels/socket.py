"""The app's channel socket (``/socket``): token authentication and the reference app's topics."""

from __future__ import annotations

from company_api.channels.products import ProductsChannel
from company_api.channels.room import RoomChannel
from company_api.channels.user import UserChannel
from relaygate.channels import Socket
from relaygate.gateway import GatewayChannel
from relaygate.history import Keep
from relaygate.node import Node, token_socket

KEEP = Keep(100, 300.0)
"""The reference app's history: the last 100 broadcasts, for 5 minutes (room, user, products)."""


def app_socket(node: Node) -> Socket:
    """``/socket`` with id ``users_socket:<user_id>``, the topics of channels.md and the gateway."""
    chat = node.contexts.chat
    socket = token_socket(node, "/socket")
    socket.channel("room:*", RoomChannel(chat), history=KEEP)
    socket.channel("user:*", UserChannel(chat), history=KEEP)
    socket.channel("products", ProductsChannel(), history=KEEP)
    gateway_channel = GatewayChannel(node.gateway)
    socket.channel("gateway", gateway_channel)
    socket.channel("gateway:*", gateway_channel)
    return socket
