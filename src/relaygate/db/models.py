"""Imports every context's tables so that ``Base.metadata`` is complete (Alembic, tests)."""

from relaygate.contexts.accounts.models import RevokedToken, User
from relaygate.contexts.catalog.models import Product
from relaygate.contexts.chat.models import Conversation, Message
from relaygate.db.base import Base

metadata = Base.metadata

__all__ = ["Conversation", "Message", "Product", "RevokedToken", "User", "metadata"]
