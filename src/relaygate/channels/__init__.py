"""The channel runtime: the Channel API for apps and the asyncio transports around the protocol core.

Apps declare a :class:`Socket` with channel routes, register it on an :class:`Endpoint` and mount
``endpoint.routes()``; channels subclass :class:`Channel` and talk through :class:`ChannelSocket`.
"""

from relaygate.channels.api import ConnectInfo, Reply, Stop
from relaygate.channels.channel import Channel
from relaygate.channels.channel_socket import ChannelSocket, ReplyRef
from relaygate.channels.endpoint import Endpoint
from relaygate.channels.session import Session, Transport
from relaygate.channels.socket import Socket

__all__ = [
    "Channel",
    "ChannelSocket",
    "ConnectInfo",
    "Endpoint",
    "Reply",
    "ReplyRef",
    "Session",
    "Socket",
    "Stop",
    "Transport",
]
