"""Channel handlers of the reference application's topics (channels.md): rooms, private messages, products."""

from company_api.channels.products import ProductsChannel
from company_api.channels.room import RoomChannel
from company_api.channels.user import UserChannel

__all__ = ["ProductsChannel", "RoomChannel", "UserChannel"]
