"""``admin:dashboard``: the channel the dashboard page joins; administrators only.

The join reply carries the current view; a ``snapshot`` push follows about once a second while the
channel is joined. ``presence`` ({"topic"}) answers who is on a topic, on demand.
"""

from __future__ import annotations

from typing import Any, Final

from relaygate.accounts import Accounts, socket_authenticator, socket_id, socket_topics
from relaygate.channels import Channel, ChannelSocket, Reply, Socket
from relaygate.dashboard.runtime import TOPIC, Dashboard

SOCKET_PATH: Final = "/dashboard/socket"
MAX_TOPIC: Final = 256


class DashboardChannel(Channel):
    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        if socket.assigns.get("role") != "admin":
            return Reply.error({"reason": "forbidden"})
        return Reply.ok(await self.dashboard.viewer_joined())

    async def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        if event != "presence":
            return Reply.error({"reason": f"unknown event {event[:64]!r}"})
        topic = payload.get("topic") if isinstance(payload, dict) else None
        if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC:
            return Reply.error({"reason": "topic must be a string of 1 to 256 characters"})
        return Reply.ok({"topic": topic, "presences": self.dashboard.presence_list(topic)})

    async def terminate(self, reason: str, socket: ChannelSocket) -> None:
        self.dashboard.viewer_left()


def dashboard_socket(dashboard: Dashboard, accounts: Accounts) -> Socket:
    """``/dashboard/socket``: the same access tokens as the API (phoenix.js ``authToken`` or ``token``);
    logging out or deleting the user closes it like the app's sockets."""
    socket = Socket(
        SOCKET_PATH, connect=socket_authenticator(accounts), id=socket_id, disconnect_topics=socket_topics
    )
    socket.channel(TOPIC, DashboardChannel(dashboard))
    return socket
