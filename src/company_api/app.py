"""The reference app as one :class:`relaygate.App`: what ``relaygate serve`` runs by default."""

from __future__ import annotations

from dataclasses import dataclass

from company_api.channels.socket import app_socket
from company_api.contexts.catalog.models import Product
from company_api.contexts.chat import Chat, MemoryRateLimiter, RateLimiter, RedisRateLimiter
from company_api.contexts.chat.models import Conversation, Message
from company_api.settings import CompanySettings
from company_api.web import conversations, demo, products
from relaygate.db import Base
from relaygate.node import App, Node
from relaygate.web import ACCOUNT_ROUTERS


@dataclass(frozen=True, slots=True)
class Contexts:
    """The app's contexts on one node (``node.contexts``); the catalog is stateless functions."""

    chat: Chat


def build_contexts(node: Node) -> Contexts:
    settings = node.settings
    assert isinstance(settings, CompanySettings)
    limiter: RateLimiter
    if node.redis is not None:
        limiter = RedisRateLimiter(node.redis, settings.chat_rate_limit, settings.chat_rate_window)
    else:
        limiter = MemoryRateLimiter(settings.chat_rate_limit, settings.chat_rate_window)
    return Contexts(chat=Chat(node.db, node.pubsub, limiter))


TABLES = (Product, Conversation, Message)
"""Imported so that ``Base.metadata`` holds every table of the app (Alembic compares against it)."""
metadata = Base.metadata

app = App(
    name="Relaygate",
    routers=[products.group, *ACCOUNT_ROUTERS, conversations.group],
    dev_routers=[demo.router],
    sockets=[app_socket],
    contexts=build_contexts,
    metadata=metadata,
    migrations="company_api.migrations",
    settings=CompanySettings,
)
