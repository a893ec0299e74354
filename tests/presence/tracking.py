"""A channel that tracks on join, and what presence.js makes of the frames a test client got."""

from __future__ import annotations

from typing import Any

from relaygate.channels import Channel, ChannelSocket, ConnectInfo, Endpoint, Reply, Socket
from relaygate.channels.testing import ChannelClient
from relaygate.client.presence import sync_diff, sync_state
from relaygate.presence import Presence

TOPIC = "room:big"


class TrackingChannel(Channel):
    """Tracks ``payload["key"]`` after the join and pushes presence_state (as a Phoenix after_join)."""

    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        socket.send_info(payload)
        return Reply.ok()

    async def handle_info(self, message: Any, socket: ChannelSocket) -> None:
        await socket.track(message["key"], {"device": message["device"]})
        await socket.push("presence_state", socket.endpoint.require_presence().state(socket.topic))


async def accept(params: dict[str, str], info: ConnectInfo) -> dict[str, Any]:
    return {}


def endpoint_with(presence: Presence) -> Endpoint:
    socket = Socket("/socket", connect=accept)
    socket.channel("room:*", TrackingChannel)
    endpoint = Endpoint(presence.pubsub, presence)
    endpoint.add_socket(socket)
    return endpoint


def presence_frames(client: ChannelClient) -> list[Any]:
    return [
        m
        for m in client.frames.items
        if m is not None and m.topic == TOPIC and m.event.startswith("presence_")
    ]


def client_view(client: ChannelClient) -> dict[str, Any]:
    """What presence.js makes of the frames this client got: diffs before the state are
    buffered, then applied after it."""
    state: dict[str, Any] | None = None
    pending: list[Any] = []
    for message in presence_frames(client):
        if message.event == "presence_state":
            state = sync_state(state or {}, message.payload)
            for diff in pending:
                state = sync_diff(state, diff)
            pending.clear()
        elif state is None:
            pending.append(message.payload)
        else:
            state = sync_diff(state, message.payload)
    assert state is not None, "no presence_state"
    return state


def normal(state: dict[str, Any]) -> dict[str, list[Any]]:
    """A presence state with each key's metas in phx_ref order (clients order metas by arrival)."""
    return {key: sorted(p["metas"], key=lambda m: m["phx_ref"]) for key, p in state.items()}
