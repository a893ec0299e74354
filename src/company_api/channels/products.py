"""``products``: any user listens to catalog changes; clients send nothing."""

from __future__ import annotations

from typing import Any

from company_api.channels.replies import unknown_event
from relaygate.channels import Channel, ChannelSocket, Reply


class ProductsChannel(Channel):
    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        return Reply.ok()

    async def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        return unknown_event(event)
