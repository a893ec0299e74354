"""Channel handlers of the reference application's topics (channels.md): rooms, private messages, products."""

from relaygate.web.topics.products import ProductsChannel
from relaygate.web.topics.room import RoomChannel
from relaygate.web.topics.user import UserChannel

__all__ = ["ProductsChannel", "RoomChannel", "UserChannel"]
